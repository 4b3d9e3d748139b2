#!/bin/sh
# Builds nifti_clib (nifti2_io + znzlib) from source with libFuzzer coverage and AddressSanitizer into static
# libraries, so that the NIfTI fuzzer also explores nifti_clib's own header conversion and extension parsing.
# Usage: Tests/Fuzz/nifti/build-instrumented-nifti_clib.sh NIFTI_CLIB_SOURCE_DIR OUT_DIR
#   (source: https://github.com/NIFTI-Imaging/nifti_clib at tag v3.0.1, the version Debian 12 ships)
# Then add  -Xcc -fsanitize=fuzzer-no-link,address -Xlinker -L"$OUT_DIR"  to the fuzz build command: the linker
# finds libnifti2.a / libznz.a there before the system's shared libraries.
set -eu
src=$1
out=$2
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer-no-link,address -DHAVE_ZLIB -I$src/nifti2 -I$src/niftilib -I$src/znzlib"
clang $flags -c "$src/znzlib/znzlib.c" -o "$out/znzlib.o"
clang $flags -c "$src/nifti2/nifti2_io.c" -o "$out/nifti2_io.o"
ar rcs "$out/libznz.a" "$out/znzlib.o"
ar rcs "$out/libnifti2.a" "$out/nifti2_io.o"
echo "built $out/libnifti2.a $out/libznz.a"
