/* runtime: the public API's objects (model = config + weights + thread pool; session = one sequence's state)
 * and sampling. Implements include/gemma4c.h on top of model/. */
#ifndef G4C_RUNTIME_RUNTIME_H
#define G4C_RUNTIME_RUNTIME_H

#include "model/model.h"

struct g4c_model {
    g4c_config cfg;
    g4c_weights w;
    g4c_vision_w vw;
    int has_vision;
    char vision_err[512]; /* why the vision tower is unusable, when has_vision is 0 */
    g4c_tensor_set *ts;
    g4c_pool *pool;
    char *path;
};

struct g4c_session {
    g4c_model *model;
    g4c_text_state st;
};

#endif
