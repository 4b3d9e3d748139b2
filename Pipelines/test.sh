#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with the Swift toolchain: installs what is missing, builds
# optimised (numeric tests compare against PyTorch-made fixtures and run fast in release), and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# dicom3tools (dciodvfy) and dcm2niix: the DICOM tests check written CT series with them (issue 19).
MR2CT_SKIP_BUILD=1 MR2CT_EXTRA_PACKAGES="dicom3tools dcm2niix" bash Pipelines/setup.sh
swift build -c release -Xswiftc -enable-testing --build-tests
# One test at a time: the engine's thread count (OpenBLAS and the element-wise loops) is process-wide state, and
# suites that set it or fork kernels while another suite compares results bit for bit make that comparison flaky.
swift test -c release -Xswiftc -enable-testing --skip-build --no-parallel "$@"
