/* Writing GGUF checkpoints that llama.cpp's gemma4 loader accepts (gguf_quant.c; `gemma4c quantize`): from a Hugging
 * Face checkpoint directory or from another GGUF (requantized), streamed tensor by tensor, to OUT.tmp then renamed.
 * Names, metadata and block layouts are llama.cpp's (spec §8.2, issue 5); mmproj for the vision tower. */
#ifndef G4C_RUNTIME_QUANTIZE_H
#define G4C_RUNTIME_QUANTIZE_H

#include "model/model.h"

/* What --type names: the type of the bulk of the matrices (llama.cpp's "file type"). */
typedef enum {
    G4C_FT_F32 = 0, G4C_FT_F16, G4C_FT_BF16, G4C_FT_Q8_0, G4C_FT_Q4_0, G4C_FT_Q4_1, G4C_FT_Q5_0, G4C_FT_Q5_1,
    G4C_FT_Q4_K_M, G4C_FT_Q5_K_M, G4C_FT_Q6_K, G4C_FT_COUNT
} g4c_ftype;

typedef struct {
    g4c_ftype ftype;
    const char *mmproj_out; /* also write the vision tower as an mmproj GGUF (Hugging Face input with vision) */
    int pure;               /* every matrix in ftype's type: no Q6_K embedding, no k-quant mix (llama-quantize --pure) */
    int n_threads;          /* 0 = every CPU */
    /* called before each tensor is written (i of n, the GGUF name and the type chosen) */
    void (*progress)(void *user, int i, int n, const char *name, g4c_dtype type);
    void *user;
    /* g4c_quantize_generated only: the f32 values of elements [i0, i0 + n) of tensor t (the source tensor set's) */
    void (*source)(void *source_user, const g4c_st_tensor *t, int64_t i0, int64_t n, float *dst);
    void *source_user;
} g4c_quantize_params;

/* "q4_k_m" (any case) -> its ftype, or -1. */
int g4c_ftype_parse(const char *s);
const char *g4c_ftype_name(g4c_ftype f);
/* llama.cpp's general.file_type number (LLAMA_FTYPE_MOSTLY_*). */
int g4c_ftype_llama(g4c_ftype f);

/* The type quantize stores a tensor in: name is its GGUF name, shape PyTorch-order; il the layer (-1 for globals) of
 * n_layer; tied: the model has no output.weight (token_embd is the output head). Rules (llama.cpp's, simplified):
 *   1-D tensors, rope_freqs, position embeddings and the MoE router (ffn_gate_inp): F32;
 *   vision tower / projector matrices: F32 or BF16 when asked, else F16;
 *   the output head (token_embd when tied) in k-quant and legacy 4/5-bit files: Q6_K;
 *   q4_k_m / q5_k_m: attn_v and ffn_down(_exps) of the first and last eighth of the layers and every third layer
 *   between: Q6_K; everything else ftype's type;
 *   rows that are not a multiple of the type's block fall back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and to F16
 *   when not a multiple of 32. */
g4c_dtype g4c_quant_choose(const char *name, int ndim, const int64_t *shape, g4c_ftype ft, int pure, int il,
                           int n_layer, int tied);

/* in: a Hugging Face checkpoint directory, or a GGUF (file, or directory holding one). out: the GGUF to write. */
g4c_status g4c_quantize_model(const char *in, const char *out, const g4c_quantize_params *p, g4c_err *err);
/* The same from a tensor set (Hugging Face names) whose matrix values come from p->source instead of its data
 * (`synth --format gguf`: checkpoints of the real shapes without writing the float file first). dir holds the
 * config.json (and tokenizer.json); ts's data must hold the real values of what binding converts (vectors, scalars,
 * the vision patch embedding); larger tensors are read only through p->source. */
g4c_status g4c_quantize_generated(const char *dir, const g4c_tensor_set *ts, const char *out,
                                  const g4c_quantize_params *p, g4c_err *err);

#endif
