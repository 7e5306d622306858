#!/usr/bin/env bash
# Builds the release preset if needed (vm_bench and shapex) and runs vm_bench (args are passed
# through, e.g. --quick, --json, --rounds 5, --only fib,dot). Installs lua5.4 first when it is
# missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v lua5.4 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && apt-get install -y -qq lua5.4 >/dev/null
  else
    echo "lua5.4 not installed (and not root): the Lua columns will be empty" >&2
  fi
fi

if [ ! -x build/release/tools/bench/vm_bench ]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target vm_bench
fi
exec build/release/tools/bench/vm_bench "$@"
