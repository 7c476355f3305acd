/* model: Gemma 4 as data (config), bound weights, KV cache and the text decoder's forward pass.
 * Spec: docs/gemma4-spec.md §1 (configs), §3 (decoder), §8.1 (tensor names). Everything that differs between E2B,
 * E4B, 26B-A4B and 31B is a field here, read from config.json: no size is hard-coded. */
#ifndef G4C_MODEL_MODEL_H
#define G4C_MODEL_MODEL_H

#include "formats/formats.h"
#include "kernels/ops.h"

#define G4C_MAX_EOS 8

typedef enum { G4C_LAYER_SLIDING = 0, G4C_LAYER_FULL = 1 } g4c_layer_type;
typedef enum { G4C_ROPE_DEFAULT = 0, G4C_ROPE_PROPORTIONAL = 1 } g4c_rope_type;

typedef struct {
    g4c_rope_type type;
    float theta;           /* rope_theta */
    float partial_rotary;  /* partial_rotary_factor (proportional only; 1 = all) */
    float factor;          /* divides inv_freq (proportional "factor"; 1 if absent) */
} g4c_rope_cfg;

typedef struct {
    g4c_layer_type type;
    int head_dim;     /* 256 sliding / 512 full on released models (per_layer_config / global_head_dim) */
    int n_kv_head;    /* num_key_value_heads, or the per-layer override */
    int k_eq_v;       /* full layer of an attention_k_eq_v model: V is the raw K projection, no v_proj */
    int kv_source;    /* layer whose K/V this layer reads: itself, or the last non-shared layer of its type (§1.2) */
    int kv_slot;      /* index of the KV cache this layer owns, or -1 for KV-shared layers */
    int ffn_dim;      /* intermediate_size, doubled on KV-shared layers when use_double_wide_mlp */
} g4c_layer_cfg;

/* vision_config (spec §1.3, §4): present only in multimodal checkpoints */
typedef struct {
    int present;
    int n_embd;           /* hidden_size (768 E-models, 1152 large) */
    int n_layer;          /* num_hidden_layers */
    int n_head;           /* num_attention_heads (= num_key_value_heads) */
    int head_dim;
    int ffn_dim;          /* intermediate_size */
    int patch_size;       /* 16 */
    int pool;             /* pooling_kernel_size, 3 */
    int n_pos;            /* position_embedding_size */
    int clipped_linears;  /* use_clipped_linears (E-models) */
    int standardize;      /* std_bias / std_scale after pooling (large models) */
    float eps;
    float rope_theta;     /* 100 */
} g4c_vision_cfg;

/* MLX affine quantization (spec §8.3): config.json "quantization" (or mlx-vlm's copy "quantization_config"):
 * {"group_size": 64, "bits": 4, "mode": "affine", "<module path>": {"group_size": 64, "bits": 8} | false, ...}.
 * A module path is the tensor name without ".weight" (e.g. "language_model.model.layers.0.router.proj"). A matrix is
 * quantized when its X.weight is stored as U32 (then X.scales and X.biases exist); its group/bits are the entry for
 * its path, else the defaults. */
typedef struct {
    char *path;
    int group, bits; /* bits 0: the entry is false (module left unquantized) */
} g4c_quant_entry;
typedef struct {
    int present;               /* the config has a quantization block */
    int group, bits;           /* defaults */
    g4c_quant_entry *entries;  /* per-module overrides */
    int n_entries;
} g4c_quant_cfg;
/* The group size and bits that apply to a module (the override, else the defaults). */
void g4c_quant_lookup(const g4c_quant_cfg *q, const char *module_path, int *group, int *bits);

typedef struct {
    /* text_config */
    int n_vocab;          /* vocab_size */
    int n_embd;           /* hidden_size */
    int n_layer;          /* num_hidden_layers */
    int n_head;           /* num_attention_heads */
    int n_kv_shared;      /* num_kv_shared_layers */
    int sliding_window;
    int max_pos;          /* max_position_embeddings */
    float eps;            /* rms_norm_eps */
    float final_softcap;  /* final_logit_softcapping; 0 = none */
    int tie_embeddings;
    int k_eq_v;           /* attention_k_eq_v */
    int double_wide_mlp;  /* use_double_wide_mlp */
    int bidir_vision;     /* use_bidirectional_attention == "vision" (image blocks, issue 3) */
    int moe;              /* enable_moe_block */
    int n_expert, n_expert_used, moe_ffn_dim;
    int ple_dim;          /* hidden_size_per_layer_input; 0 = no per-layer embeddings */
    int ple_vocab;        /* vocab_size_per_layer_input */
    g4c_rope_cfg rope[2]; /* indexed by g4c_layer_type */
    g4c_layer_cfg *layers; /* [n_layer] */
    int n_kv_slots;       /* layers that own a KV cache */
    /* special tokens */
    int bos_id, pad_id;
    int eos_ids[G4C_MAX_EOS];
    int n_eos;
    int image_token_id, video_token_id, audio_token_id, boi_token_id, eoi_token_id;
    g4c_vision_cfg vision;
    g4c_quant_cfg quant;  /* MLX checkpoints */
} g4c_config;

/* Parse config.json (Gemma4ForConditionalGeneration layout with text_config, or a bare gemma4_text config).
 * `what` names the source in messages. On success cfg->layers (and cfg->quant.entries) are malloc'd; free with
 * g4c_config_free. */
g4c_status g4c_config_parse(g4c_config *cfg, const cJSON *root, const char *what, g4c_err *err);
g4c_status g4c_config_load(g4c_config *cfg, const char *path, g4c_err *err);
void g4c_config_free(g4c_config *cfg);

/* ---- weights ---------------------------------------------------------------------------------------------- */

typedef struct {
    g4c_wmat q, k, v, o;                 /* k, v empty on KV-shared layers; v empty on k_eq_v full layers */
    g4c_wmat gate, up, down;             /* dense MLP (the shared branch on MoE models) */
    g4c_wmat router;                     /* [n_expert][n_embd] */
    g4c_wmat exp_gate_up;                /* [n_expert * 2 * moe_ffn][n_embd]: per expert, gate rows then up rows */
    g4c_wmat exp_gate, exp_up;           /* or split (mlx-vlm switch_glu): [n_expert * moe_ffn][n_embd] each; when
                                            exp_gate.data is set, exp_gate_up is empty */
    g4c_wmat exp_down;                   /* [n_expert * n_embd][moe_ffn] */
    g4c_wmat ple_gate;                   /* per_layer_input_gate [ple_dim][n_embd] */
    g4c_wmat ple_proj;                   /* per_layer_projection [n_embd][ple_dim] */
    /* small vectors, converted to f32 at load */
    float *attn_norm, *post_attn_norm, *pre_ffn_norm, *post_ffn_norm; /* [n_embd] */
    float *q_norm, *k_norm;                                           /* [head_dim] */
    float *pre_ffn_norm_2, *post_ffn_norm_1, *post_ffn_norm_2;        /* MoE [n_embd] */
    float *router_scale;                                              /* [n_embd] */
    float *per_expert_scale;                                          /* [n_expert] */
    float *ple_post_norm;                                             /* post_per_layer_input_norm [n_embd] */
    float layer_scalar;
} g4c_layer_w;

typedef struct {
    g4c_wmat embed;          /* embed_tokens [n_vocab][n_embd] */
    g4c_wmat lm_head;        /* = embed when tied */
    g4c_wmat ple_embed;      /* embed_tokens_per_layer [ple_vocab][n_layer * ple_dim] */
    g4c_wmat ple_model_proj; /* per_layer_model_projection [n_layer * ple_dim][n_embd] */
    float *ple_proj_norm;    /* per_layer_projection_norm [ple_dim] */
    float *final_norm;       /* norm [n_embd] */
    g4c_layer_w *layers;     /* [n_layer] */
    float **owned;           /* every converted f32 vector above, freed together */
    size_t n_owned;
    void *repacked;          /* the matrices' CPU layout copies (g4c_wmat.x8, repack.c), one mapping */
    size_t repacked_bytes;
    int repack_done;
} g4c_weights;

/* Bind the text decoder's tensors from ts, checking every shape against cfg. Names follow the HF layouts
 * (spec §8.1): prefix "model.language_model." (multimodal) or "model." (gemma4_text), or mlx-vlm's
 * "language_model.model." with MLX affine matrices (U32 codes + scales + biases, cfg->quant; spec §8.3). */
g4c_status g4c_weights_bind(g4c_weights *w, const g4c_config *cfg, const g4c_tensor_set *ts, g4c_err *err);
void g4c_weights_free(g4c_weights *w);
/* Give Q4_0 / Q8_0 / Q4_K / Q6_K matrices their 8-row interleaved CPU copy (g4c_wmat.x8; once per model, repack.c). */
g4c_status g4c_weights_repack_cpu(g4c_weights *w, const g4c_config *cfg, g4c_pool *pool, g4c_err *err);
void g4c_weights_repack_free(g4c_weights *w);
/* Bytes g4c_weights_repack_cpu would copy, and how many matrices. */
size_t g4c_weights_repack_estimate(g4c_weights *w, const g4c_config *cfg, int *n_mats);
/* Weight bytes one decoded token reads, the numerator of the decode floor (bytes ÷ memory bandwidth): every matrix
 * the decoder multiplies by, in full (the tied head too), MoE experts at n_expert_used / n_expert, and one row of
 * the embedding and per-layer-embedding tables (model/repack.c). */
size_t g4c_weights_token_bytes(const g4c_weights *w, const g4c_config *cfg);

/* ---- vision tower (vision.c, spec §4.2-§4.6) ------------------------------------------------------------------ */

typedef struct {
    g4c_wmat w;
    float clip[4]; /* input_min, input_max, output_min, output_max (Gemma4ClippableLinear; ±inf when unclipped) */
} g4c_clip_linear;

typedef struct {
    g4c_clip_linear q, k, v, o, gate, up, down;
    float *attn_norm, *post_attn_norm, *pre_ffn_norm, *post_ffn_norm; /* [n_embd_v] */
    float *q_norm, *k_norm;                                           /* [head_dim] */
} g4c_vlayer_w;

typedef struct {
    g4c_wmat patch_proj;      /* patch_embedder.input_proj [n_embd_v][3·p·p] */
    float *pos_table;         /* position_embedding_table [2][n_pos][n_embd_v]: [0] by x (column), [1] by y (row) */
    g4c_vlayer_w *layers;     /* [n_layer] */
    float *std_bias, *std_scale; /* [n_embd_v], standardize only */
    g4c_wmat mm_proj;         /* embed_vision.embedding_projection [n_embd][n_embd_v] */
    float **owned;
    size_t n_owned;
} g4c_vision_w;

/* Bind model.vision_tower.* and model.embed_vision.* (or their mlx-vlm names without "model."). */
g4c_status g4c_vision_bind(g4c_vision_w *w, const g4c_config *c, const g4c_tensor_set *ts, g4c_err *err);
void g4c_vision_free(g4c_vision_w *w);
/* One image: patches [n][3·p·p] in [0,1] ((row, col, channel) order inside a patch), positions [n][2] = (x, y)
 * forming a full grid whose sides are multiples of the pooling kernel. Writes the projected soft tokens
 * [n / pool²][n_embd] (the rows that replace the image's placeholder embeddings). */
g4c_status g4c_vision_encode(const g4c_config *c, const g4c_vision_w *w, g4c_pool *pool, const float *patches,
                             const int32_t *pos, int n, float *out, g4c_err *err);
/* The checks g4c_vision_encode makes of its patch positions (a complete grid, sides multiples of the pooling kernel,
 * positions inside the table): the grid's width and height, or an error naming the first offence. */
g4c_status g4c_vision_grid(const g4c_config *c, const int32_t *pos, int n, int *pw, int *ph, g4c_err *err);
/* The 2-D RoPE tables of n patches: cs, sn [n][2][head_dim/4] (the x axis's angles, then the y axis's). */
void g4c_vision_rope_tables(const g4c_vision_cfg *v, const int32_t *pos, int n, float *cs, float *sn);

/* ---- KV cache and forward pass ------------------------------------------------------------------------------ */

typedef struct {
    float *k, *v; /* [cap][n_kv_head][head_dim] */
    int cap;      /* n_ctx for full layers; min(n_ctx, window - 1 + n_ubatch) for sliding layers (a ring) */
    int n_kv_head, head_dim;
} g4c_kv_layer;

/* Everything one sequence needs: KV cache and activation buffers sized for n_ubatch tokens. */
typedef struct {
    int n_ctx, n_ubatch, n_past;
    g4c_kv_layer *kv; /* [n_kv_slots] */
    int n_kv_slots;
    float *x, *a, *q, *kbuf, *vbuf, *attn, *ffn_a, *ffn_b, *ffn_c, *h2; /* ubatch activations */
    float *ple;        /* [n_ubatch][n_layer][ple_dim] */
    float *ple_tmp;    /* [n_ubatch][n_layer * ple_dim] */
    float *rope_cos[2], *rope_sin[2]; /* [n_ubatch][head_dim/2] per layer type */
    float *inv_freq[2];               /* [head_dim/2] per layer type */
    int rope_hd[2];
    float *attn_scratch;              /* [n_threads][attn_scratch_per_thread] */
    int attn_scratch_per_thread;
    float *router_logits;             /* [n_ubatch][n_expert] */
    int *sel_expert;                  /* [n_ubatch][n_expert_used] */
    float *sel_weight;                /* [n_ubatch][n_expert_used] */
    int *gather_idx;                  /* [n_ubatch] tokens routed to the expert being run */
    float *gather_w;                  /* [n_ubatch] their routing weights */
    float *moe_in, *moe_out;          /* [n_ubatch][n_embd] gathered rows */
    float *moe_dec;                   /* decode: [n_expert_used][3 * moe_ffn + n_embd] gate, up, act, down */
    int *attn_hi;                     /* [n_ubatch] last visible position per query on sliding layers (§3.10) */
    int bidir_off;                    /* testing: 1 = ignore use_bidirectional_attention (plain causal) */
    /* optional: called with named intermediates ("embed", "layer_out" per layer) for fidelity debugging */
    void (*trace)(void *user, const char *name, int il, const float *x, int n_tok, int dim);
    void *trace_user;
} g4c_text_state;

/* Positions the KV cache of layer l keeps: n_ctx on full layers, a ring of window - 1 + n_ubatch on sliding ones;
 * and the bytes of a session's whole cache (f32 K and V). */
int g4c_kv_cap(const g4c_config *cfg, const g4c_layer_cfg *l, int n_ctx, int n_ubatch);
size_t g4c_kv_bytes(const g4c_config *cfg, int n_ctx, int n_ubatch);
g4c_status g4c_text_state_init(g4c_text_state *s, const g4c_config *cfg, int n_ctx, int n_ubatch, int n_threads,
                               g4c_err *err);
void g4c_text_state_free(g4c_text_state *s);

/* Run n (<= n_ubatch) tokens at positions s->n_past.. through the decoder, append their K/V, advance n_past.
 * mm_embd: [n_placeholders][n_embd] soft tokens for this chunk's image/video placeholder tokens, in order (may be
 * NULL when there are none). With use_bidirectional_attention "vision", a placeholder run must not be split
 * across chunks (sliding layers let it look ahead inside its run, spec §3.10).
 * If logits is non-NULL, writes softcapped logits for the last token (all_logits = 0) or every token [n][n_vocab].
 * Token ids must already be validated (0 <= id < n_vocab). */
void g4c_text_forward(g4c_text_state *s, const g4c_config *cfg, const g4c_weights *w, g4c_pool *pool,
                      const int32_t *tokens, const float *mm_embd, int n, float *logits, int all_logits);
/* §3.10 (transformers 5.17): the last position each of n tokens (starting at n_past) may attend to on a sliding
 * layer of a "vision" model: its own, or the end of its run of placeholders (the block attends both ways). The
 * window bounds only the past side (kernels/ops.h g4c_kv_view). */
void g4c_text_visible_hi(const g4c_config *c, const int32_t *tokens, int n, int n_past, int *hi);
/* 1 for the image and video soft-token placeholder ids (their rows come from the vision tower). */
int g4c_is_mm_placeholder(const g4c_config *c, int32_t tok);

/* ---- chat template (chat.c, spec §6) ------------------------------------------------------------------------ */

typedef enum { G4C_ROLE_SYSTEM, G4C_ROLE_USER, G4C_ROLE_MODEL } g4c_role; /* "assistant" maps to model */
typedef struct {
    int is_image;     /* 1: an image slot, rendered as <|image|> (expanded to soft tokens by the image code) */
    const char *text; /* text items: trimmed; model turns also lose any <|channel>...<channel|> thinking */
} g4c_chat_item;
typedef struct {
    g4c_role role;
    const g4c_chat_item *items;
    int n_items;
} g4c_chat_msg;
typedef struct {
    int thinking;              /* enable_thinking: <|think|> at the top of the system turn */
    int empty_thought_channel; /* 26B/31B templates: "<|channel>thought\n<channel|>" after the generation prompt */
    int think_no_newline;      /* April 2026 templates: "<|think|>" without the newline */
    int image_newlines;        /* April 2026 templates: images as "\n\n<|image|>\n\n" */
} g4c_chat_style;

/* Render messages into buf (snprintf contract: returns the full length; buf may be NULL when size is 0).
 * A first message with role system becomes the system turn. */
size_t g4c_chat_render(const g4c_chat_msg *msgs, int n, const g4c_chat_style *st, int add_generation_prompt,
                       char *buf, size_t size);
/* The same, also marking in mask[i] (size bytes) whether byte i was written by the template (1) or comes from a
 * message's text (0), for g4c_tok_encode_masked: control tokens typed by a user stay text. */
size_t g4c_chat_render_masked(const g4c_chat_msg *msgs, int n, const g4c_chat_style *st, int add_generation_prompt,
                              char *buf, uint8_t *mask, size_t size);
/* The style a checkpoint's chat template implies (template_text may be NULL: decided from the config). */
g4c_chat_style g4c_chat_style_for(const g4c_config *cfg, const char *template_text);

/* ---- GGUF checkpoints (gguf_model.c, spec §8.2) ------------------------------------------------------------------ */

/* gemma4.* metadata (+ the tensors it implies: vocab from token_embd, k_eq_v from absent attn_v, rope_freqs) ->
 * the g4c_config config.json would give. */
g4c_status g4c_config_from_gguf(g4c_config *cfg, const g4c_gguf *g, g4c_err *err);
/* clip.* metadata of a gemma4v mmproj -> vision_config. */
g4c_status g4c_vision_cfg_from_gguf(g4c_vision_cfg *v, const g4c_gguf *g, g4c_err *err);
/* Open a text GGUF (and its mmproj, may be NULL): cfg as above, *ts the tensors under Hugging Face names, still in
 * the mappings (which *ts owns), ready for g4c_weights_bind / g4c_vision_bind. */
g4c_status g4c_gguf_load_model(g4c_config *cfg, g4c_tensor_set **ts, const char *path, const char *mmproj,
                               g4c_err *err);
/* Is path a GGUF model? A path ending in .gguf, or a directory without model.safetensors (or its index) holding exactly one
 * .gguf whose name lacks "mmproj" (a config.json beside it, as synth --format gguf writes, does not matter). Returns 1 (gguf set; mm set to mmproj if given, else to the one *mmproj*.gguf beside the
 * model when the model is the only other .gguf there, else ""), 0 (not GGUF: a Hugging Face directory), or a negative
 * g4c_status (several candidates). */
int g4c_gguf_resolve(const char *path, const char *mmproj, char *gguf, size_t gsize, char *mm, size_t msize,
                     g4c_err *err);
/* Tensor names between llama.cpp (token_embd.weight, blk.3.attn_q.weight, v.blk.0.ln1.weight, mm.input_projection
 * .weight) and Hugging Face (model.language_model.embed_tokens.weight, ...); 0 when the name has no counterpart. */
int g4c_gguf_name_to_hf(const char *gguf_name, char *hf, size_t size);
int g4c_hf_name_to_gguf(const char *hf_name, char *gguf, size_t size);

#endif
