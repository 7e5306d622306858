#!/usr/bin/env bash
# `shapex --version` (issue 13): "shapex VERSION" with the CMake project version, followed by
# " (git REV)" when the build's source tree is a git checkout, REV being a commit of it (the
# revision is taken at configure time, so it may be older than HEAD).
# Usage: version.sh SHAPEX_BIN PROJECT_VERSION SOURCE_DIR
set -euo pipefail
bin=$1 version=$2 source=$3
out=$("$bin" --version)
[[ $out =~ ^shapex\ ([0-9.]+)( \(git ([0-9a-f]+)\))?$ ]] || { echo "version: '$out'"; exit 1; }
[[ ${BASH_REMATCH[1]} == "$version" ]] || { echo "version: '$out', project version $version"; exit 1; }
rev=${BASH_REMATCH[3]}
if [[ -e $source/.git ]] && command -v git > /dev/null; then
  [[ -n $rev ]] || { echo "version: no git revision in '$out' for a git checkout"; exit 1; }
  git -C "$source" cat-file -e "$rev^{commit}" 2> /dev/null ||
    { echo "version: $rev is not a commit of $source"; exit 1; }
elif [[ -n $rev ]]; then
  echo "version: '$out' names a revision, but $source is not a git checkout"
  exit 1
fi
echo "version: ok ($out)"
