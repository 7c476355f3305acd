/* Vision tower (placeholder). */
#include "model/model.h"
