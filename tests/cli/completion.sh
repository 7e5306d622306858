#!/usr/bin/env bash
# The bash completion (tools/completion/shapex.bash) in a plain bash: a few completions by
# hand, then every command's and every `cache` subcommand's flag list against the binary's
# --help (both ways, so a flag added to the binary or dropped from it fails here until the
# completion follows). Usage: completion.sh SHAPEX_BIN COMPLETION_SCRIPT
set -euo pipefail
bin=$1
script=$2
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/help_lists.sh"
. "$script"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

failures=0
fail() {
  echo "completion: $*"
  failures=$((failures + 1))
}

# complete WORDS...: the candidates for the last word (may be empty), sorted, one a line.
complete_words() {
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _shapex
  printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort -u
}
sorted() { printf '%s\n' "$@" | sed '/^$/d' | sort -u; }

# expect DESCRIPTION EXPECTED ACTUAL (both sorted lists).
expect() {
  if [[ $2 != "$3" ]]; then
    fail "$1: expected [$(echo $2)], got [$(echo $3)]"
  fi
}
# expect_has DESCRIPTION ACTUAL WORD...
expect_has() {
  local what=$1 actual=$2
  shift 2
  for w in "$@"; do
    grep -qx -- "$w" <<<"$actual" || fail "$what: '$w' missing from [$(echo $actual)]"
  done
}

# The examples of the issue.
expect "shapex ca<TAB>" "$(sorted call cache)" "$(complete_words shapex ca)"
expect_has "shapex run --<TAB>" "$(complete_words shapex run --)" --local --fuel
expect "shapex run --transport <TAB>" "$(sorted ring socket)" \
  "$(complete_words shapex run --transport '')"
expect "shapex --color=<TAB>" "$(sorted auto always never)" \
  "$(complete_words shapex --color = '')"
expect "shapex serve --sandbox=n<TAB>" "none" "$(complete_words shapex serve --sandbox=n)"

# Commands and cache subcommands: exactly what --help lists.
expect "shapex <TAB>" "$(help_commands "$bin" | sort -u)" "$(complete_words shapex '')"
expect "shapex cache <TAB>" "$(help_commands "$bin" cache | sort -u)" \
  "$(complete_words shapex cache '')"
expect "shapex --color never cache --dir /tmp <TAB>" "$(help_commands "$bin" cache | sort -u)" \
  "$(complete_words shapex --color never cache --dir /tmp '')"

# Flags: exactly what each --help lists.
expect "shapex -<TAB>" "$(help_flags "$bin" | sort -u)" "$(complete_words shapex -)"
for cmd in $(help_commands "$bin"); do
  expect "shapex $cmd -<TAB>" "$(help_flags "$bin" "$cmd" | sort -u)" \
    "$(complete_words shapex "$cmd" -)"
done
for sub in $(help_commands "$bin" cache); do
  # --dir and --max-bytes of `cache` may follow the subcommand.
  want=$( (help_flags "$bin" cache "$sub"; echo --dir; echo --max-bytes) | sort -u)
  expect "shapex cache $sub -<TAB>" "$want" "$(complete_words shapex cache "$sub" -)"
done

# FILE arguments: .shape files and directories; FUNC: the functions the file declares.
mkdir "$dir/sub"
printf 'function add(a, b) { a + b }\n@remote\nfunction avg(xs) { 0 }\n  @remote function area(r) { r }\nfunction other() { 1 }\n' \
  >"$dir/prog.shape"
touch "$dir/notes.txt"
expect "shapex run DIR/<TAB>" "$(sorted "$dir/prog.shape" "$dir/sub")" \
  "$(complete_words shapex run "$dir/")"
expect "shapex call --local DIR/<TAB>" "$(sorted "$dir/prog.shape" "$dir/sub")" \
  "$(complete_words shapex call --local "$dir/")"
expect "shapex call FILE a<TAB>" "$(sorted add area avg)" \
  "$(complete_words shapex call "$dir/prog.shape" a)"
expect "shapex call --fuel 10 FILE <TAB>" "$(sorted add area avg other)" \
  "$(complete_words shapex call --fuel 10 "$dir/prog.shape" '')"
expect "shapex call FILE add <TAB> (ARGs are literals)" "" \
  "$(complete_words shapex call "$dir/prog.shape" add '')"
expect "shapex call --hash X <TAB>" "" "$(complete_words shapex call --hash abc '')"
expect "shapex cache add DIR/<TAB>" "$(sorted "$dir/prog.shape" "$dir/sub")" \
  "$(complete_words shapex cache add "$dir/")"
expect "shapex run FILE -- <TAB>" "" "$(complete_words shapex run "$dir/prog.shape" -- '')"
expect "shapex cache --dir DIR/<TAB>" "$dir/sub" "$(complete_words shapex cache --dir "$dir/")"

if ((failures > 0)); then
  echo "completion: $failures problem(s); edit tools/completion/shapex.bash"
  exit 1
fi
echo "completion: ok"
