#!/usr/bin/env bash
# `shapex call --hash` and `shapex cache cat` (docs/language.md, docs/blob-format.md): a call by
# FILE FUNC puts the function in the supervisor's blob store; `call --hash H ARGS` then calls it
# with no source, also after the supervisor restarted (so the store, not an executor's cache,
# serves it), together with the functions it calls; a trace names the function as the store
# kept it; `cache cat H` writes the documented envelope whose canonical bytes hash to H;
# unknown and malformed hashes are typed errors with the usual exit codes.
# Usage: call_hash.sh SHAPEX_BIN
set -euo pipefail
bin=$1
source "$(dirname "${BASH_SOURCE[0]}")/private_supervisor.sh"
store=$XDG_CACHE_HOME/shapex/blobs
fail() { echo "call_hash.sh: $*"; exit 1; }

# The supervisor stores what an executor learned after the lease ends, on its store thread:
# wait (at most 10 s) until `cache ls` lists the hash.
wait_stored() {
  for _ in $(seq 200); do
    if "$bin" cache ls --dir "$store" 2>/dev/null | grep -q "^$1 "; then return 0; fi
    sleep 0.05
  done
  fail "$1 never reached the store: $("$bin" cache ls --dir "$store" 2>&1)"
}

cat > "$dir/p.shape" <<'EOF'
@remote
function add(a: int, b: int) -> int { a + b }
function double(x) { x * 2 }
function twice_plus_one(x) { double(x) + 1 }
function boom(x) { x / 0 }
EOF

h=$("$bin" hash "$dir/p.shape" add)
[[ $h =~ ^[0-9a-f]{64}$ ]] || fail "hash printed '$h'"
[[ $("$bin" call "$dir/p.shape" add 1 2) == 3 ]] || fail "call add 1 2"
wait_stored "$h"
out=$("$bin" call --hash "$h" 10 32) || fail "call --hash add 10 32 failed"
[[ $out == 42 ]] || fail "call --hash add 10 32 printed '$out'"

# A function that calls another: the supervisor preloads what it references too.
h2=$("$bin" hash "$dir/p.shape" twice_plus_one)
[[ $("$bin" call "$dir/p.shape" twice_plus_one 1) == 3 ]] || fail "call twice_plus_one 1"
wait_stored "$h2"
out=$("$bin" call --hash "$h2" 20) || fail "call --hash twice_plus_one 20 failed"
[[ $out == 41 ]] || fail "call --hash twice_plus_one 20 printed '$out'"

# Errors keep their kind, and the trace names the function as the store kept it.
hb=$("$bin" hash "$dir/p.shape" boom)
set +e
"$bin" call "$dir/p.shape" boom 1 >/dev/null 2>&1
set -e
wait_stored "$hb"
set +e
"$bin" call --hash "$hb" 7 >"$dir/out" 2>"$dir/err"; rc=$?
set -e
[[ $rc == 1 ]] || fail "boom by hash exited $rc"
grep -q '^error\[RuntimeError\]: division by zero' "$dir/err" || fail "boom: $(cat "$dir/err")"
grep -q "at boom (.*p.shape:5)" "$dir/err" || fail "boom trace: $(cat "$dir/err")"
set +e
"$bin" call --hash "$h" 1 >/dev/null 2>"$dir/err"; rc=$?
set -e
[[ $rc == 1 ]] && grep -q '^error\[ArgumentError\]' "$dir/err" || fail "arity: $rc $(cat "$dir/err")"

# After a restart only the store knows the function.
pid=$(supervisor_pid)
[[ -n $pid ]] || fail "no supervisor running"
"$bin" stop >/dev/null
out=$("$bin" call --hash "$h" -5 '7') || fail "call --hash after a restart failed"
[[ $out == 2 ]] || fail "call --hash after a restart printed '$out'"

# cache cat: the envelope of docs/blob-format.md; its canonical bytes hash to the function hash.
"$bin" cache cat "$h" --dir "$store" > "$dir/blob"
[[ $(head -c 4 "$dir/blob") == SXBL ]] || fail "cache cat does not start with SXBL"
python3 - "$dir/blob" "$h" <<'PY' || fail "cache cat output does not match the documented envelope"
import hashlib, struct, sys
data = open(sys.argv[1], "rb").read()
want = sys.argv[2]
assert data[:4] == b"SXBL" and struct.unpack_from("<H", data, 4)[0] == 1, data[:6]
assert data[6:38].hex() == want, "claimed hash"
(length,) = struct.unpack_from("<I", data, 38)
canonical = data[42:42 + length]
assert len(canonical) == length and canonical[:4] == b"SXFN", "canonical bytes"
assert hashlib.sha256(canonical).hexdigest() == want, "SHA-256 of the canonical bytes"
PY

# Unknown and malformed hashes.
unknown=$(printf '%064d' 0)
set +e
"$bin" call --hash "$unknown" 1 2 >/dev/null 2>"$dir/err"; rc=$?
set -e
[[ $rc == 1 ]] && grep -q '^error\[FunctionNotFound\]' "$dir/err" || fail "unknown call: $rc $(cat "$dir/err")"
set +e
"$bin" cache cat "$unknown" --dir "$store" >"$dir/out" 2>"$dir/err"; rc=$?
set -e
[[ $rc == 1 && ! -s $dir/out ]] && grep -q '^error\[FunctionNotFound\]' "$dir/err" ||
  fail "unknown cat: $rc $(cat "$dir/err")"
for bad in "xyz" "${h:0:63}"; do
  set +e
  "$bin" call --hash "$bad" 1 >/dev/null 2>&1; rc=$?
  "$bin" cache cat "$bad" --dir "$store" >/dev/null 2>&1; rc2=$?
  set -e
  [[ $rc == 2 && $rc2 == 2 ]] || fail "malformed hash '$bad': call $rc, cat $rc2"
done
set +e
"$bin" call --hash "$h" --local 1 2 >/dev/null 2>&1; rc=$?
set -e
[[ $rc == 2 ]] || fail "--hash with --local exited $rc"

"$bin" stop >/dev/null
echo "call_hash.sh: ok"
