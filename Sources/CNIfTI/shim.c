#include "CNIfTI.h"
#include <nifti2_io.h>
#include <zlib.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct cnifti_image {
    nifti_image *nim;
};

#include <stdio.h>
#include <unistd.h>

static char cnifti_version[256] = "nifti_clib (nifti2_io)";
static pthread_once_t cnifti_version_once = PTHREAD_ONCE_INIT;

/* nifti_clib keeps its version string private and only prints it (nifti_disp_lib_version, to stdout):
   capture that line once through a pipe. */
static void cnifti_capture_version(void) {
    int fds[2];
    if (pipe(fds) != 0) return;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0) { close(fds[0]); close(fds[1]); return; }
    dup2(fds[1], STDOUT_FILENO);
    nifti_disp_lib_version();
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fds[1]);
    char line[200];
    ssize_t n = read(fds[0], line, sizeof(line) - 1);
    close(fds[0]);
    if (n <= 0) return;
    line[n] = 0;
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    snprintf(cnifti_version, sizeof(cnifti_version), "nifti_clib: %s; zlib %s", line, zlibVersion());
}

const char *cnifti_library_version(void) {
    pthread_once(&cnifti_version_once, cnifti_capture_version);
    return cnifti_version;
}

static pthread_once_t cnifti_once = PTHREAD_ONCE_INIT;
static void cnifti_setup(void) {
    nifti_set_debug_level(0);
    nifti_set_alter_cifti(0);
}
void cnifti_initialize(void) { pthread_once(&cnifti_once, cnifti_setup); }

int64_t cnifti_read_prefix(const char *path, void *buffer, int64_t length) {
    gzFile f = gzopen(path, "rb");
    if (!f) return -1;
    int64_t total = 0;
    char *out = (char *)buffer;
    while (total < length) {
        unsigned chunk = (unsigned)((length - total) > (1 << 30) ? (1 << 30) : (length - total));
        int n = gzread(f, out + total, chunk);
        if (n < 0) { gzclose(f); return -1; }
        if (n == 0) break;
        total += n;
    }
    int errnum = 0;
    gzerror(f, &errnum);
    gzclose(f);
    if (errnum != Z_OK && errnum != Z_BUF_ERROR) return -1;
    return total;
}

int64_t cnifti_stream_length(const char *path, int64_t limit) {
    gzFile f = gzopen(path, "rb");
    if (!f) return -1;
    gzbuffer(f, 1 << 17);
    static const unsigned chunk = 1 << 16;
    char *buffer = malloc(chunk);
    if (!buffer) { gzclose(f); return -1; }
    int64_t total = 0;
    int failed = 0;
    while (total < limit) {
        int n = gzread(f, buffer, chunk);
        if (n < 0) { failed = 1; break; }
        if (n == 0) break;
        total += n;
    }
    if (!failed) {
        int errnum = 0;
        gzerror(f, &errnum);
        /* Z_BUF_ERROR at the end: the gzip stream stopped before its trailer (a truncated file). */
        if (errnum != Z_OK) failed = 1;
    }
    free(buffer);
    gzclose(f);
    return failed ? -1 : total;
}

static void copy_matrix(const nifti_dmat44 *m, double out[16]) {
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) out[r * 4 + c] = m->m[r][c];
}

cnifti_image *cnifti_open(const char *path, cnifti_header *h) {
    cnifti_initialize();
    nifti_image *nim = nifti_image_read(path, 0);
    if (!nim) return NULL;
    cnifti_image *image = calloc(1, sizeof(cnifti_image));
    if (!image) { nifti_image_free(nim); return NULL; }
    image->nim = nim;
    memset(h, 0, sizeof(*h));
    switch (nim->nifti_type) {
    case NIFTI_FTYPE_ANALYZE: h->version = 0; h->two_files = 1; break;
    case NIFTI_FTYPE_NIFTI1_1: h->version = 1; break;
    case NIFTI_FTYPE_NIFTI1_2: h->version = 1; h->two_files = 1; break;
    case NIFTI_FTYPE_NIFTI2_1: h->version = 2; break;
    case NIFTI_FTYPE_NIFTI2_2: h->version = 2; h->two_files = 1; break;
    default: h->version = -1; break;
    }
    h->datatype = nim->datatype;
    h->nbyper = nim->nbyper;
    for (int i = 0; i < 8; i++) { h->dim[i] = nim->dim[i]; h->pixdim[i] = nim->pixdim[i]; }
    h->scl_slope = nim->scl_slope; h->scl_inter = nim->scl_inter;
    h->cal_min = nim->cal_min; h->cal_max = nim->cal_max;
    h->qform_code = nim->qform_code; h->sform_code = nim->sform_code;
    h->quatern_b = nim->quatern_b; h->quatern_c = nim->quatern_c; h->quatern_d = nim->quatern_d;
    h->qoffset_x = nim->qoffset_x; h->qoffset_y = nim->qoffset_y; h->qoffset_z = nim->qoffset_z;
    h->qfac = nim->qfac;
    copy_matrix(&nim->qto_xyz, h->qto_xyz);
    copy_matrix(&nim->sto_xyz, h->sto_xyz);
    h->xyz_units = nim->xyz_units; h->time_units = nim->time_units;
    h->intent_code = nim->intent_code;
    memcpy(h->descrip, nim->descrip, 80);
    h->descrip[80] = 0;
    h->iname_offset = nim->iname_offset;
    return image;
}

int64_t cnifti_read_volume(cnifti_image *image, const char *data_path, int64_t volume_index,
                           void *buffer, int64_t capacity) {
    nifti_image *nim = image->nim;
    int64_t needed = nim->nx * nim->ny * nim->nz * (int64_t)nim->nbyper;
    if (needed != capacity || buffer == NULL || volume_index < 0 || nim->iname_offset < 0) return -1;
    /* Read from the exact file MR2CT validated: nifti_clib's own loader looks the data file up again by base name
       and, given x.nii.gz, reads a sibling x.nii if one exists. */
    gzFile f = gzopen(data_path, "rb");
    if (!f) return -1;
    gzbuffer(f, 1 << 17);
    int64_t offset = nim->iname_offset + volume_index * needed;
    if (gzseek(f, (z_off_t)offset, SEEK_SET) != (z_off_t)offset) { gzclose(f); return -1; }
    char *out = (char *)buffer;
    int64_t total = 0;
    while (total < needed) {
        int64_t want = needed - total;
        if (want > (1 << 30)) want = 1 << 30;
        int n = gzread(f, out + total, (unsigned)want);
        if (n <= 0) break;
        total += n;
    }
    if (total == needed) {
        /* One byte more: at the end of the data this reads the gzip trailer, so a CRC or length mismatch
           (a corrupt stored block) is caught; bytes after the image are allowed. */
        char extra;
        if (gzread(f, &extra, 1) < 0) total = -1;
    }
    int errnum = 0;
    gzerror(f, &errnum);
    gzclose(f);
    if (total != needed || errnum != Z_OK) return -1;
    if (nim->byteorder != nifti_short_order() && nim->swapsize > 1)
        nifti_swap_Nbytes(needed / nim->swapsize, nim->swapsize, buffer);
    return total;
}

void cnifti_close(cnifti_image *image) {
    if (!image) return;
    nifti_image_free(image->nim);
    free(image);
}

int cnifti_write(const char *path, const cnifti_header *h, const void *data, int64_t byte_count) {
    cnifti_initialize();
    int64_t dims[8];
    for (int i = 0; i < 8; i++) dims[i] = h->dim[i];
    nifti_image *nim = nifti_make_new_nim(dims, h->datatype, 0);
    if (!nim) return ENOMEM;
    if (nim->nvox * (int64_t)nim->nbyper != byte_count) { nifti_image_free(nim); return EINVAL; }
    /* Unused dimensions are 1, as the NIfTI-1 standard asks (nifti1.h, dim[]) and nibabel writes; nifti_clib
       leaves them 0. */
    for (int i = (int)nim->dim[0] + 1; i < 8; i++) nim->dim[i] = 1;
    if (nim->dim[0] < 4) nim->nt = 1;
    if (nim->dim[0] < 5) nim->nu = 1;
    if (nim->dim[0] < 6) nim->nv = 1;
    if (nim->dim[0] < 7) nim->nw = 1;
    for (int i = 1; i < 8; i++) nim->pixdim[i] = h->pixdim[i];
    nim->dx = h->pixdim[1]; nim->dy = h->pixdim[2]; nim->dz = h->pixdim[3];
    nim->dt = h->pixdim[4]; nim->du = h->pixdim[5]; nim->dv = h->pixdim[6]; nim->dw = h->pixdim[7];
    nim->scl_slope = h->scl_slope; nim->scl_inter = h->scl_inter;
    nim->cal_min = h->cal_min; nim->cal_max = h->cal_max;
    nim->qform_code = h->qform_code; nim->sform_code = h->sform_code;
    nim->quatern_b = h->quatern_b; nim->quatern_c = h->quatern_c; nim->quatern_d = h->quatern_d;
    nim->qoffset_x = h->qoffset_x; nim->qoffset_y = h->qoffset_y; nim->qoffset_z = h->qoffset_z;
    nim->qfac = (h->qfac < 0) ? -1.0 : 1.0;
    nim->pixdim[0] = nim->qfac;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) nim->sto_xyz.m[r][c] = h->sto_xyz[r * 4 + c];
    nim->xyz_units = h->xyz_units; nim->time_units = h->time_units;
    nim->intent_code = h->intent_code;
    memcpy(nim->descrip, h->descrip, 80);
    nim->descrip[79] = 0;
    nim->nifti_type = (h->version == 2) ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;
    if (nifti_set_filenames(nim, path, 0, 1) != 0) { nifti_image_free(nim); return EINVAL; }
    /* Debian's nifti_set_filenames (3.0.1) resets the type to NIfTI-1: choose it here from the names. */
    int two_files = strcmp(nim->fname, nim->iname) != 0;
    if (h->version == 2) nim->nifti_type = two_files ? NIFTI_FTYPE_NIFTI2_2 : NIFTI_FTYPE_NIFTI2_1;
    else nim->nifti_type = two_files ? NIFTI_FTYPE_NIFTI1_2 : NIFTI_FTYPE_NIFTI1_1;

    errno = 0;
    /* Header (and extender) only, data file left open and positioned at vox_offset: the data is written here so
       that every short write and the final close are checked (nifti_image_write ignores both). */
    /* gzip level 1, as nibabel writes: ~4x faster than zlib's default 6 on float volumes, ~10% larger. */
    znzFile fp = nifti_image_write_hdr_img2(nim, 2, nifti_is_gzfile(nim->fname) ? "wb1" : "wb", NULL, NULL);
    if (znz_isnull(fp)) {
        int e = errno ? errno : EIO;
        nifti_image_free(nim);
        return e;
    }
    const char *bytes = (const char *)data;
    int64_t written = 0;
    int status = 0;
    while (written < byte_count) {
        int64_t want = byte_count - written;
        if (want > (1 << 24)) want = 1 << 24;
        errno = 0;
        size_t n = znzwrite(bytes + written, 1, (size_t)want, fp);
        if (n == 0) { status = errno ? errno : EIO; break; }
        written += (int64_t)n;
    }
    errno = 0;
    int closed = znzclose(fp);
    if (status == 0 && closed != 0) status = errno ? errno : EIO;
    nifti_image_free(nim);
    return status;
}

void cnifti_matrix_to_quatern(const double matrix[16], double out[10]) {
    nifti_dmat44 m;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) m.m[r][c] = matrix[r * 4 + c];
    nifti_dmat44_to_quatern(m, &out[0], &out[1], &out[2], &out[3], &out[4], &out[5], &out[6], &out[7], &out[8], &out[9]);
}

void cnifti_quatern_to_matrix(const double in[10], double matrix[16]) {
    nifti_dmat44 m = nifti_quatern_to_dmat44(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8], in[9]);
    copy_matrix(&m, matrix);
}
