// COpenBLAS: Debian's OpenBLAS (libopenblas-dev), CBLAS interface and thread control.
#include <cblas.h>
