#!/usr/bin/env bash
# `shapex call` contract through the service: the first call starts a supervisor on demand
# (socket from $SHAPEX_SOCKET, blob store under $XDG_CACHE_HOME), runs the function in a jailed
# executor and prints the result as LANGUAGE.md says; errors keep their kind and exit code 1;
# `shapex status --json` names the supervisor and its executors; --local gives the same output.
# Usage: call_remote.sh SHAPEX_BIN
set -euo pipefail
bin=$1
source "$(dirname "${BASH_SOURCE[0]}")/private_supervisor.sh"

printf 'function add(a: int, b: int) -> int { a + b }\nfunction greet(n) { f"hi {n}" }\nfunction boom(x) { x / 0 }\n' > "$dir/p.shape"

out=$("$bin" call "$dir/p.shape" add 10 32)
[[ $out == 42 ]] || { echo "remote add printed '$out'"; exit 1; }
out=$("$bin" call "$dir/p.shape" greet '"bob"')
[[ $out == '"hi bob"' ]] || { echo "remote greet printed '$out'"; exit 1; }
[[ $("$bin" call --local "$dir/p.shape" greet '"bob"') == "$out" ]] || { echo "--local differs"; exit 1; }

set +e
"$bin" call "$dir/p.shape" boom 1 >"$dir/out" 2>"$dir/err"; rc=$?
set -e
[[ $rc == 1 ]] || { echo "runtime error exit code $rc"; exit 1; }
grep -q '^error\[RuntimeError\]: division by zero' "$dir/err" || { echo "wrong error: $(cat "$dir/err")"; exit 1; }
grep -q 'at boom' "$dir/err" || { echo "no remote trace: $(cat "$dir/err")"; exit 1; }
set +e
"$bin" call "$dir/p.shape" add 1 >/dev/null 2>"$dir/err"; rc=$?
set -e
[[ $rc == 1 ]] && grep -q '^error\[ArgumentError\]' "$dir/err" || { echo "arity: $rc $(cat "$dir/err")"; exit 1; }

# What the function prints comes out remotely too, before the result or the error, and the
# generated argument entry never shows in a trace.
printf 'function loud(x) { print("got", x); x + 1 }\nfunction bad(x) { print("about to fail"); x / 0 }\n' > "$dir/q.shape"
for mode in "" --local; do
  out=$("$bin" call $mode "$dir/q.shape" loud 1)
  [[ $out == $'got 1\n2' ]] || { echo "call $mode loud printed '$out'"; exit 1; }
  set +e
  "$bin" call $mode "$dir/q.shape" bad 1 >"$dir/out$mode" 2>"$dir/err$mode"; rc=$?
  set -e
  [[ $rc == 1 && $(cat "$dir/out$mode") == "about to fail" ]] || { echo "call $mode bad: $rc $(cat "$dir/out$mode")"; exit 1; }
  if grep -q __shapex "$dir/err$mode"; then echo "internal frame in: $(cat "$dir/err$mode")"; exit 1; fi
done
cmp -s "$dir/err" "$dir/err--local" || { echo "stderr differs: $(cat "$dir/err") vs $(cat "$dir/err--local")"; exit 1; }

json=$("$bin" status --json)
supervisor=$(sed -n 's/.*"supervisor_pid": \([0-9]*\).*/\1/p' <<<"$json")
[[ -n $supervisor ]] || { echo "no supervisor_pid in: $json"; exit 1; }
grep -q '"executors": \[{"pid": [0-9]*, "state": "' <<<"$json" || { echo "no executors in: $json"; exit 1; }
kill -0 "$supervisor"
