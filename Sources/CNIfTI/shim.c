#include "CNIfTI.h"
#include <nifti2_io.h>

const char *cnifti_library_version(void) {
    return "nifti_clib 2 (nifti2_io)";
}
