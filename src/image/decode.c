/* Image decoding (placeholder). */
#include "image/image.h"
