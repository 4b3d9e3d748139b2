// The only C++ in MR2CT: DCMTK reached through the plain-C API of include/CDCMTK.h.
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/oflog/oflog.h"

#include <cstdio>
#include <cstring>
#include <mutex>

#include "CDCMTK.h"

namespace {

void setError(char *error, int capacity, const char *text) {
    if (error && capacity > 0) {
        std::snprintf(error, static_cast<size_t>(capacity), "%s", text);
    }
}

void copyString(char *destination, size_t capacity, const OFString &value) {
    std::snprintf(destination, capacity, "%s", value.c_str());
}

/// The transfer syntaxes whose pixel data this bridge decodes: the uncompressed and deflated ones (dcmdata) and
/// the codecs registered in cdcm_initialize (dcmjpeg, dcmjpls, dcmdata's RLE decoder).
bool decodable(E_TransferSyntax xfer) {
    switch (xfer) {
    case EXS_LittleEndianImplicit:
    case EXS_LittleEndianExplicit:
    case EXS_BigEndianExplicit:
    case EXS_DeflatedLittleEndianExplicit:
    case EXS_JPEGProcess1:
    case EXS_JPEGProcess2_4:
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1:
    case EXS_JPEGLSLossless:
    case EXS_JPEGLSLossy:
    case EXS_RLELossless:
        return true;
    default:
        return false;
    }
}

/// True when the file carries the Part-10 preamble magic "DICM" at byte 128.
bool hasPreamble(const char *path) {
    FILE *file = std::fopen(path, "rb");
    if (!file) return false;
    unsigned char bytes[132];
    size_t got = std::fread(bytes, 1, sizeof bytes, file);
    std::fclose(file);
    return got == sizeof bytes && std::memcmp(bytes + 128, "DICM", 4) == 0;
}

/// Whether DCMTK returned at least `count` pixel values; sets `error` when not.
template <typename T>
bool checkValues(const OFCondition &status, const T *values, unsigned long n, int64_t count, char *error, int capacity) {
    if (status.bad() || !values) {
        setError(error, capacity, status.bad() ? status.text() : "no pixel data");
        return false;
    }
    if (static_cast<int64_t>(n) < count) {
        char text[160];
        std::snprintf(text, sizeof text, "pixel data truncated: %lu of %lld values", n, static_cast<long long>(count));
        setError(error, capacity, text);
        return false;
    }
    return true;
}

}  // namespace

extern "C" {

const char *cdcm_library_version(void) { return OFFIS_DCMTK_VERSION_STRING; }

void cdcm_initialize(void) {
    static std::once_flag once;
    std::call_once(once, [] {
        OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
        DJDecoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
        DcmRLEDecoderRegistration::registerCodecs();
    });
}

int cdcm_read_info(const char *path, cdcm_info *info, char *error, int error_capacity) {
    cdcm_initialize();
    std::memset(info, 0, sizeof *info);
    info->number_of_frames = 1;
    info->rescale_slope = 1;
    info->pixel_data_length = -1;
    FILE *probe = std::fopen(path, "rb");
    if (!probe) {
        setError(error, error_capacity, std::strerror(errno));
        return -1;
    }
    std::fclose(probe);

    const bool preamble = hasPreamble(path);
    DcmFileFormat file;
    // Values longer than 4 KiB (PixelData) stay on disk until accessed.
    OFCondition status = file.loadFile(path, EXS_Unknown, EGL_noChange, 4096,
                                       preamble ? ERM_autoDetect : ERM_dataset);
    DcmDataset *ds = file.getDataset();
    if (!preamble) {
        // Without the preamble only a dataset that parses and names its SOP class and series counts as DICOM;
        // anything else (notes, NIfTI files, scripts) is not DICOM.
        OFString sopClass, series;
        if (status.bad() || ds->findAndGetOFString(DCM_SOPClassUID, sopClass).bad() || sopClass.empty()
            || ds->findAndGetOFString(DCM_SeriesInstanceUID, series).bad() || series.empty()) {
            info->kind = CDCM_NOT_DICOM;
            return 0;
        }
    } else if (status.bad()) {
        info->kind = CDCM_UNREADABLE;
        setError(error, error_capacity, status.text());
        return 0;
    }

    OFString mediaClass;
    file.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, mediaClass);
    if (mediaClass == UID_MediaStorageDirectoryStorage || ds->tagExists(DCM_DirectoryRecordSequence)) {
        info->kind = CDCM_DIRECTORY;
        return 0;
    }

    OFString s;
    if (ds->findAndGetOFString(DCM_SOPClassUID, s).good()) copyString(info->sop_class_uid, sizeof info->sop_class_uid, s);
    if (ds->findAndGetOFString(DCM_SOPInstanceUID, s).good()) copyString(info->sop_instance_uid, sizeof info->sop_instance_uid, s);
    if (ds->findAndGetOFString(DCM_SeriesInstanceUID, s).good()) copyString(info->series_instance_uid, sizeof info->series_instance_uid, s);
    if (ds->findAndGetOFString(DCM_StudyInstanceUID, s).good()) copyString(info->study_instance_uid, sizeof info->study_instance_uid, s);
    if (ds->findAndGetOFString(DCM_FrameOfReferenceUID, s).good()) copyString(info->frame_of_reference_uid, sizeof info->frame_of_reference_uid, s);
    if (ds->findAndGetOFString(DCM_Modality, s).good()) copyString(info->modality, sizeof info->modality, s);
    if (ds->findAndGetOFString(DCM_SeriesDescription, s).good()) copyString(info->series_description, sizeof info->series_description, s);
    if (ds->findAndGetOFString(DCM_PhotometricInterpretation, s).good()) copyString(info->photometric, sizeof info->photometric, s);

    DcmXfer xfer(ds->getOriginalXfer());
    copyString(info->transfer_syntax_uid, sizeof info->transfer_syntax_uid, xfer.getXferID());
    copyString(info->transfer_syntax_name, sizeof info->transfer_syntax_name, xfer.getXferName());
    info->transfer_syntax_decodable = decodable(xfer.getXfer()) ? 1 : 0;

    Sint32 i32;
    if (ds->findAndGetSint32(DCM_SeriesNumber, i32).good()) { info->series_number = i32; info->has_series_number = 1; }
    if (ds->findAndGetSint32(DCM_InstanceNumber, i32).good()) { info->instance_number = i32; info->has_instance_number = 1; }
    if (ds->findAndGetSint32(DCM_NumberOfFrames, i32).good()) info->number_of_frames = i32;
    Uint16 u16;
    if (ds->findAndGetUint16(DCM_Rows, u16).good()) info->rows = u16;
    if (ds->findAndGetUint16(DCM_Columns, u16).good()) info->columns = u16;
    if (ds->findAndGetUint16(DCM_SamplesPerPixel, u16).good()) info->samples_per_pixel = u16;
    if (ds->findAndGetUint16(DCM_BitsAllocated, u16).good()) info->bits_allocated = u16;
    if (ds->findAndGetUint16(DCM_BitsStored, u16).good()) info->bits_stored = u16;
    if (ds->findAndGetUint16(DCM_HighBit, u16).good()) info->high_bit = u16;
    if (ds->findAndGetUint16(DCM_PixelRepresentation, u16).good()) info->pixel_representation = u16;

    Float64 f;
    info->has_position = 1;
    for (unsigned long k = 0; k < 3; ++k) {
        if (ds->findAndGetFloat64(DCM_ImagePositionPatient, f, k).bad()) { info->has_position = 0; break; }
        info->position[k] = f;
    }
    info->has_orientation = 1;
    for (unsigned long k = 0; k < 6; ++k) {
        if (ds->findAndGetFloat64(DCM_ImageOrientationPatient, f, k).bad()) { info->has_orientation = 0; break; }
        info->orientation[k] = f;
    }
    info->has_pixel_spacing = 1;
    for (unsigned long k = 0; k < 2; ++k) {
        if (ds->findAndGetFloat64(DCM_PixelSpacing, f, k).bad()) { info->has_pixel_spacing = 0; break; }
        info->pixel_spacing[k] = f;
    }
    if (ds->findAndGetFloat64(DCM_SliceThickness, f).good()) { info->slice_thickness = f; info->has_slice_thickness = 1; }
    Float64 slope, intercept;
    if (ds->findAndGetFloat64(DCM_RescaleSlope, slope).good() && ds->findAndGetFloat64(DCM_RescaleIntercept, intercept).good()) {
        info->rescale_slope = slope;
        info->rescale_intercept = intercept;
        info->has_rescale = 1;
    }
    if (ds->findAndGetFloat64(DCM_GantryDetectorTilt, f).good()) { info->gantry_tilt = f; info->has_gantry_tilt = 1; }

    DcmElement *pixels = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, pixels).good() && pixels) {
        info->kind = CDCM_IMAGE;
        Uint32 length = pixels->getLengthField();
        info->pixel_data_length = length == DCM_UndefinedLength ? -1 : static_cast<int64_t>(length);
    } else {
        info->kind = CDCM_NON_IMAGE;
    }
    return 0;
}

int cdcm_read_pixels(const char *path, float *out, int64_t count, char *error, int error_capacity) {
    cdcm_initialize();
    DcmFileFormat file;
    const bool preamble = hasPreamble(path);
    OFCondition status = file.loadFile(path, EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                       preamble ? ERM_autoDetect : ERM_dataset);
    if (status.bad()) { setError(error, error_capacity, status.text()); return -1; }
    DcmDataset *ds = file.getDataset();
    DcmXfer original(ds->getOriginalXfer());
    if (!decodable(original.getXfer())) {
        char text[160];
        std::snprintf(text, sizeof text, "transfer syntax %s is not supported", original.getXferName());
        setError(error, error_capacity, text);
        return -1;
    }
    if (original.isEncapsulated()) {
        status = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
        if (status.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit)) {
            char text[200];
            std::snprintf(text, sizeof text, "cannot decode %s pixel data: %s", original.getXferName(),
                          status.bad() ? status.text() : "decoder failed");
            setError(error, error_capacity, text);
            return -1;
        }
    }
    Uint16 rows = 0, columns = 0, allocated = 0, stored = 0, representation = 0, samples = 1;
    ds->findAndGetUint16(DCM_Rows, rows);
    ds->findAndGetUint16(DCM_Columns, columns);
    ds->findAndGetUint16(DCM_BitsAllocated, allocated);
    ds->findAndGetUint16(DCM_BitsStored, stored);
    ds->findAndGetUint16(DCM_PixelRepresentation, representation);
    ds->findAndGetUint16(DCM_SamplesPerPixel, samples);
    if (static_cast<int64_t>(rows) * columns != count || samples != 1) {
        setError(error, error_capacity, "pixel matrix differs from the header read before");
        return -1;
    }
    if (stored == 0 || stored > allocated) stored = allocated;
    if (allocated == 16) {
        const Uint16 *values = nullptr;
        unsigned long n = 0;
        status = ds->findAndGetUint16Array(DCM_PixelData, values, &n);
        if (!checkValues(status, values, n, count, error, error_capacity)) return -1;
        const uint32_t mask = stored >= 16 ? 0xFFFFu : ((1u << stored) - 1u);
        const uint32_t sign = 1u << (stored - 1);
        for (int64_t v = 0; v < count; ++v) {
            uint32_t raw = values[v] & mask;
            if (representation == 1 && (raw & sign)) {
                out[v] = static_cast<float>(static_cast<int32_t>(raw) - static_cast<int32_t>(mask) - 1);
            } else {
                out[v] = static_cast<float>(raw);
            }
        }
        return 0;
    }
    if (allocated == 8) {
        const Uint8 *values = nullptr;
        unsigned long n = 0;
        status = ds->findAndGetUint8Array(DCM_PixelData, values, &n);
        if (!checkValues(status, values, n, count, error, error_capacity)) return -1;
        for (int64_t v = 0; v < count; ++v) {
            out[v] = representation == 1 ? static_cast<float>(static_cast<int8_t>(values[v])) : static_cast<float>(values[v]);
        }
        return 0;
    }
    char text[100];
    std::snprintf(text, sizeof text, "BitsAllocated %u is not supported (8 or 16)", allocated);
    setError(error, error_capacity, text);
    return -1;
}

int cdcm_write_slice(const cdcm_slice_write *slice, char *error, int error_capacity) {
    cdcm_initialize();
    DcmFileFormat source;
    OFCondition status = source.loadFile(slice->template_path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
    if (status.bad()) {
        char text[300];
        std::snprintf(text, sizeof text, "cannot read the source MR object %s: %s", slice->template_path, status.text());
        setError(error, error_capacity, text);
        return -1;
    }
    DcmDataset *from = source.getDataset();
    DcmFileFormat file;
    DcmDataset *to = file.getDataset();
    for (int c = 0; c < slice->copy_count; ++c) {
        DcmElement *element = nullptr;
        DcmTagKey key(slice->copy[c].group, slice->copy[c].element);
        if (from->findAndGetElement(key, element).good() && element) {
            to->insert(OFstatic_cast(DcmElement *, element->clone()), OFTrue);
        }
    }
    for (int v = 0; v < slice->value_count; ++v) {
        DcmTagKey key(slice->values[v].tag.group, slice->values[v].tag.element);
        status = to->putAndInsertString(key, slice->values[v].value, OFTrue);
        if (status.bad()) {
            char text[200];
            std::snprintf(text, sizeof text, "cannot set (%04X,%04X): %s", key.getGroup(), key.getElement(), status.text());
            setError(error, error_capacity, text);
            return -1;
        }
    }
    for (int e = 0; e < slice->ensure_count; ++e) {
        DcmTagKey key(slice->ensure[e].group, slice->ensure[e].element);
        if (!to->tagExists(key)) to->insertEmptyElement(key);
    }
    if (slice->source_sop_instance_uid && slice->source_sop_class_uid) {
        DcmItem *item = nullptr;
        if (to->findOrCreateSequenceItem(DCM_SourceImageSequence, item, -2).good() && item) {
            item->putAndInsertString(DCM_ReferencedSOPClassUID, slice->source_sop_class_uid);
            item->putAndInsertString(DCM_ReferencedSOPInstanceUID, slice->source_sop_instance_uid);
        }
    }
    if (slice->referenced_series_uid) {
        DcmItem *item = nullptr;
        if (to->findOrCreateSequenceItem(DCM_ReferencedSeriesSequence, item, -2).good() && item) {
            item->putAndInsertString(DCM_SeriesInstanceUID, slice->referenced_series_uid);
        }
    }
    to->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(slice->rows));
    to->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(slice->columns));
    to->putAndInsertUint16(DCM_SamplesPerPixel, 1);
    to->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
    to->putAndInsertUint16(DCM_BitsAllocated, 16);
    to->putAndInsertUint16(DCM_BitsStored, 16);
    to->putAndInsertUint16(DCM_HighBit, 15);
    to->putAndInsertUint16(DCM_PixelRepresentation, 1);
    const unsigned long count = static_cast<unsigned long>(slice->rows) * static_cast<unsigned long>(slice->columns);
    status = to->putAndInsertUint16Array(DCM_PixelData, reinterpret_cast<const Uint16 *>(slice->pixels), count);
    if (status.bad()) { setError(error, error_capacity, status.text()); return -1; }
    status = file.saveFile(slice->output_path, EXS_LittleEndianExplicit);
    if (status.bad()) {
        char text[300];
        std::snprintf(text, sizeof text, "cannot write %s: %s", slice->output_path, status.text());
        setError(error, error_capacity, text);
        return -1;
    }
    return 0;
}

}  // extern "C"
