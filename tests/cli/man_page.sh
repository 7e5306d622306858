#!/usr/bin/env bash
# The generated man page (cmake/ManPage.cmake) against the binary: it exists, has the NAME and
# SYNOPSIS sections, a paragraph (a term line followed by an indented block) for every command
# and every `cache` subcommand `--help` lists, and mentions every long flag each command's
# --help lists. Usage: man_page.sh SHAPEX_BIN MAN_PAGE BUILT
# BUILT is 1 when the build has the page's target (cmake/ManPage.cmake included, scdoc found);
# with 0 the test is skipped (exit 77).
set -euo pipefail
bin=$1
page=$2
built=$3
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/help_lists.sh"

if [[ $built != 1 ]]; then
  echo "man_page: skipped: this build makes no man page (scdoc missing, SHAPEX_MAN_PAGE=OFF," \
    "or cmake/ManPage.cmake not included)"
  exit 77
fi
if [[ ! -s $page ]]; then
  echo "man_page: $page is missing or empty (build the target shapex_man_page)"
  exit 1
fi

failures=0
fail() {
  echo "man_page: $*"
  failures=$((failures + 1))
}

grep -qx '\.SH NAME' "$page" || fail "no NAME section"
grep -qx '\.SH SYNOPSIS' "$page" || fail "no SYNOPSIS section"
grep -q '^shapex - ' "$page" || fail "NAME does not start with 'shapex - '"

# scdoc writes a term as a line of its own ("\fBrun\fR ...") followed by ".RS 4".
has_term() {
  awk -v term="\\\\fB$1\\\\fR" '
    prev != "" && $0 == ".RS 4" && index(prev, term) == 1 { found = 1 }
    { prev = $0 }
    END { exit !found }' "$page"
}

commands=$(help_commands "$bin")
[[ -n $commands ]] || fail "could not read the commands from '$bin --help'"
count=0
for cmd in $commands; do
  count=$((count + 1))
  has_term "$cmd" || fail "command '$cmd' (in shapex --help) has no paragraph"
  for flag in $(help_flags "$bin" "$cmd"); do
    grep -qF "\\fB$flag\\fR" "$page" || fail "flag '$flag' of '$cmd' is not in the page"
  done
done
for sub in $(help_commands "$bin" cache); do
  count=$((count + 1))
  has_term "$sub" || fail "'cache $sub' (in shapex cache --help) has no paragraph"
  for flag in $(help_flags "$bin" cache "$sub"); do
    grep -qF "\\fB$flag\\fR" "$page" || fail "flag '$flag' of 'cache $sub' is not in the page"
  done
done
for flag in $(help_flags "$bin"); do
  grep -qF "\\fB$flag\\fR" "$page" || fail "global flag '$flag' is not in the page"
done

if ((failures > 0)); then
  echo "man_page: $failures problem(s); edit docs/shapex.1.scd"
  exit 1
fi
echo "man_page: ok ($count commands and subcommands, NAME and SYNOPSIS present)"
