/* The files `gemma4c synth` writes beside the weights: config.json, generation_config.json and
 * processor_config.json as transformers 5.17 writes them (json.dumps(indent=2, sort_keys=True), Python float
 * reprs), and the tokenizer copied in with a minimal tokenizer_config.json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/synth.h"

/* ---- JSON in transformers' layout: json.dumps(indent=2, sort_keys=True) ---- */

static int cmp_item(const void *a, const void *b) {
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static void jprint(FILE *f, const cJSON *j, int depth) {
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        const int obj = cJSON_IsObject(j);
        const int n = cJSON_GetArraySize(j);
        if (!n) { fputs(obj ? "{}" : "[]", f); return; }
        const cJSON *items[256]; /* our objects and arrays are small (60 layer types at most) */
        G4C_ASSERT(n <= 256);
        int k = 0;
        for (const cJSON *it = j->child; it; it = it->next) items[k++] = it;
        if (obj) qsort(items, (size_t)n, sizeof *items, cmp_item);
        fputs(obj ? "{\n" : "[\n", f);
        for (int i = 0; i < n; i++) {
            fprintf(f, "%*s", 2 * (depth + 1), "");
            if (obj) fprintf(f, "\"%s\": ", items[i]->string);
            jprint(f, items[i], depth + 1);
            fputs(i + 1 < n ? ",\n" : "\n", f);
        }
        fprintf(f, "%*s%c", 2 * depth, "", obj ? '}' : ']');
    } else if (cJSON_IsRaw(j)) {
        fputs(j->valuestring, f);
    } else if (cJSON_IsNumber(j)) {
        fprintf(f, "%lld", (long long)j->valuedouble);
    } else if (cJSON_IsString(j)) {
        fprintf(f, "\"%s\"", j->valuestring); /* our strings are plain ASCII without quotes or backslashes */
    } else if (cJSON_IsBool(j)) {
        fputs(cJSON_IsTrue(j) ? "true" : "false", f);
    } else {
        fputs("null", f);
    }
}

/* Write DIR/name atomically (name.tmp, then rename). */
static int write_json(const char *dir, const char *name, const cJSON *j) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) { fprintf(stderr, "gemma4c synth: cannot create %s: %s\n", tmp, strerror(errno)); return 1; }
    jprint(f, j, 0);
    fputc('\n', f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        fprintf(stderr, "gemma4c synth: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

static cJSON *num(double v) { return cJSON_CreateNumber(v); }
static cJSON *flt(const char *repr) { return cJSON_CreateRaw(repr); } /* Python's float repr, e.g. "1e-06", "30.0" */
static void put(cJSON *o, const char *k, cJSON *v) { cJSON_AddItemToObject(o, k, v); }

static cJSON *make_config(const preset *p, g4c_dtype dt, int vision) {
    cJSON *root = cJSON_CreateObject(), *tc = cJSON_CreateObject();
    cJSON *arch = cJSON_CreateArray();
    cJSON_AddItemToArray(arch, cJSON_CreateString("Gemma4ForConditionalGeneration"));
    put(root, "architectures", arch);
    put(root, "audio_config", cJSON_CreateNull());
    put(root, "audio_token_id", num(258881));
    put(root, "boa_token_id", num(256000));
    put(root, "boi_token_id", num(255999));
    put(root, "dtype", cJSON_CreateString(dt == G4C_DTYPE_BF16 ? "bfloat16" : "float32"));
    put(root, "eoa_token_index", num(258883));
    put(root, "eoi_token_id", num(258882));
    const int eos[2] = {1, 106};
    put(root, "eos_token_id", cJSON_CreateIntArray(eos, 2));
    put(root, "image_token_id", num(258880));
    put(root, "initializer_range", flt("0.02"));
    put(root, "model_type", cJSON_CreateString("gemma4"));
    put(root, "tie_word_embeddings", cJSON_CreateTrue());
    put(root, "transformers_version", cJSON_CreateString("5.17.0"));
    put(root, "video_token_id", num(258884));

    put(tc, "attention_bias", cJSON_CreateFalse());
    put(tc, "attention_dropout", flt("0.0"));
    put(tc, "attention_k_eq_v", cJSON_CreateBool(p->k_eq_v));
    put(tc, "bos_token_id", num(2));
    put(tc, "enable_moe_block", cJSON_CreateBool(p->n_expert > 0));
    put(tc, "eos_token_id", num(1));
    put(tc, "final_logit_softcapping", flt("30.0"));
    put(tc, "head_dim", num(p->hd));
    put(tc, "hidden_activation", cJSON_CreateString("gelu_pytorch_tanh"));
    put(tc, "hidden_size", num(p->H));
    put(tc, "hidden_size_per_layer_input", num(p->ple));
    put(tc, "initializer_range", flt("0.02"));
    put(tc, "intermediate_size", num(p->ffn));
    cJSON *lt = cJSON_CreateArray(), *plc = cJSON_CreateObject();
    for (int i = 0; i < p->L; i++) {
        const int full = layer_full(p, i);
        cJSON_AddItemToArray(lt, cJSON_CreateString(full ? "full_attention" : "sliding_attention"));
        if (!full) continue;
        cJSON *e = cJSON_CreateObject();
        put(e, "head_dim", num(p->hd_full));
        if (p->n_kv_full != p->n_kv) put(e, "num_key_value_heads", num(p->n_kv_full));
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        put(plc, k, e);
    }
    put(tc, "layer_types", lt);
    put(tc, "max_position_embeddings", num(p->max_pos));
    put(tc, "model_type", cJSON_CreateString("gemma4_text"));
    put(tc, "moe_intermediate_size", p->n_expert ? num(p->moe_ffn) : cJSON_CreateNull());
    put(tc, "num_attention_heads", num(p->n_head));
    put(tc, "num_experts", p->n_expert ? num(p->n_expert) : cJSON_CreateNull());
    put(tc, "num_hidden_layers", num(p->L));
    put(tc, "num_key_value_heads", num(p->n_kv));
    put(tc, "num_kv_shared_layers", num(p->n_kv_shared));
    put(tc, "pad_token_id", num(0));
    put(tc, "per_layer_config", plc);
    put(tc, "rms_norm_eps", flt("1e-06"));
    cJSON *rp = cJSON_CreateObject(), *rf = cJSON_CreateObject(), *rs = cJSON_CreateObject();
    put(rf, "partial_rotary_factor", flt("0.25"));
    put(rf, "rope_theta", flt("1000000.0"));
    put(rf, "rope_type", cJSON_CreateString("proportional"));
    put(rs, "rope_theta", flt("10000.0"));
    put(rs, "rope_type", cJSON_CreateString("default"));
    put(rp, "full_attention", rf);
    put(rp, "sliding_attention", rs);
    put(tc, "rope_parameters", rp);
    put(tc, "sliding_window", num(p->window));
    put(tc, "tie_word_embeddings", cJSON_CreateTrue());
    put(tc, "top_k_experts", p->n_expert ? num(p->top_k) : cJSON_CreateNull());
    put(tc, "use_bidirectional_attention", p->bidir ? cJSON_CreateString("vision") : cJSON_CreateNull());
    put(tc, "use_cache", cJSON_CreateTrue());
    put(tc, "use_double_wide_mlp", cJSON_CreateBool(p->double_wide));
    put(tc, "vocab_size", num(262144));
    put(tc, "vocab_size_per_layer_input", num(262144));
    put(root, "text_config", tc);

    if (!vision) {
        put(root, "vision_config", cJSON_CreateNull());
        return root;
    }
    cJSON *vc = cJSON_CreateObject();
    put(vc, "_name_or_path", cJSON_CreateString(""));
    put(vc, "architectures", cJSON_CreateNull());
    put(vc, "attention_bias", cJSON_CreateFalse());
    put(vc, "attention_dropout", flt("0.0"));
    put(vc, "chunk_size_feed_forward", num(0));
    put(vc, "dtype", cJSON_CreateNull());
    put(vc, "head_dim", num(p->v_hd));
    put(vc, "hidden_activation", cJSON_CreateString("gelu_pytorch_tanh"));
    put(vc, "hidden_size", num(p->vH));
    cJSON *i2l = cJSON_CreateObject(), *l2i = cJSON_CreateObject();
    put(i2l, "0", cJSON_CreateString("LABEL_0"));
    put(i2l, "1", cJSON_CreateString("LABEL_1"));
    put(l2i, "LABEL_0", num(0));
    put(l2i, "LABEL_1", num(1));
    put(vc, "id2label", i2l);
    put(vc, "initializer_range", flt("0.02"));
    put(vc, "intermediate_size", num(p->v_ffn));
    put(vc, "is_encoder_decoder", cJSON_CreateFalse());
    put(vc, "label2id", l2i);
    put(vc, "max_position_embeddings", num(131072));
    put(vc, "model_type", cJSON_CreateString("gemma4_vision"));
    put(vc, "num_attention_heads", num(p->v_heads));
    put(vc, "num_hidden_layers", num(p->vL));
    put(vc, "num_key_value_heads", num(p->v_heads));
    put(vc, "output_attentions", cJSON_CreateFalse());
    put(vc, "output_hidden_states", cJSON_CreateFalse());
    put(vc, "patch_size", num(16));
    put(vc, "pooling_kernel_size", num(3));
    put(vc, "position_embedding_size", num(10240));
    put(vc, "problem_type", cJSON_CreateNull());
    put(vc, "return_dict", cJSON_CreateTrue());
    put(vc, "rms_norm_eps", flt("1e-06"));
    cJSON *vr = cJSON_CreateObject();
    put(vr, "rope_theta", flt("100.0"));
    put(vr, "rope_type", cJSON_CreateString("axial"));
    put(vc, "rope_parameters", vr);
    put(vc, "standardize", cJSON_CreateBool(p->v_std));
    put(vc, "use_clipped_linears", cJSON_CreateBool(p->v_clipped));
    put(root, "vision_config", vc);
    return root;
}

static cJSON *make_generation_config(void) {
    cJSON *g = cJSON_CreateObject();
    const int eos[3] = {1, 106, 50};
    put(g, "bos_token_id", num(2));
    put(g, "do_sample", cJSON_CreateTrue());
    put(g, "eos_token_id", cJSON_CreateIntArray(eos, 3));
    put(g, "pad_token_id", num(0));
    put(g, "temperature", flt("1.0"));
    put(g, "top_k", num(64));
    put(g, "top_p", flt("0.95"));
    put(g, "transformers_version", cJSON_CreateString("5.17.0"));
    return g;
}

static cJSON *make_processor_config(void) {
    cJSON *pc = cJSON_CreateObject(), *ip = cJSON_CreateObject();
    put(ip, "do_normalize", cJSON_CreateFalse());
    put(ip, "do_rescale", cJSON_CreateTrue());
    put(ip, "do_resize", cJSON_CreateTrue());
    put(ip, "image_processor_type", cJSON_CreateString("Gemma4ImageProcessor"));
    put(ip, "max_soft_tokens", num(280));
    put(ip, "patch_size", num(16));
    put(ip, "pooling_kernel_size", num(3));
    put(ip, "rescale_factor", flt("0.00392156862745098"));
    put(pc, "image_processor", ip);
    put(pc, "processor_class", cJSON_CreateString("Gemma4Processor"));
    return pc;
}

static cJSON *make_tokenizer_config(const preset *p) {
    cJSON *t = cJSON_CreateObject();
    put(t, "add_bos_token", cJSON_CreateFalse());
    put(t, "add_eos_token", cJSON_CreateFalse());
    put(t, "bos_token", cJSON_CreateString("<bos>"));
    put(t, "eos_token", cJSON_CreateString("<eos>"));
    put(t, "model_max_length", num(p->max_pos));
    put(t, "pad_token", cJSON_CreateString("<pad>"));
    put(t, "padding_side", cJSON_CreateString("left"));
    put(t, "tokenizer_class", cJSON_CreateString("GemmaTokenizer"));
    put(t, "unk_token", cJSON_CreateString("<unk>"));
    return t;
}

/* Copy src to DIR/tokenizer.json (via a temporary file). */
static int copy_tokenizer(const char *src, const char *dir) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = fopen(src, "rb");
    if (!in) { fprintf(stderr, "gemma4c synth: cannot open tokenizer %s: %s\n", src, strerror(errno)); return 1; }
    FILE *out = fopen(tmp, "wb");
    if (!out) {
        fprintf(stderr, "gemma4c synth: cannot create %s: %s\n", tmp, strerror(errno));
        fclose(in);
        return 1;
    }
    static char buf[1 << 16];
    size_t n;
    int bad = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) bad |= fwrite(buf, 1, n, out) != n;
    bad |= ferror(in);
    fclose(in);
    if (fclose(out) != 0 || bad || rename(tmp, path) != 0) {
        fprintf(stderr, "gemma4c synth: cannot copy the tokenizer to %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

/* config.json, generation_config.json, processor_config.json, tokenizer.json (+ tokenizer_config.json) */
int synth_write_side_files(const char *out, const preset *p, g4c_dtype dt, int vision, const char *tok) {
    cJSON *j[3] = {make_config(p, dt, vision), make_generation_config(), vision ? make_processor_config() : NULL};
    int bad = write_json(out, "config.json", j[0]) || write_json(out, "generation_config.json", j[1]) ||
              (j[2] && write_json(out, "processor_config.json", j[2]));
    for (int k = 0; k < 3; k++) cJSON_Delete(j[k]);
    if (bad) return 1;
    char tpath[4200];
    if (tok) {
        cJSON *tc = make_tokenizer_config(p);
        bad = copy_tokenizer(tok, out) || write_json(out, "tokenizer_config.json", tc);
        cJSON_Delete(tc);
        return bad;
    }
    if (snprintf(tpath, sizeof tpath, "%s/tokenizer.json", out) > 0 && access(tpath, F_OK) != 0)
        fprintf(stderr, "gemma4c synth: warning: no tokenizer given (--tokenizer FILE or $G4C_TOKENIZER_JSON): "
                "`gemma4c run` will need a tokenizer.json in %s; `generate --tokens` works without\n", out);
    return 0;
}

