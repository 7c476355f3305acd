/* gemma4c synth, private to src/cli: the size presets (cmd_synth.c) and the small files beside the weights
 * (synth_files.c: config.json & co. in transformers' layout, the tokenizer copied in). */
#ifndef G4C_CLI_SYNTH_H
#define G4C_CLI_SYNTH_H

#include "base/base.h"

typedef struct {
    const char *name, *label;
    int H, L, n_head, n_kv, n_kv_full, hd, hd_full, ffn, window, n_kv_shared, ple, max_pos;
    int full_every;  /* layer i is full attention when (i + 1) % full_every == 0 (and the last always is) */
    int k_eq_v, double_wide, n_expert, top_k, moe_ffn, bidir;
    int vH, vL, v_heads, v_hd, v_ffn, v_clipped, v_std;
    const char *published; /* what the model card says, to set our count against */
} preset;

static inline int layer_full(const preset *p, int i) { return (i + 1) % p->full_every == 0 || i == p->L - 1; }

/* config.json, generation_config.json, processor_config.json, tokenizer.json (+ tokenizer_config.json) in out;
 * tok may be NULL (a warning). Non-zero on failure, after a message on stderr. */
int synth_write_side_files(const char *out, const preset *p, g4c_dtype dt, int vision, const char *tok);

#endif
