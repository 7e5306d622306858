#!/usr/bin/env bash
# `shapex hash` contract: 64 hex digits; the same across a file rename and a moved function;
# different when a callee changes. Usage: hash_stable.sh SHAPEX_BIN
set -euo pipefail
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

printf 'function g(x) { x * 2 }\nfunction f(x) { g(x) + 1 }\n' > "$dir/a.shape"
printf '// moved down\n\nfunction other() { 0 }\nfunction g(x) { x * 2 }\n\n\nfunction f(x) { g(x) + 1 }\n' > "$dir/renamed.shape"
printf 'function g(x) { x * 3 }\nfunction f(x) { g(x) + 1 }\n' > "$dir/changed.shape"

a=$("$bin" hash "$dir/a.shape" f)
b=$("$bin" hash "$dir/renamed.shape" f)
c=$("$bin" hash "$dir/changed.shape" f)
[[ $a =~ ^[0-9a-f]{64}$ ]] || { echo "not 64 hex digits: $a"; exit 1; }
[[ $a == "$b" ]] || { echo "hash changed across rename/move: $a vs $b"; exit 1; }
[[ $a != "$c" ]] || { echo "hash did not change when the callee changed: $a"; exit 1; }
if "$bin" hash "$dir/a.shape" missing 2>"$dir/err"; then echo "missing function accepted"; exit 1; fi
grep -q '^error\[FunctionNotFound\]' "$dir/err" || { echo "wrong error: $(cat "$dir/err")"; exit 1; }
echo "hash_stable: ok ($a)"
