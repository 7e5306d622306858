#!/usr/bin/env bash
# `shapex cache` contract: add/ls/stats/verify/gc/clear on a private directory, their --json
# objects (docs/cli-json.md), the default directory under XDG_CACHE_HOME, a flipped byte found by
# verify (exit 1, object deleted), a --dir that does not exist (an error naming it, nothing
# created; only `add` makes a new store), and usage errors (exit 2). Usage: cache.sh SHAPEX_BIN
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dir=$tmp/store
fail() { echo "cache.sh: $*"; exit 1; }

printf 'function g(x) { x * 2 }\nfunction f(x) { g(x) + 1 }\n' > "$tmp/a.shape"
printf 'function even(n) { if n == 0 { true } else { odd(n - 1) } }\nfunction odd(n) { if n == 0 { false } else { even(n - 1) } }\n' > "$tmp/group.shape"

# A mistyped --dir is an error that names it, and creates nothing.
for sub in ls stats verify gc clear "cat $(printf '0%.0s' {1..64})"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" cache --dir "$dir" $sub > "$tmp/out" 2> "$tmp/err"
  code=$?
  set -e
  [[ $code == 2 && ! -s $tmp/out ]] || fail "'cache $sub' of a missing --dir exited $code"
  grep -q "^error: no blob store at $dir: the directory does not exist" "$tmp/err" ||
    fail "'cache $sub' of a missing --dir said: $(cat "$tmp/err")"
  [[ ! -e $dir ]] || fail "'cache $sub' created the missing --dir"
done

# An empty store.
mkdir "$dir"
"$bin" cache --dir "$dir" stats --json > "$tmp/out"
python3 -c 'import json, sys; assert json.load(sys.stdin)["objects"] == 0' < "$tmp/out" ||
  fail "empty stats: $(cat "$tmp/out")"
[[ -z $("$bin" cache ls --dir "$dir") ]] || fail "ls of an empty store printed something"

# add into an existing store, then into a new one (which it says it made), then ls shows the
# function's hash and name.
"$bin" cache add "$tmp/a.shape" --dir "$dir" | grep -q "^stored [0-9]* functions in $dir\$" ||
  fail "add into an existing store"
"$bin" cache add "$tmp/a.shape" --dir "$tmp/new" | grep -q " in $tmp/new (a new store)\$" ||
  fail "add into a new store does not say so"
[[ -d $tmp/new ]] || fail "add did not create its store"
"$bin" cache add "$tmp/group.shape" --dir "$dir" > /dev/null
hash_f=$("$bin" hash "$tmp/a.shape" f)
"$bin" cache ls --dir "$dir" > "$tmp/ls"
grep -Eq "^$hash_f +[0-9]+ +f\$" "$tmp/ls" || fail "ls lacks f: $(cat "$tmp/ls")"
grep -Eq ' even$' "$tmp/ls" && grep -Eq ' odd$' "$tmp/ls" || fail "ls lacks the group: $(cat "$tmp/ls")"
objects=$(wc -l < "$tmp/ls")

"$bin" cache stats --json --dir "$dir" > "$tmp/json"
python3 - "$tmp/json" "$objects" "$dir" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
assert set(stats) >= {"objects", "bytes", "max_bytes", "dir"}, stats
assert stats["objects"] == int(sys.argv[2]), stats
assert stats["bytes"] > 0 and stats["max_bytes"] == 512 << 20, stats
assert stats["dir"] == sys.argv[3], stats
PY
"$bin" cache stats --dir "$dir" | grep -q "^objects *$objects\$" || fail "human stats"
# --max-bytes takes K/M/G (and KiB/MiB/GiB), powers of 1024.
for size in 3M 3MiB 3072K; do
  "$bin" cache stats --json --max-bytes "$size" --dir "$dir" | grep -q '"max_bytes":3145728,' ||
    fail "--max-bytes $size"
done
"$bin" cache ls --json --dir "$dir" > "$tmp/json"
python3 - "$tmp/json" "$tmp/ls" "$dir" <<'PY' || fail "ls --json: $(cat "$tmp/json")"
import json, sys
ls = json.load(open(sys.argv[1]))
assert list(ls) == ["dir", "objects"] and ls["dir"] == sys.argv[3], ls
lines = [l.split() for l in open(sys.argv[2])]
assert [(o["hash"], o["bytes"], o["name"]) for o in ls["objects"]] == \
    [(h, int(b), None if n == "-" else n) for h, b, n in lines], (ls, lines)
assert all(list(o) == ["hash", "bytes", "name", "last_used_ms"] for o in ls["objects"]), ls
assert all(o["last_used_ms"] > 1.6e12 for o in ls["objects"]), ls
PY

# A clean store verifies with exit 0.
"$bin" cache verify --dir "$dir" > "$tmp/out" || fail "verify of a clean store failed: $(cat "$tmp/out")"
grep -q "0 corrupt" "$tmp/out" || fail "verify: $(cat "$tmp/out")"
"$bin" cache verify --json --dir "$dir" > "$tmp/json" || fail "verify --json of a clean store"
python3 - "$tmp/json" "$objects" <<'PY' || fail "verify --json: $(cat "$tmp/json")"
import json, sys
v = json.load(open(sys.argv[1]))
assert list(v) == ["dir", "checked", "ok", "corrupt", "stale_temps_removed", "unknown_entries"], v
assert v["checked"] == v["ok"] == int(sys.argv[2]) and v["corrupt"] == [], v
PY

# Flip one byte in f's object: verify lists it, deletes it, exits 1; the next verify is clean.
obj=$dir/${hash_f:0:2}/${hash_f:2}
[[ -f $obj ]] || fail "no object file at $obj"
size=$(stat -c %s "$obj")
printf '\x5a' | dd of="$obj" bs=1 seek=$((size / 2)) conv=notrunc status=none
cp "$obj" "$tmp/corrupt-object"
set +e
"$bin" cache verify --dir "$dir" > "$tmp/out"
code=$?
set -e
[[ $code == 1 ]] || fail "verify with a corrupt object exited $code: $(cat "$tmp/out")"
grep -q "^corrupt $hash_f: " "$tmp/out" || fail "verify did not list $hash_f: $(cat "$tmp/out")"
[[ ! -e $obj ]] || fail "corrupt object not deleted"
# The same with --json: exit 1, the object listed as removed.
cp "$tmp/corrupt-object" "$obj"
set +e
"$bin" cache verify --json --dir "$dir" > "$tmp/json"
code=$?
set -e
[[ $code == 1 ]] || fail "verify --json with a corrupt object exited $code"
python3 - "$tmp/json" "$hash_f" <<'PY' || fail "verify --json of a corrupt object: $(cat "$tmp/json")"
import json, sys
v = json.load(open(sys.argv[1]))
assert [(c["hash"], c["removed"]) for c in v["corrupt"]] == [(sys.argv[2], True)], v
assert v["corrupt"][0]["reason"], v
PY
[[ ! -e $obj ]] || fail "corrupt object not deleted by verify --json"
"$bin" cache verify --dir "$dir" > /dev/null || fail "second verify not clean"

# gc down to 0 bytes evicts everything; clear on an empty store is fine.
"$bin" cache gc --json --max-bytes 0 --dir "$dir" > "$tmp/json"
python3 - "$tmp/json" <<'PY' || fail "gc --json: $(cat "$tmp/json")"
import json, sys
g = json.load(open(sys.argv[1]))
assert list(g) == ["dir", "evicted_objects", "evicted_bytes", "bytes_after", "max_bytes",
                   "stale_temps_removed"], g
assert g["evicted_objects"] > 0 and g["evicted_bytes"] > 0, g
assert g["bytes_after"] == 0 and g["max_bytes"] == 0, g
PY
"$bin" cache add "$tmp/a.shape" --dir "$dir" > /dev/null
"$bin" cache gc --max-bytes 0 --dir "$dir" | grep -q "0 bytes remain" || fail "gc"
[[ -z $("$bin" cache ls --dir "$dir") ]] || fail "objects left after gc to 0"
"$bin" cache add "$tmp/a.shape" --dir "$dir" > /dev/null
"$bin" cache clear --dir "$dir" | grep -q "^removed [1-9]" || fail "clear"
[[ -z $("$bin" cache ls --dir "$dir") ]] || fail "objects left after clear"

# The default directory follows XDG_CACHE_HOME.
XDG_CACHE_HOME=$tmp/xdg "$bin" cache add "$tmp/a.shape" > /dev/null
[[ -f $tmp/xdg/shapex/blobs/${hash_f:0:2}/${hash_f:2} ]] || fail "default dir not under XDG_CACHE_HOME"

# Usage errors exit 2; a store that cannot be opened is an I/O error (exit 2).
for args in "cache" "cache bogus" "cache stats --bogus" "cache gc --max-bytes -1"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" $args --dir "$dir" > /dev/null 2>&1
  code=$?
  set -e
  [[ $code == 2 ]] || fail "'$args' exited $code, want 2"
done
touch "$tmp/file"
set +e
"$bin" cache stats --dir "$tmp/file/sub" 2> "$tmp/err"
code=$?
set -e
[[ $code == 2 ]] && grep -q '^error: ' "$tmp/err" || fail "unopenable store: $code $(cat "$tmp/err")"
echo "cache: ok ($objects objects)"
