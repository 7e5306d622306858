#!/usr/bin/env bash
# Rewrites the seed corpus of fuzz_blob_struct, tests/fuzz/blob_struct/, from the golden
# programs: each tests/lang/**/*.shape is compiled, every top-level function and the top-level code become blob sets
# (the function, everything it reaches, and the impls of its types), and a greedy pick keeps
# the sets that add opcodes, natives, annotations, flags, groups or captures not yet covered,
# then main functions and top-level code, up to 250 files. The fuzzer-found inputs listed in
# `keep` stay, rewritten for the current VM version (SHAPEX_FUZZ_UPGRADE_SEEDS). Needs the fuzzer built (fuzz preset, or BUILD=<dir>).
#
#   tools/fuzz/make_blob_struct_seeds.sh           # from anywhere; uses build/fuzz by default
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${BUILD:-build/fuzz}/tools/fuzz_blob_struct
out=tests/fuzz/blob_struct
keep=(crash_refused_call_stale_registers.bs group_equal_shapes.bs)
saved=$(mktemp -d)
trap 'rm -rf "$saved"' EXIT
for f in "${keep[@]}"; do cp "$out/$f" "$saved/"; done
rm -rf "$out"
mkdir -p "$out"
find tests/lang -name '*.shape' | LC_ALL=C sort | xargs env SHAPEX_FUZZ_WRITE_SEEDS="$out" "$bin"
for f in "${keep[@]}"; do cp "$saved/$f" "$out/"; done
SHAPEX_FUZZ_UPGRADE_SEEDS=1 "$bin" "${keep[@]/#/$out/}"
