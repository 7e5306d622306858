#!/usr/bin/env bash
# `shapex call --json` contract (docs/cli-json.md): for every value kind a golden JSON
# (call_json/values.golden, the functions in call_json/values.shape), compared byte for byte;
# every output parses with `python3 -m json.tool`; stderr stays empty and the exit code is the
# one without --json; remote (the default) gives the same bytes as --local; `call --json --hash`
# too; examples/add.shape gives a result of 42; usage errors stay text on stderr (exit 2).
# Usage: call_json.sh SHAPEX_BIN
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$(dirname "${BASH_SOURCE[0]}")/private_supervisor.sh"
fail() { echo "call_json.sh: $*"; exit 1; }

# Traces name the file as given, so the golden programs run from their directory.
cd "$here/call_json"
python3 - "$bin" <<'PY'
import re, subprocess, sys

binary = sys.argv[1]
entries = []
lines = [l for l in open("values.golden").read().split("\n") if l and not l.startswith("#")]
assert len(lines) % 2 == 0, "values.golden: entries are pairs of lines"
for i in range(0, len(lines), 2):
    code, *args = lines[i].split()
    entries.append((int(code), args, lines[i + 1]))

hashes = {}
def expected_pattern(text):
    def hash_of(name):
        if name not in hashes:
            hashes[name] = subprocess.run([binary, "hash", "values.shape", name], check=True,
                                          capture_output=True, text=True).stdout.strip()
        return hashes[name]
    pattern = re.escape(text)
    pattern = re.sub(r"@HASH:([A-Za-z_]+)@", lambda m: hash_of(m.group(1)), pattern)
    return pattern.replace("@ANYHASH@", "[0-9a-f]{64}")

def call(mode, args):
    return subprocess.run([binary, "call", *mode, "--json", "values.shape", *args],
                          capture_output=True, timeout=120)

problems = []
for code, args, want in entries:
    name = " ".join(args)
    local = call(["--local"], args)
    remote = call([], args)
    for mode, r in (("--local", local), ("remote", remote)):
        if r.returncode != code:
            problems.append(f"{name} ({mode}): exit {r.returncode}, want {code}")
        if r.stderr:
            problems.append(f"{name} ({mode}): stderr {r.stderr!r}")
        # Exactly one JSON object and a newline.
        tool = subprocess.run([sys.executable, "-m", "json.tool"], input=r.stdout,
                              capture_output=True)
        if tool.returncode != 0 or r.stdout.count(b"\n") != 1:
            problems.append(f"{name} ({mode}): not one JSON object: {r.stdout!r}")
    out = local.stdout.decode().rstrip("\n")
    if not re.fullmatch(expected_pattern(want), out):
        problems.append(f"{name}: got\n  {out}\nwant\n  {want}")
    if remote.stdout != local.stdout:
        problems.append(f"{name}: remote {remote.stdout!r} differs from --local {local.stdout!r}")
for p in problems:
    print("call_json:", p)
sys.exit(1 if problems else 0)
PY

# examples/add.shape: result 42, the same bytes both ways.
remote=$("$bin" call --json "$here/../../examples/add.shape" add 10 32)
local=$("$bin" call --local --json "$here/../../examples/add.shape" add 10 32)
[[ $remote == "$local" ]] || fail "add: remote '$remote', local '$local'"
python3 -c 'import json, sys; r = json.loads(sys.argv[1]); assert r == {"output": "", "result": 42}, r' \
  "$remote" || fail "add: $remote"

# A file that does not compile: a CompileError object with its location, exit 65.
printf 'function f(x) {\n  x +\n' > "$dir/bad.shape"
set +e
"$bin" call --json "$dir/bad.shape" f 1 > "$dir/out" 2> "$dir/err"
code=$?
set -e
[[ $code == 65 && ! -s $dir/err ]] || fail "compile error: exit $code, stderr $(cat "$dir/err")"
python3 - "$dir/out" "$dir/bad.shape" <<'PY' || fail "compile error: $(cat "$dir/out")"
import json, sys
r = json.load(open(sys.argv[1]))
e = r["error"]
assert r["output"] == "" and e["kind"] == "CompileError" and e["trace"] == [], r
assert e["location"]["file"] == sys.argv[2] and e["location"]["line"] == 2, r
PY

# Usage errors stay text on stderr, with nothing on stdout (exit 2).
for args in "values.shape add 1 [1," "values.shape" "--hash 12 1"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" call --json $args > "$dir/out" 2> "$dir/err"
  code=$?
  set -e
  [[ $code == 2 && ! -s $dir/out ]] && grep -q '^error: ' "$dir/err" ||
    fail "usage error '$args': exit $code, stdout '$(cat "$dir/out")', stderr '$(cat "$dir/err")'"
done

# By hash, from the supervisor's store (the calls above put `prints` there; the store writes in
# the background, so this waits up to 10 s for it).
hash=$("$bin" hash values.shape prints)
want=$("$bin" call --local --json values.shape prints 21)
for _ in $(seq 100); do
  got=$("$bin" call --json --hash "$hash" 21 2>/dev/null) || true
  [[ $got == "$want" ]] && break
  sleep 0.1
done
[[ $got == "$want" ]] || fail "call --json --hash: '$got', want '$want'"
echo "call_json: ok"
