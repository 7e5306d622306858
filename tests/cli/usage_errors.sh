#!/usr/bin/env bash
# Usage errors name what was wrong and what would have been accepted (issue 13): an unknown
# command or cache command with the list of commands, an unknown flag of any command with the
# flags that command accepts (exactly those its --help lists), a global flag after the command
# with where it goes. Each is `error: ...` on stderr, nothing on stdout, exit 2.
# Usage: usage_errors.sh SHAPEX_BIN
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=help_lists.sh
. "$here/help_lists.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "usage_errors: $*"; failures=$((failures + 1)); }

# Runs the binary with "$@"; sets $err to its stderr; fails unless it is a usage error.
usage_error() {
  set +e
  "$bin" "$@" > "$tmp/out" 2> "$tmp/err"
  local code=$?
  set -e
  err=$(cat "$tmp/err")
  [[ $code == 2 && ! -s $tmp/out && $err == "error: "* ]] ||
    fail "'$*': exit $code, stdout '$(cat "$tmp/out")', stderr '$err'"
}

# The comma-separated list after "LABEL: " up to ")" in $err, one item a line, sorted.
listed() { sed -n "s/.*$1: \([^)]*\)).*/\1/p" <<<"$err" | tr ',' '\n' | tr -d ' ' | sort -u; }

commands=$(help_commands "$bin" | sort -u)
usage_error bogus
[[ $err == "error: unknown command 'bogus' ("* ]] || fail "unknown command: $err"
[[ $(listed commands) == "$commands" ]] || fail "unknown command lists: $(listed commands)"
usage_error
[[ $(listed commands) == "$commands" ]] || fail "no command lists: $err"

cache_commands=$(help_commands "$bin" cache | sort -u)
usage_error cache bogus
[[ $err == "error: unknown cache command 'bogus' ("* ]] || fail "unknown cache command: $err"
[[ $(listed "cache commands") == "$cache_commands" ]] || fail "cache commands: $err"
usage_error cache --dir "$tmp"
[[ $(listed "cache commands") == "$cache_commands" ]] || fail "cache with no command: $err"

# An unknown flag of every command and cache command: named, with exactly its --help flags
# (a cache command also takes cache's --dir and --max-bytes).
check_flags() {
  local want=$1
  shift
  local name=shapex
  if (($# > 0)); then name="shapex $*"; fi
  usage_error "$@" --no-such-flag
  [[ $err == "error: unknown flag '--no-such-flag' for '$name'"* ]] ||
    fail "'$*' unknown flag: $err"
  [[ $(listed flags) == "$want" ]] || fail "'$*' lists [$(listed flags | xargs)], want [$(xargs <<<"$want")]"
}
check_flags "$(help_flags "$bin" | sort -u)"
for cmd in $commands; do
  [[ $cmd == cache ]] && continue
  check_flags "$(help_flags "$bin" "$cmd" | sort -u)" "$cmd"
done
for sub in $cache_commands; do
  check_flags "$( (help_flags "$bin" cache "$sub"; echo --dir; echo --max-bytes) | sort -u)" cache "$sub"
done
# Also after positionals, and with a value attached.
usage_error call prog.shape add 1 --fule=5
[[ $err == "error: unknown flag '--fule' for 'shapex call' (flags: "*--fuel* ]] || fail "call --fule: $err"
usage_error run prog.shape --locl
[[ $err == "error: unknown flag '--locl' for 'shapex run' (flags: "*--local* ]] || fail "run --locl: $err"

# A global flag after the command is told where it goes.
usage_error call --color=always prog.shape add
[[ $err == "error: --color goes before the command: shapex --color=always call ..." ]] ||
  fail "--color after the command: $err"

# A surplus argument is named too.
usage_error check a.shape b.shape
[[ $err == "error: unexpected argument 'b.shape' for 'shapex check'" ]] || fail "surplus: $err"

if ((failures > 0)); then exit 1; fi
echo "usage_errors: ok"
