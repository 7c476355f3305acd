/* libFuzzer target: a whole safetensors file image -> g4c_st_parse_buffer. Every input must either parse (then
 * every tensor's bytes are read, so ASan sees any out-of-bounds view) or fail with a message. */
#include "formats/formats.h"

volatile unsigned char fuzz_sink; /* keeps the reads of tensor bytes */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    g4c_tensor_set *ts = NULL;
    g4c_err err = {0};
    if (g4c_st_parse_buffer(&ts, data, size, "fuzz", &err) == G4C_OK) {
        for (int i = 0; i < ts->n_tensors; i++) {
            const unsigned char *p = ts->tensors[i].data;
            for (size_t j = 0; j < ts->tensors[i].size_bytes; j++) fuzz_sink ^= p[j];
            (void)g4c_st_find(ts, ts->tensors[i].name);
        }
        g4c_st_free(ts);
    } else if (!err.msg[0]) {
        __builtin_trap(); /* every failure must say why */
    }
    return 0;
}
