/* The decoder's weights on the device (weights.cu uploads them, forward.cu runs them). */
#ifndef G4C_KERNELS_CUDA_MODEL_CUH
#define G4C_KERNELS_CUDA_MODEL_CUH

#include "kernels/cuda/cuda_int.cuh"

typedef struct {
    cu_mat qkv;      /* [q rows | k rows | v rows][H]: k, v absent on KV-shared layers, v absent when k_eq_v */
    cu_mat o;        /* [H][n_head·hd] */
    cu_mat gate_up;  /* [gate rows | up rows][H] */
    cu_mat down;     /* [H][ffn] */
    cu_mat router;   /* [E][H] */
    cu_mat exp_gu;   /* E blocks of [2·I][H] (gate rows then up rows), rows = 2·I */
    cu_mat exp_down; /* E blocks of [H][I], rows = H */
    cu_mat ple_gate, ple_proj;
    float *attn_norm, *post_attn_norm, *pre_ffn_norm, *post_ffn_norm, *q_norm, *k_norm;
    float *pre_ffn_norm_2, *post_ffn_norm_1, *post_ffn_norm_2;
    float *router_scale; /* router.scale · H^-½ (the CPU multiplies by this product too) */
    float *per_expert_scale, *ple_post_norm;
    float layer_scalar;
} cu_layer;

struct cu_vision; /* vision.cu: the vision tower's weights and scratch, uploaded by the first image */

struct g4c_cuda_model {
    const g4c_config *c;
    const g4c_weights *w; /* host: the PLE table is gathered from it */
    cu_layer *layers;
    cu_mat embed, head, ple_model_proj;
    float *ple_proj_norm, *final_norm;
    float *inv_freq[2]; /* per layer type [head_dim/2] */
    int rope_hd[2];
    void **allocs;
    size_t n_allocs, cap_allocs;
    size_t bytes, per_token;
    cu_vision *vision;
};

/* weights.cu, for the other uploads (vision.cu): device memory freed with the model (cu_model_alloc); a matrix as
 * the decoder's are stored (f32 stays f32, GPU quant types stay quantized, the rest bf16; random when its data is
 * NULL; not counted in per_token); an f32 vector (ones when h is NULL). */
g4c_status cu_model_alloc(g4c_cuda_model *M, void **p, size_t bytes, g4c_err *err);
g4c_status cu_model_upload_mat(g4c_cuda_model *M, cu_mat *d, const g4c_wmat *w, g4c_err *err);
g4c_status cu_model_upload_vec(g4c_cuda_model *M, float **d, const float *h, int n, g4c_err *err);
/* vision.cu: the scratch and stream of M->vision (its weights are among M's allocations). */
void cu_vision_free(cu_vision *v);

#endif
