#!/usr/bin/env bash
# Installing and embedding (issue 13): `cmake --install BUILD --prefix P` into a temporary
# prefix, then the C++ examples (examples/cpp) are built against P twice, once through
# find_package(shapex) (CMake) and once through `pkg-config shapex` (the Makefile), and run with
# P/bin first on PATH (so the client starts P's shapex) and a private supervisor socket:
# hello prints 42, async 9900, errors reports the kinds and traces, zero_copy sums a 64 MiB
# SharedVec in an executor. Also checks that no installed
# header includes msgpack or Boost (they are private to the libraries), and that the man page,
# the completion and the package files are in place.
# Usage: install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
prefix=$tmp/prefix
sock_dir=$tmp/run
cleanup() {
  SHAPEX_SOCKET=$sock_dir/sock "$prefix/bin/shapex" stop > /dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "install.sh: $*"; exit 1; }

cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log"
  fail "cmake --install failed"
}
for f in bin/shapex include/shapex/shapex.h include/shapex/client/runtime.h \
  lib/libshapex_client.a lib/cmake/shapex/shapexConfig.cmake \
  lib/cmake/shapex/shapexConfigVersion.cmake lib/pkgconfig/shapex.pc \
  share/bash-completion/completions/shapex; do
  [[ -e $prefix/$f ]] || fail "not installed: $f"
done
if command -v scdoc > /dev/null; then
  [[ -s $prefix/share/man/man1/shapex.1 ]] || fail "not installed: share/man/man1/shapex.1"
fi
if grep -rlE '#include <(boost|msgpack)' "$prefix/include"; then
  fail "an installed header includes msgpack or Boost (listed above)"
fi

# The same three programs, two ways of building them.
cmake -S "$src/examples/cpp" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$tmp/cmake.log" 2>&1 &&
  cmake --build "$tmp/cmake" -j 2 >> "$tmp/cmake.log" 2>&1 || {
  cat "$tmp/cmake.log"
  fail "building the examples with find_package(shapex) failed"
}
mkdir -p "$tmp/make"
PKG_CONFIG_PATH=$prefix/lib/pkgconfig make -s -C "$src/examples/cpp" O="$tmp/make" \
  > "$tmp/make.log" 2>&1 || {
  cat "$tmp/make.log"
  fail "building the examples with pkg-config shapex failed"
}

mkdir -m 700 "$sock_dir"
export SHAPEX_SOCKET=$sock_dir/sock SHAPEX_IDLE_EXIT=30 PATH=$prefix/bin:$PATH
unset SHAPEX_BIN
cd "$src"
for way in cmake make; do
  out=$("$tmp/$way/hello" examples/add.shape) || fail "$way/hello exited $?"
  [[ $out == 42 ]] || fail "$way/hello printed '$out', not 42"
  out=$("$tmp/$way/async" examples/add.shape) || fail "$way/async exited $?"
  [[ $out == 9900 ]] || fail "$way/async printed '$out', not 9900"
  out=$("$tmp/$way/errors") || fail "$way/errors exited $?"
  grep -q '^ratio(84, 2) = 42, it printed: dividing 84 by 2$' <<< "$out" ||
    fail "$way/errors: no ratio(84, 2) line in: $out"
  grep -q '^error\[RuntimeError\]: assertion failed: b must not be zero$' <<< "$out" ||
    fail "$way/errors: no assertion error in: $out"
  grep -q '^  at check (ratio.shape:6)$' <<< "$out" || fail "$way/errors: no trace in: $out"
  grep -q 'error\[ResourceExhausted\]: fuel exhausted' <<< "$out" ||
    fail "$way/errors: no fuel error in: $out"
  out=$("$tmp/$way/zero_copy") || fail "$way/zero_copy exited $?"
  [[ $out == "8388608 elements, sum 35184367894528" ]] || fail "$way/zero_copy printed '$out'"
done
# The supervisor the examples started is the installed binary.
"$prefix/bin/shapex" status >/dev/null || fail "no supervisor answered on $SHAPEX_SOCKET"
echo "install.sh: ok"
