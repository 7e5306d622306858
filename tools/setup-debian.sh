#!/usr/bin/env bash
# Installs everything needed to build and test shapex on Debian 12.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config git
  libfmt-dev libcli11-dev libgtest-dev libgmock-dev
  libmsgpack-cxx-dev libboost-dev libxxhash-dev libssl-dev libseccomp-dev nlohmann-json3-dev scdoc
  clang libclang-rt-14-dev lua5.4 python3 valgrind
)

sudo_cmd=()
if [[ ${EUID} -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
  sudo_cmd=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
