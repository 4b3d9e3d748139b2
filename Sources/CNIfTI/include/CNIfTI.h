// CNIfTI: a thin bridge over Debian's nifti_clib (nifti2_io, reads NIfTI-1 and NIfTI-2) and zlib.
// This module provides no stable Swift API: the NIfTI module wraps it. No nifti_clib type appears here,
// so nifti's own headers (which include <znzlib.h> in angle brackets) are seen only by shim.c.
#ifndef CNIFTI_H
#define CNIFTI_H

#include <stdint.h>

/// The nifti_clib version string, for `mr2ct --version`.
const char *cnifti_library_version(void);

/// Silences nifti_clib's diagnostics (debug level 0). Idempotent and thread-safe.
void cnifti_initialize(void);

/// The header fields MR2CT uses, as nifti_clib parsed them (its nifti_image, flattened).
typedef struct cnifti_header {
    int version;              /* 0 ANALYZE 7.5, 1 NIfTI-1, 2 NIfTI-2 */
    int two_files;            /* 1 for .hdr/.img pairs */
    int datatype;
    int nbyper;
    int64_t dim[8];
    double pixdim[8];
    double scl_slope, scl_inter, cal_min, cal_max;
    int qform_code, sform_code;
    double quatern_b, quatern_c, quatern_d, qoffset_x, qoffset_y, qoffset_z, qfac;
    double qto_xyz[16];       /* row-major 4x4 */
    double sto_xyz[16];
    int xyz_units, time_units;
    int intent_code;
    char descrip[81];
    int64_t iname_offset;
} cnifti_header;

/// An open NIfTI dataset (header read, no data); opaque.
typedef struct cnifti_image cnifti_image;

/// Reads up to `length` bytes from the start of `path`, decompressing gzip if the file is gzip (zlib's gzread
/// reads plain files as they are). Returns the number of bytes read, or -1 (open failure or corrupt gzip stream).
int64_t cnifti_read_prefix(const char *path, void *buffer, int64_t length);

/// The decompressed length of `path` (its plain length when not gzip), reading at most `limit` bytes;
/// -1 when the gzip stream is corrupt or truncated, or the file cannot be opened.
int64_t cnifti_stream_length(const char *path, int64_t limit);

/// Opens `path` with nifti_image_read (header and extensions only) and fills `header`. NULL on failure.
cnifti_image *cnifti_open(const char *path, cnifti_header *header);

/// Reads 3-D volume `volume_index` (0 for a 3-D file) of `data_path` (the .nii itself, or the pair's .img) into
/// `buffer` (`capacity` bytes, exactly nx*ny*nz*nbyper), byte-swapped to native order. Returns the number of
/// bytes read, or -1 (short data, corrupt gzip stream, bad arguments).
int64_t cnifti_read_volume(cnifti_image *image, const char *data_path, int64_t volume_index,
                           void *buffer, int64_t capacity);

void cnifti_close(cnifti_image *image);

/// Writes a NIfTI file with nifti_clib: the format follows `path`'s name (.nii, .nii.gz, .hdr, .hdr.gz);
/// `header` supplies dims, pixdim, codes, quaternion, srows (sto_xyz), units, scaling; `data` holds
/// nvox * nbyper bytes of `header->datatype`. Returns 0, or an errno value (EIO when nifti_clib fails without one).
int cnifti_write(const char *path, const cnifti_header *header, const void *data, int64_t byte_count);

/// nifti_dmat44_to_quatern: quaternion (b, c, d), offsets, spacings and qfac of a row-major 4x4 matrix.
void cnifti_matrix_to_quatern(const double matrix[16], double out[10]);

/// nifti_quatern_to_dmat44: the row-major 4x4 matrix of quaternion (b, c, d), offsets, spacings and qfac.
void cnifti_quatern_to_matrix(const double in[10], double matrix[16]);

#endif
