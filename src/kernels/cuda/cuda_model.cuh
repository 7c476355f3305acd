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
};

#endif
