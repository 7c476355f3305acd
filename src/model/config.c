/* config.json -> g4c_config. Spec §1.1 (fields), §1.2 (KV sharing), §3.5 (RoPE parameters).
 * Defaults are transformers 5.17's Gemma4TextConfig defaults, so a config that omits a field means what it means
 * to the reference. Fields that define the model's shape have no default: a config without them is an error.
 * Two styles of per-layer attention shape exist (both parsed, both tested):
 *   per_layer_config: {"5": {"head_dim": 512, "num_key_value_heads": 4}, ...}     (save_pretrained in 5.17)
 *   global_head_dim / num_global_key_value_heads                                  (published checkpoints)
 * In the second style num_global_key_value_heads applies to full layers only when attention_k_eq_v. */
#include <math.h>
#include <stdlib.h>

#include "model/model.h"

#define GET_INT(obj, key, lo, hi, dst, found)                                              \
    do {                                                                                   \
        int64_t v_ = (dst);                                                                \
        G4C_TRY(g4c_json_get_int((obj), (key), (lo), (hi), &v_, (found), what, err));      \
        (dst) = (int)v_;                                                                   \
    } while (0)

static g4c_status need_int(const cJSON *obj, const char *key, int64_t lo, int64_t hi, int *dst, const char *what,
                           g4c_err *err) {
    int64_t v = 0;
    int found = 0;
    G4C_TRY(g4c_json_get_int(obj, key, lo, hi, &v, &found, what, err));
    if (!found) return G4C_FAIL(err, G4C_E_CONFIG, "%s: required field \"%s\" is missing", what, key);
    *dst = (int)v;
    return G4C_OK;
}

static g4c_status parse_rope(g4c_rope_cfg *r, const cJSON *obj, const char *name, const char *what, g4c_err *err) {
    const char *type = NULL;
    G4C_TRY(g4c_json_get_str(obj, "rope_type", &type, what, err));
    if (!type || strcmp(type, "default") == 0) {
        r->type = G4C_ROPE_DEFAULT;
    } else if (strcmp(type, "proportional") == 0) {
        r->type = G4C_ROPE_PROPORTIONAL;
    } else {
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: rope_parameters.%s.rope_type \"%.40s\" is not supported "
                        "(default, proportional)", what, name, type);
    }
    double theta = 10000.0, partial = 1.0, factor = 1.0;
    int found = 0;
    G4C_TRY(g4c_json_get_num(obj, "rope_theta", &theta, &found, what, err));
    G4C_TRY(g4c_json_get_num(obj, "partial_rotary_factor", &partial, NULL, what, err));
    G4C_TRY(g4c_json_get_num(obj, "factor", &factor, NULL, what, err));
    if (theta <= 1.0 || partial < 0.0 || partial > 1.0 || factor <= 0.0)
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: rope_parameters.%s: need rope_theta > 1, partial_rotary_factor in "
                        "[0, 1], factor > 0", what, name);
    if (r->type == G4C_ROPE_DEFAULT && (partial != 1.0 || factor != 1.0))
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: rope_parameters.%s: partial_rotary_factor/factor with "
                        "rope_type default", what, name);
    r->theta = (float)theta;
    r->partial_rotary = (float)partial;
    r->factor = (float)factor;
    return G4C_OK;
}

static g4c_status parse_eos(g4c_config *cfg, const cJSON *obj, const char *what, g4c_err *err) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "eos_token_id");
    if (!e || cJSON_IsNull(e)) return G4C_OK;
    cfg->n_eos = 0;
    if (cJSON_IsNumber(e)) {
        int64_t v = 0;
        G4C_TRY(g4c_json_get_int(obj, "eos_token_id", 0, cfg->n_vocab - 1, &v, NULL, what, err));
        cfg->eos_ids[cfg->n_eos++] = (int)v;
        return G4C_OK;
    }
    if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) < 1 || cJSON_GetArraySize(e) > G4C_MAX_EOS)
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: \"eos_token_id\" must be an id or a list of 1 to %d ids", what,
                        G4C_MAX_EOS);
    for (const cJSON *it = e->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= cfg->n_vocab ||
            it->valuedouble != floor(it->valuedouble))
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: \"eos_token_id\" holds a value that is not a token id", what);
        cfg->eos_ids[cfg->n_eos++] = (int)it->valuedouble;
    }
    return G4C_OK;
}

static g4c_status parse_text(g4c_config *cfg, const cJSON *tc, const char *what, g4c_err *err) {
    const int64_t BIG = 1 << 24;
    G4C_TRY(need_int(tc, "vocab_size", 1, BIG, &cfg->n_vocab, what, err));
    G4C_TRY(need_int(tc, "hidden_size", 1, 1 << 16, &cfg->n_embd, what, err));
    G4C_TRY(need_int(tc, "num_hidden_layers", 1, 1024, &cfg->n_layer, what, err));
    G4C_TRY(need_int(tc, "num_attention_heads", 1, 1024, &cfg->n_head, what, err));
    int n_kv = 0, head_dim = 0, ffn = 0;
    G4C_TRY(need_int(tc, "num_key_value_heads", 1, 1024, &n_kv, what, err));
    G4C_TRY(need_int(tc, "head_dim", 2, 4096, &head_dim, what, err));
    G4C_TRY(need_int(tc, "intermediate_size", 1, 1 << 20, &ffn, what, err));
    if (head_dim % 2) return G4C_FAIL(err, G4C_E_CONFIG, "%s: head_dim %d is odd", what, head_dim);

    cfg->sliding_window = 512;
    cfg->max_pos = 131072;
    GET_INT(tc, "sliding_window", 1, BIG, cfg->sliding_window, NULL);
    GET_INT(tc, "max_position_embeddings", 1, 1 << 30, cfg->max_pos, NULL);
    double eps = 1e-6, softcap = 0;
    G4C_TRY(g4c_json_get_num(tc, "rms_norm_eps", &eps, NULL, what, err));
    G4C_TRY(g4c_json_get_num(tc, "final_logit_softcapping", &softcap, NULL, what, err));
    if (eps <= 0 || eps > 1 || softcap < 0)
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: rms_norm_eps must be in (0, 1] and final_logit_softcapping >= 0", what);
    cfg->eps = (float)eps;
    cfg->final_softcap = (float)softcap;
    const char *act = NULL;
    G4C_TRY(g4c_json_get_str(tc, "hidden_activation", &act, what, err));
    if (act && strcmp(act, "gelu_pytorch_tanh") != 0)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: hidden_activation \"%.40s\" (only gelu_pytorch_tanh)", what, act);
    const char *bidir = NULL;
    G4C_TRY(g4c_json_get_str(tc, "use_bidirectional_attention", &bidir, what, err));
    if (bidir && strcmp(bidir, "vision") != 0)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: use_bidirectional_attention \"%.20s\" (only null or \"vision\")",
                        what, bidir);
    cfg->bidir_vision = bidir != NULL;
    int attn_bias = 0;
    G4C_TRY(g4c_json_get_bool(tc, "attention_bias", &attn_bias, NULL, what, err));
    if (attn_bias) return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: attention_bias = true", what);

    cfg->tie_embeddings = 1;
    G4C_TRY(g4c_json_get_bool(tc, "tie_word_embeddings", &cfg->tie_embeddings, NULL, what, err));
    G4C_TRY(g4c_json_get_bool(tc, "attention_k_eq_v", &cfg->k_eq_v, NULL, what, err));
    G4C_TRY(g4c_json_get_bool(tc, "use_double_wide_mlp", &cfg->double_wide_mlp, NULL, what, err));
    G4C_TRY(g4c_json_get_bool(tc, "enable_moe_block", &cfg->moe, NULL, what, err));
    GET_INT(tc, "num_kv_shared_layers", 0, cfg->n_layer, cfg->n_kv_shared, NULL);
    cfg->ple_dim = 256; /* HF default: a config that omits it has per-layer embeddings */
    cfg->ple_vocab = 262144;
    GET_INT(tc, "hidden_size_per_layer_input", 0, 1 << 16, cfg->ple_dim, NULL);
    GET_INT(tc, "vocab_size_per_layer_input", 1, BIG, cfg->ple_vocab, NULL);
    if (cfg->moe) {
        G4C_TRY(need_int(tc, "num_experts", 1, 4096, &cfg->n_expert, what, err));
        G4C_TRY(need_int(tc, "top_k_experts", 1, 4096, &cfg->n_expert_used, what, err));
        G4C_TRY(need_int(tc, "moe_intermediate_size", 1, 1 << 20, &cfg->moe_ffn_dim, what, err));
        if (cfg->n_expert_used > cfg->n_expert)
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: top_k_experts %d > num_experts %d", what, cfg->n_expert_used,
                            cfg->n_expert);
    }
    cfg->pad_id = 0;
    cfg->bos_id = 2;
    GET_INT(tc, "pad_token_id", 0, cfg->n_vocab - 1, cfg->pad_id, NULL);
    GET_INT(tc, "bos_token_id", 0, cfg->n_vocab - 1, cfg->bos_id, NULL);
    cfg->n_eos = 1;
    cfg->eos_ids[0] = cfg->n_vocab > 1 ? 1 : 0;
    G4C_TRY(parse_eos(cfg, tc, what, err));

    /* RoPE per layer type (HF default when absent) */
    cfg->rope[G4C_LAYER_SLIDING] = (g4c_rope_cfg){G4C_ROPE_DEFAULT, 10000.0f, 1.0f, 1.0f};
    cfg->rope[G4C_LAYER_FULL] = (g4c_rope_cfg){G4C_ROPE_PROPORTIONAL, 1000000.0f, 0.25f, 1.0f};
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(tc, "rope_parameters");
    if (rp && !cJSON_IsNull(rp)) {
        static const char *names[2] = {"sliding_attention", "full_attention"};
        for (int t = 0; t < 2; t++) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(rp, names[t]);
            if (!cJSON_IsObject(o))
                return G4C_FAIL(err, G4C_E_CONFIG, "%s: rope_parameters.%s is missing", what, names[t]);
            G4C_TRY(parse_rope(&cfg->rope[t], o, names[t], what, err));
        }
    }

    /* Layer types: HF default is 5 sliding then 1 full, and the last layer is always full. */
    const int L = cfg->n_layer;
    cfg->layers = calloc((size_t)L, sizeof *cfg->layers);
    if (!cfg->layers) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(tc, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != L)
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer_types must list %d layer types", what, L);
        int i = 0;
        for (const cJSON *it = lt->child; it; it = it->next, i++) {
            if (cJSON_IsString(it) && strcmp(it->valuestring, "sliding_attention") == 0)
                cfg->layers[i].type = G4C_LAYER_SLIDING;
            else if (cJSON_IsString(it) && strcmp(it->valuestring, "full_attention") == 0)
                cfg->layers[i].type = G4C_LAYER_FULL;
            else
                return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer_types[%d] is not \"sliding_attention\" or "
                                "\"full_attention\"", what, i);
        }
    } else {
        for (int i = 0; i < L; i++) cfg->layers[i].type = (i + 1) % 6 ? G4C_LAYER_SLIDING : G4C_LAYER_FULL;
    }
    if (cfg->layers[L - 1].type != G4C_LAYER_FULL) {
        g4c_log(G4C_LOG_WARN, "%s: last layer must be full_attention; forcing it (as transformers does)", what);
        cfg->layers[L - 1].type = G4C_LAYER_FULL;
    }
    for (int i = 0; i < L; i++) {
        cfg->layers[i].head_dim = head_dim;
        cfg->layers[i].n_kv_head = n_kv;
    }

    /* Per-layer attention shapes. */
    const cJSON *plc = cJSON_GetObjectItemCaseSensitive(tc, "per_layer_config");
    if (plc && !cJSON_IsNull(plc)) {
        if (!cJSON_IsObject(plc)) return G4C_FAIL(err, G4C_E_CONFIG, "%s: per_layer_config must be an object", what);
        for (const cJSON *it = plc->child; it; it = it->next) {
            long il = -1;
            if (it->string[0] && strlen(it->string) <= 6 && strspn(it->string, "0123456789") == strlen(it->string))
                il = strtol(it->string, NULL, 10);
            if (il < 0 || il >= L || !cJSON_IsObject(it))
                return G4C_FAIL(err, G4C_E_CONFIG, "%s: per_layer_config key \"%.20s\" is not a layer index below %d "
                                "mapping to an object", what, it->string, L);
            for (const cJSON *f = it->child; f; f = f->next)
                if (strcmp(f->string, "head_dim") != 0 && strcmp(f->string, "num_key_value_heads") != 0)
                    return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: per_layer_config.%ld.%.40s is not supported", what,
                                    il, f->string);
            GET_INT(it, "head_dim", 2, 4096, cfg->layers[il].head_dim, NULL);
            GET_INT(it, "num_key_value_heads", 1, 1024, cfg->layers[il].n_kv_head, NULL);
        }
    } else {
        int ghd = 512, gkv = 0, found_gkv = 0;
        GET_INT(tc, "global_head_dim", 2, 4096, ghd, NULL);
        GET_INT(tc, "num_global_key_value_heads", 1, 1024, gkv, &found_gkv);
        for (int i = 0; i < L; i++) {
            if (cfg->layers[i].type != G4C_LAYER_FULL) continue;
            cfg->layers[i].head_dim = ghd;
            if (found_gkv && cfg->k_eq_v) cfg->layers[i].n_kv_head = gkv;
        }
    }

    /* KV sharing (§1.2): layers >= L - n_kv_shared read the last non-shared layer of their type. */
    /* One RoPE table per layer type (HF Gemma4TextRotaryEmbedding), so all layers of a type share head_dim. */
    for (int i = 0; i < L; i++)
        for (int j = 0; j < i; j++)
            if (cfg->layers[j].type == cfg->layers[i].type && cfg->layers[j].head_dim != cfg->layers[i].head_dim)
                return G4C_FAIL(err, G4C_E_CONFIG, "%s: layers %d and %d are of one type but have head_dim %d and %d",
                                what, j, i, cfg->layers[j].head_dim, cfg->layers[i].head_dim);
    const int first_shared = L - cfg->n_kv_shared;
    cfg->n_kv_slots = 0;
    for (int i = 0; i < L; i++) {
        g4c_layer_cfg *lc = &cfg->layers[i];
        if (lc->head_dim % 2)
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer %d head_dim %d is odd", what, i, lc->head_dim);
        if (cfg->n_head % lc->n_kv_head)
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer %d: num_attention_heads %d is not a multiple of its %d kv heads",
                            what, i, cfg->n_head, lc->n_kv_head);
        lc->k_eq_v = cfg->k_eq_v && lc->type == G4C_LAYER_FULL;
        lc->ffn_dim = ffn;
        if (i < first_shared) {
            lc->kv_source = i;
            lc->kv_slot = cfg->n_kv_slots++;
        } else {
            lc->kv_slot = -1;
            lc->kv_source = -1;
            for (int j = first_shared - 1; j >= 0; j--)
                if (cfg->layers[j].type == lc->type) { lc->kv_source = j; break; }
            if (lc->kv_source < 0)
                return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer %d shares KV but no earlier non-shared %s layer exists "
                                "(num_kv_shared_layers %d)", what, i,
                                lc->type == G4C_LAYER_FULL ? "full" : "sliding", cfg->n_kv_shared);
            const g4c_layer_cfg *src = &cfg->layers[lc->kv_source];
            if (src->head_dim != lc->head_dim || src->n_kv_head != lc->n_kv_head)
                return G4C_FAIL(err, G4C_E_CONFIG, "%s: layer %d shares KV with layer %d but their head_dim/kv heads "
                                "differ", what, i, lc->kv_source);
            if (cfg->double_wide_mlp && first_shared > 0) lc->ffn_dim = 2 * ffn;
        }
    }
    return G4C_OK;
}

/* vision_config (HF Gemma4VisionConfig defaults). Only the decoder-relevant checks live here; shapes are checked
 * against the tensors when the vision weights are bound. */
static g4c_status parse_vision(g4c_vision_cfg *v, const cJSON *vc, const char *what, g4c_err *err) {
    memset(v, 0, sizeof *v);
    if (!vc || cJSON_IsNull(vc)) return G4C_OK;
    if (!cJSON_IsObject(vc)) return G4C_FAIL(err, G4C_E_CONFIG, "%s: vision_config must be an object", what);
    v->present = 1;
    v->n_embd = 768, v->n_layer = 16, v->n_head = 12, v->head_dim = 64, v->ffn_dim = 3072;
    v->patch_size = 16, v->pool = 3, v->n_pos = 10240;
    int n_kv = 0, found_kv = 0;
    GET_INT(vc, "hidden_size", 1, 1 << 16, v->n_embd, NULL);
    GET_INT(vc, "num_hidden_layers", 1, 1024, v->n_layer, NULL);
    GET_INT(vc, "num_attention_heads", 1, 1024, v->n_head, NULL);
    GET_INT(vc, "num_key_value_heads", 1, 1024, n_kv, &found_kv);
    GET_INT(vc, "head_dim", 4, 4096, v->head_dim, NULL);
    GET_INT(vc, "intermediate_size", 1, 1 << 20, v->ffn_dim, NULL);
    GET_INT(vc, "patch_size", 1, 1024, v->patch_size, NULL);
    GET_INT(vc, "pooling_kernel_size", 1, 64, v->pool, NULL);
    GET_INT(vc, "position_embedding_size", 1, 1 << 20, v->n_pos, NULL);
    G4C_TRY(g4c_json_get_bool(vc, "use_clipped_linears", &v->clipped_linears, NULL, what, err));
    G4C_TRY(g4c_json_get_bool(vc, "standardize", &v->standardize, NULL, what, err));
    double eps = 1e-6, theta = 100.0;
    G4C_TRY(g4c_json_get_num(vc, "rms_norm_eps", &eps, NULL, what, err));
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(vc, "rope_parameters");
    if (cJSON_IsObject(rp)) {
        const char *type = NULL;
        G4C_TRY(g4c_json_get_str(rp, "rope_type", &type, what, err));
        if (type && strcmp(type, "axial") != 0 && strcmp(type, "default") != 0)
            return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: vision_config.rope_parameters.rope_type \"%.40s\" (only axial)",
                            what, type);
        G4C_TRY(g4c_json_get_num(rp, "rope_theta", &theta, NULL, what, err));
    }
    if (eps <= 0 || eps > 1 || theta <= 1)
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: vision_config rms_norm_eps / rope_theta out of range", what);
    v->eps = (float)eps;
    v->rope_theta = (float)theta;
    if (found_kv && n_kv != v->n_head)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: vision_config num_key_value_heads %d != num_attention_heads %d",
                        what, n_kv, v->n_head);
    if (v->head_dim % 4)
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: vision_config head_dim %d: 2-D RoPE needs a multiple of 4", what,
                        v->head_dim);
    const char *act = NULL;
    G4C_TRY(g4c_json_get_str(vc, "hidden_activation", &act, what, err));
    if (act && strcmp(act, "gelu_pytorch_tanh") != 0)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: vision_config hidden_activation \"%.40s\"", what, act);
    return G4C_OK;
}

/* Multimodal wrapper fields: -it checkpoints list [<eos>, <turn|>] at the top level (spec §7); token ids of §5. */
static g4c_status parse_top(g4c_config *cfg, const cJSON *root, const char *what, g4c_err *err) {
    G4C_TRY(parse_eos(cfg, root, what, err));
    GET_INT(root, "image_token_id", 0, 1 << 30, cfg->image_token_id, NULL);
    GET_INT(root, "video_token_id", 0, 1 << 30, cfg->video_token_id, NULL);
    GET_INT(root, "audio_token_id", 0, 1 << 30, cfg->audio_token_id, NULL);
    GET_INT(root, "boi_token_id", 0, 1 << 30, cfg->boi_token_id, NULL);
    GET_INT(root, "eoi_token_id", 0, 1 << 30, cfg->eoi_token_id, NULL);
    G4C_TRY(parse_vision(&cfg->vision, cJSON_GetObjectItemCaseSensitive(root, "vision_config"), what, err));
    return G4C_OK;
}

/* ---- MLX affine quantization block (spec §8.3) ---- */

static g4c_status quant_params(const cJSON *obj, const char *key, int *group, int *bits, const char *what,
                               g4c_err *err) {
    int64_t g = *group, b = *bits;
    G4C_TRY(g4c_json_get_int(obj, "group_size", 1, 1 << 16, &g, NULL, what, err));
    G4C_TRY(g4c_json_get_int(obj, "bits", 0, 64, &b, NULL, what, err));
    const char *mode = NULL;
    G4C_TRY(g4c_json_get_str(obj, "mode", &mode, what, err));
    if (mode && strcmp(mode, "affine") != 0)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: quantization%s%.200s: mode \"%.40s\" is not supported (only MLX "
                        "affine)", what, key ? "." : "", key ? key : "", mode);
    /* MLX packs 2/4/8 bits per u32 word, 3/5/6 bits as a little-endian bit stream (8 codes in 3 or 5 bytes, 4 in 3) */
    if (b != 2 && b != 3 && b != 4 && b != 5 && b != 6 && b != 8)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: quantization%s%.200s: bits %lld is not supported (2, 3, 4, 5, 6, "
                        "8)", what, key ? "." : "", key ? key : "", (long long)b);
    *group = (int)g;
    *bits = (int)b;
    return G4C_OK;
}

static g4c_status parse_quant(g4c_quant_cfg *q, const cJSON *root, const char *what, g4c_err *err) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "quantization");
    const char *name = "quantization";
    if (!o || cJSON_IsNull(o)) {
        o = cJSON_GetObjectItemCaseSensitive(root, "quantization_config"); /* mlx-vlm writes both (same content) */
        name = "quantization_config";
    }
    if (!o || cJSON_IsNull(o)) return G4C_OK;
    if (!cJSON_IsObject(o)) return G4C_FAIL(err, G4C_E_CONFIG, "%s: \"%s\" must be an object", what, name);
    const char *method = NULL;
    G4C_TRY(g4c_json_get_str(o, "quant_method", &method, what, err));
    if (method) /* a transformers quantization_config (GPTQ, AWQ, bitsandbytes, fp8, ...), not MLX's */
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: %s.quant_method \"%.40s\" is not supported (MLX affine "
                        "checkpoints and GGUF files are)", what, name, method);
    q->present = 1;
    q->group = 64, q->bits = 4; /* mlx defaults */
    G4C_TRY(quant_params(o, NULL, &q->group, &q->bits, what, err));
    int n = 0;
    for (const cJSON *it = o->child; it; it = it->next) n += cJSON_IsObject(it) || cJSON_IsBool(it);
    if (n) {
        q->entries = calloc((size_t)n, sizeof *q->entries);
        if (!q->entries) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    }
    for (const cJSON *it = o->child; it; it = it->next) {
        if (!cJSON_IsObject(it) && !cJSON_IsBool(it)) continue; /* group_size, bits, mode (checked above) */
        g4c_quant_entry *e = &q->entries[q->n_entries];
        e->group = q->group, e->bits = q->bits;
        if (cJSON_IsFalse(it))
            e->bits = 0;
        else if (cJSON_IsObject(it))
            G4C_TRY(quant_params(it, it->string, &e->group, &e->bits, what, err));
        if (!(e->path = strdup(it->string))) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        q->n_entries++;
    }
    return G4C_OK;
}

void g4c_quant_lookup(const g4c_quant_cfg *q, const char *module_path, int *group, int *bits) {
    *group = q->group, *bits = q->bits;
    for (int i = 0; i < q->n_entries; i++)
        if (strcmp(q->entries[i].path, module_path) == 0) {
            *group = q->entries[i].group, *bits = q->entries[i].bits;
            return;
        }
}

g4c_status g4c_config_parse(g4c_config *cfg, const cJSON *root, const char *what, g4c_err *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(root)) return G4C_FAIL(err, G4C_E_CONFIG, "%s: not a JSON object", what);
    const char *mt = NULL;
    G4C_TRY(g4c_json_get_str(root, "model_type", &mt, what, err));
    const cJSON *tc;
    if (mt && strcmp(mt, "gemma4") == 0) {
        tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
        if (!cJSON_IsObject(tc)) return G4C_FAIL(err, G4C_E_CONFIG, "%s: model_type gemma4 without a text_config", what);
        const char *tmt = NULL;
        G4C_TRY(g4c_json_get_str(tc, "model_type", &tmt, what, err));
        if (tmt && strcmp(tmt, "gemma4_text") != 0)
            return G4C_FAIL(err, G4C_E_CONFIG, "%s: text_config.model_type is \"%.40s\", expected gemma4_text", what, tmt);
    } else if (mt && strcmp(mt, "gemma4_text") == 0) {
        tc = root;
    } else {
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: model_type \"%.40s\" is not a Gemma 4 model (gemma4, gemma4_text)",
                        what, mt ? mt : "(missing)");
    }
    cfg->image_token_id = 258880;
    cfg->video_token_id = 258884;
    cfg->audio_token_id = 258881;
    cfg->boi_token_id = 255999;
    cfg->eoi_token_id = 258882;
    g4c_status st = parse_text(cfg, tc, what, err);
    if (st == G4C_OK && tc != root) st = parse_top(cfg, root, what, err);
    if (st == G4C_OK) st = parse_quant(&cfg->quant, root, what, err);
    if (st != G4C_OK) g4c_config_free(cfg);
    return st;
}

g4c_status g4c_config_load(g4c_config *cfg, const char *path, g4c_err *err) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root;
    G4C_TRY(g4c_json_read_file(&root, path, err));
    g4c_status st = g4c_config_parse(cfg, root, path, err);
    cJSON_Delete(root);
    return st;
}

void g4c_config_free(g4c_config *cfg) {
    free(cfg->layers);
    cfg->layers = NULL;
    for (int i = 0; i < cfg->quant.n_entries; i++) free(cfg->quant.entries[i].path);
    free(cfg->quant.entries);
    cfg->quant.entries = NULL;
    cfg->quant.n_entries = 0;
}
