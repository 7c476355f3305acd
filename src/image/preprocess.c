/* Image preprocessing (placeholder). */
#include "image/image.h"
