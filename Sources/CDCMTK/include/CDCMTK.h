// CDCMTK: a thin C bridge over DCMTK (Debian's libdcmtk-dev: dcmdata, dcmimgle, dcmjpeg, dcmjpls and dcmdata's
// RLE and deflate support). C++ lives only in bridge.cpp; this header is plain C so that no DCMTK type reaches
// Swift. The DICOM module wraps it; it is not a stable API of its own.
#ifndef CDCMTK_H
#define CDCMTK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The DCMTK version string, e.g. "3.6.7".
const char *cdcm_library_version(void);

/// Registers DCMTK's JPEG, JPEG-LS and RLE decoders and silences its logger. Idempotent and thread-safe.
void cdcm_initialize(void);

/// What kind of file `cdcm_read_info` found.
enum {
    CDCM_NOT_DICOM = 0,     /* no DICM preamble magic and not a parseable DICOM dataset */
    CDCM_DIRECTORY = 1,     /* a DICOMDIR (Media Storage Directory) */
    CDCM_NON_IMAGE = 2,     /* a DICOM object without PixelData (SR, RT structures, presentation state …) */
    CDCM_IMAGE = 3,         /* a DICOM image object */
    CDCM_UNREADABLE = 4     /* DICOM (preamble present) but DCMTK could not parse it: `error` says why */
};

/// The attributes of one DICOM object that series assembly needs (stored values, unscaled).
typedef struct cdcm_info {
    int kind;                            /* one of the CDCM_ kinds above */
    char sop_class_uid[68];
    char sop_instance_uid[68];
    char series_instance_uid[68];
    char study_instance_uid[68];
    char frame_of_reference_uid[68];
    char transfer_syntax_uid[68];
    char transfer_syntax_name[96];       /* DCMTK's name of the transfer syntax */
    int transfer_syntax_decodable;       /* 1 when the bridge can decode it (see bridge.cpp) */
    char modality[20];
    char series_description[68];
    char photometric[20];
    int32_t series_number, has_series_number;
    int32_t instance_number, has_instance_number;
    int32_t rows, columns, samples_per_pixel, bits_allocated, bits_stored, high_bit, pixel_representation;
    int32_t number_of_frames;            /* 1 when absent */
    int has_position, has_orientation, has_pixel_spacing, has_rescale, has_gantry_tilt, has_slice_thickness;
    double position[3];                  /* ImagePositionPatient (LPS, mm) */
    double orientation[6];               /* ImageOrientationPatient: row then column direction cosines */
    double pixel_spacing[2];             /* PixelSpacing: row spacing (between rows), column spacing */
    double slice_thickness;
    double rescale_slope, rescale_intercept;
    double gantry_tilt;                  /* GantryDetectorTilt (degrees) */
    int64_t pixel_data_length;           /* the PixelData element's length as stored (-1 undefined/encapsulated) */
} cdcm_info;

/// Reads the header of `path` (PixelData not loaded) into `info`. Returns 0 when `info->kind` is meaningful
/// (including CDCM_NOT_DICOM), -1 on an I/O error with `error` set.
int cdcm_read_info(const char *path, cdcm_info *info, char *error, int error_capacity);

/// Decodes the single frame of `path` into `out` (`count` = rows·columns floats, row by row, column fastest) as
/// stored values: masked to BitsStored and sign-extended when PixelRepresentation is 1, not rescaled.
/// Returns 0, or -1 with `error` set (truncated or missing pixel data, undecodable transfer syntax, size mismatch).
int cdcm_read_pixels(const char *path, float *out, int64_t count, char *error, int error_capacity);

/// A (group, element) tag.
typedef struct cdcm_tag { uint16_t group, element; } cdcm_tag;

/// One attribute to set on a written object: the tag (its VR from DCMTK's data dictionary) and its value as
/// DICOM string form (backslash-separated for multiple values; "" writes an empty, present attribute).
typedef struct cdcm_value { cdcm_tag tag; const char *value; } cdcm_value;

/// One CT slice to write.
typedef struct cdcm_slice_write {
    const char *template_path;           /* the source MR object whose attributes `copy` lists are copied */
    const cdcm_tag *copy; int copy_count;
    const cdcm_value *values; int value_count;      /* set after copying (override) */
    const cdcm_tag *ensure; int ensure_count;       /* inserted empty when still absent (type-2 attributes) */
    const char *source_sop_class_uid;    /* SourceImageSequence item; NULL for none */
    const char *source_sop_instance_uid;
    const char *referenced_series_uid;   /* ReferencedSeriesSequence item; NULL for none */
    int32_t rows, columns;
    const int16_t *pixels;               /* rows·columns signed 16-bit values, row by row */
    const char *output_path;
} cdcm_slice_write;

/// Writes one slice as a DICOM Part-10 file (explicit VR little endian, file meta information generated).
/// Returns 0, or -1 with `error` set.
int cdcm_write_slice(const cdcm_slice_write *slice, char *error, int error_capacity);

#ifdef __cplusplus
}
#endif

#endif
