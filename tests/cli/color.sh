#!/usr/bin/env bash
# Colour of error headers (issue 13): `error[Kind]` and the `error` of usage errors are bold red
# when --color=always, or with the default --color=auto when stderr is a terminal and NO_COLOR
# is unset or empty; never with --color=never, never on a pipe under auto, never on stdout.
# The terminal cases run the binary with stderr on a pty (python3's pty module).
# Usage: color.sh SHAPEX_BIN
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "color: $*"; failures=$((failures + 1)); }
esc=$'\e'
red="$esc[1;31m"
reset="$esc[0m"

printf 'function main() {\n  print("out")\n  1 / 0\n}\n' > "$tmp/boom.shape"
printf 'function f( {\n' > "$tmp/bad.shape"

# expect WANT(plain|red) HEADER ARGS...: runs with stderr on a pipe; checks the first line.
expect() {
  local want=$1 header=$2
  shift 2
  set +e
  "$@" > "$tmp/out" 2> "$tmp/err"
  set -e
  local first
  first=$(head -n 1 "$tmp/err")
  if [[ $want == red ]]; then
    [[ $first == "$red$header$reset: "* ]] || fail "$* : want red '$header', got '$first'"
  else
    [[ $first == "$header: "* ]] || fail "$* : want plain '$header', got '$first'"
  fi
  if grep -q "$esc" "$tmp/out"; then fail "$* : escape on stdout"; fi
}

# On a pipe: plain unless --color=always (which NO_COLOR does not override).
expect plain 'error[RuntimeError]' "$bin" run --local "$tmp/boom.shape"
expect red 'error[RuntimeError]' "$bin" --color=always run --local "$tmp/boom.shape"
expect red 'error[RuntimeError]' env NO_COLOR=1 "$bin" --color always run --local "$tmp/boom.shape"
expect plain 'error[RuntimeError]' "$bin" --color=never run --local "$tmp/boom.shape"
expect red 'error[CompileError]' "$bin" --color=always check "$tmp/bad.shape"
expect red 'error[FunctionNotFound]' "$bin" --color=always call --local "$tmp/boom.shape" nope
expect red 'error' "$bin" --color=always bogus
expect red 'error' "$bin" --color=always run "$tmp/boom.shape" --bogus
expect red 'error' "$bin" --color=always cache --dir "$tmp/no-such-dir" ls
expect red 'error' "$bin" --color=always run "$tmp/missing.shape"
expect plain 'error' "$bin" --color=never bogus
# A bad value is a usage error naming the choices.
expect plain 'error' "$bin" --color=blue run "$tmp/boom.shape"
grep -q 'auto' "$tmp/err" || fail "--color=blue: $(cat "$tmp/err")"
# --json output has no colour to give: the error is in the object.
set +e
"$bin" --color=always call --json --local "$tmp/boom.shape" main > "$tmp/out" 2> "$tmp/err"
set -e
[[ ! -s $tmp/err ]] && ! grep -q "$esc" "$tmp/out" || fail "call --json with --color=always"

# With stderr on a terminal: auto colours unless NO_COLOR is set and not empty.
on_tty() {
  python3 - "$@" <<'PY'
import os, subprocess, sys
master, slave = os.openpty()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
data = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:  # EIO: the child's side is closed and everything has been read
        break
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode(errors="replace").split("\n")[0].rstrip("\r") + "\n")
PY
}
first=$(on_tty "$bin" run --local "$tmp/boom.shape")
[[ $first == "$red"'error[RuntimeError]'"$reset: "* ]] || fail "tty, auto: '$first'"
first=$(on_tty env NO_COLOR=1 "$bin" run --local "$tmp/boom.shape")
[[ $first == 'error[RuntimeError]: '* ]] || fail "tty, NO_COLOR=1: '$first'"
first=$(on_tty env NO_COLOR= "$bin" run --local "$tmp/boom.shape")
[[ $first == "$red"'error[RuntimeError]'"$reset: "* ]] || fail "tty, NO_COLOR empty: '$first'"
first=$(on_tty "$bin" --color=never run --local "$tmp/boom.shape")
[[ $first == 'error[RuntimeError]: '* ]] || fail "tty, --color=never: '$first'"
first=$(on_tty env NO_COLOR=1 "$bin" --color=always bogus)
[[ $first == "$red"'error'"$reset: unknown command"* ]] || fail "tty, NO_COLOR=1 --color=always: '$first'"

if ((failures > 0)); then exit 1; fi
echo "color: ok"
