// CPNG: Debian's libpng (libpng-dev), used to write PNG previews and training sample grids.
#include <png.h>
