#!/usr/bin/env bash
# Installs the Debian packages MR2CT builds on, where missing (non-interactively), then builds the release tool.
# Used by demo.sh and test.sh; safe to run again. Needs root or sudo only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libnifti-dev libopenblas-dev libdnnl-dev zlib1g-dev libpng-dev libdcmtk-dev libopenmpi-dev openmpi-bin)
# Callers may ask for more (test.sh: the independent DICOM tools the tests check our output with).
read -r -a extra <<< "${MR2CT_EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [ "${MR2CT_SKIP_BUILD:-0}" != 1 ]; then
  swift build -c release --product mr2ct >&2
fi
