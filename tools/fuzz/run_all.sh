#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz preset: clang + ASan + UBSan) and runs each one for
# SECONDS (default 60) on a scratch copy of its seed corpus tests/fuzz/<name without fuzz_>/.
# Any crash, leak, timeout or sanitizer report fails the script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds=${1:-60}

targets=()
for src in tools/fuzz/fuzz_*.cc; do targets+=("$(basename "$src" .cc)"); done
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "${targets[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for name in "${targets[@]}"; do
  bin=build/fuzz/tools/$name
  corpus=tests/fuzz/${name#fuzz_}
  mkdir -p "$scratch/$name"
  echo "== $name: ${seconds}s on $corpus"
  if ! "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$scratch/$name-" "$scratch/$name" "$corpus" >"$scratch/$name.log" 2>&1; then
    echo "FAILED: $name"; tail -40 "$scratch/$name.log"; status=1
  else
    grep -E "stat::number_of_executed_units" "$scratch/$name.log" || true
  fi
done
exit $status
