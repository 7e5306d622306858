#!/usr/bin/env bash
# Rewrites the seed corpora that hold function blobs, for the current blob format and VM
# version: tests/fuzz/blob_decode/ and tests/fuzz/link/ (fuzz_link with SHAPEX_FUZZ_WRITE_SEEDS
# on the programs of tests/fuzz/compile/, copies of golden programs and examples: every other
# blob, as one EncodeBlob each and as its minimal blob set), then tests/fuzz/blob_struct/
# (make_blob_struct_seeds.sh). Needs the fuzzers built (fuzz preset, or BUILD=<dir>).
#
#   tools/fuzz/make_blob_seeds.sh                  # from anywhere; uses build/fuzz by default
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build=${BUILD:-build/fuzz}
rm -rf tests/fuzz/blob_decode tests/fuzz/link
mkdir -p tests/fuzz/blob_decode tests/fuzz/link
find tests/fuzz/compile -name '*.shape' | LC_ALL=C sort |
  xargs env SHAPEX_FUZZ_WRITE_SEEDS=tests/fuzz "$build/tools/fuzz_link"
BUILD=$build tools/fuzz/make_blob_struct_seeds.sh
