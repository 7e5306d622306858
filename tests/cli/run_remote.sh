#!/usr/bin/env bash
# `shapex run` sends @remote calls to jailed executors (LANGUAGE.md "Running": output and errors
# look the same either way): every program in tests/cli/remote/ must print the same stdout and
# stderr and exit with the same code with and without --local, and the supervisor must have
# served the remote calls (so a silently local run cannot pass).
# Usage: run_remote.sh SHAPEX_BIN
set -euo pipefail
bin=$(realpath "$1")
programs=$(cd "$(dirname "$0")/remote" && pwd)
source "$(dirname "${BASH_SOURCE[0]}")/private_supervisor.sh"

# Per program: extra flags, and how many remote calls it makes.
declare -A flags=([fuel]="--fuel 1000000" [timeout]="--timeout 1")
declare -A calls=([prints]=2 [globals]=2 [errors]=2 [values]=9 [fuel]=2 [timeout]=1)

run() {  # run NAME MODE... -> $dir/NAME.MODE.{out,err,rc}
  local name=$1 tag=$2
  shift 2
  set +e
  (cd "$programs" && "$bin" run "$@" ${flags[$name]:-} "$name.shape") \
    >"$dir/$name.$tag.out" 2>"$dir/$name.$tag.err"
  echo $? >"$dir/$name.$tag.rc"
  set -e
}

expected_calls=0
for name in "${!calls[@]}"; do
  run "$name" local --local
  run "$name" remote
  for part in out err rc; do
    if ! cmp -s "$dir/$name.local.$part" "$dir/$name.remote.$part"; then
      echo "$name.shape: $part differs between --local and remote:"
      diff "$dir/$name.local.$part" "$dir/$name.remote.$part" || true
      exit 1
    fi
  done
  [[ -s $dir/$name.local.out ]] || { echo "$name.shape printed nothing"; exit 1; }
  expected_calls=$((expected_calls + ${calls[$name]}))
done

# The error program fails the same way in both modes, with the remote frames in its trace.
[[ $(cat "$dir/errors.remote.rc") == 1 ]] || { echo "errors.shape exit code"; exit 1; }
grep -q '^  at divide (errors.shape:2)$' "$dir/errors.remote.err" || {
  echo "no remote frame: $(cat "$dir/errors.remote.err")"; exit 1; }
grep -q '^error\[ResourceExhausted\]: fuel exhausted' "$dir/fuel.remote.err" || {
  echo "fuel: $(cat "$dir/fuel.remote.err")"; exit 1; }
grep -q '^error\[Timeout\]: timed out after 1s' "$dir/timeout.remote.err" || {
  echo "timeout: $(cat "$dir/timeout.remote.err")"; exit 1; }

# Executors report their calls when a lease ends; wait until all have.
for _ in $(seq 50); do
  served=$("$bin" status --json | sed -n 's/.*"clients": [0-9]*, "calls": \([0-9]*\).*/\1/p')
  [[ ${served:-0} -ge $expected_calls ]] && break
  sleep 0.1
done
[[ ${served:-0} == "$expected_calls" ]] || {
  echo "the supervisor served ${served:-0} calls, expected $expected_calls"; exit 1; }
echo "ok: ${#calls[@]} programs identical with and without --local; $served remote calls"
