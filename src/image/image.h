/* image: bytes of a JPEG/PNG file -> RGB pixels -> the model's pixel patches (spec §4.1). */
#ifndef G4C_IMAGE_IMAGE_H
#define G4C_IMAGE_IMAGE_H

#include "base/base.h"

#endif
