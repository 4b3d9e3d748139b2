// CNIfTI: a thin bridge over Debian's nifti_clib (nifti2_io, reads NIfTI-1 and NIfTI-2).
// This module provides no stable Swift API: the NIfTI module wraps it. No nifti_clib type appears here,
// so nifti's own headers (which include <znzlib.h> in angle brackets) are seen only by shim.c.
#ifndef CNIFTI_H
#define CNIFTI_H

/// The nifti_clib version string, for `mr2ct --version`.
const char *cnifti_library_version(void);

#endif
