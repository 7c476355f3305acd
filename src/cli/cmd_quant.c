/* gemma4c quantize IN OUT.gguf --type T [--mmproj OUT] [--pure] [-t N]: a Hugging Face checkpoint (or a GGUF) to a
 * GGUF llama.cpp loads (runtime/quantize.h has the names, metadata and type rules). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "runtime/quantize.h"

static const char *const quant_help =
    "usage: gemma4c quantize IN OUT.gguf --type TYPE [--mmproj MMPROJ.gguf] [--pure] [-t N]\n"
    "Writes a GGUF that llama.cpp's gemma4 loader accepts, streamed (constant memory), via OUT.tmp.\n"
    "  IN                 Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json), or a GGUF\n"
    "  --type TYPE        q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m q5_k_m q6_k f16 bf16 f32\n"
    "                     (q4_k_m: Q4_K, with Q6_K for the embedding and some layers' attn_v / ffn_down, as llama.cpp;\n"
    "                     1-D tensors and the MoE router stay F32; rows a block does not divide fall back)\n"
    "  --mmproj FILE      also write the vision tower and projector as an mmproj GGUF (F16, or F32/BF16 if asked)\n"
    "  --pure             every matrix in TYPE (no Q6_K embedding, no k-quant mix)\n"
    "  -t, --threads N    threads (default: all CPUs)\n";

static void progress(void *user, int i, int n, const char *name, g4c_dtype type) {
    (void)user;
    fprintf(stderr, "[%4d/%4d] %-40s %s\n", i + 1, n, name, g4c_dtype_infos[type].name);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL}, *type = NULL;
    int n_pos = 0, quiet = 0;
    g4c_quantize_params qp = {0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(quant_help, stdout);
            return 0;
        } else if (!strcmp(a, "--type") && i + 1 < argc) {
            type = argv[++i];
        } else if (!strcmp(a, "--mmproj") && i + 1 < argc) {
            qp.mmproj_out = argv[++i];
        } else if (!strcmp(a, "--pure")) {
            qp.pure = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1024) {
                fprintf(stderr, "gemma4c quantize: bad thread count '%s'\n", argv[i]);
                return 2;
            }
            qp.n_threads = (int)v;
        } else if (a[0] == '-' || n_pos == 2) {
            fprintf(stderr, "gemma4c quantize: unexpected argument '%s'\n%s", a, quant_help);
            return 2;
        } else {
            pos[n_pos++] = a;
        }
    }
    if (n_pos != 2 || !type) {
        fprintf(stderr, "gemma4c quantize: IN, OUT and --type are required\n%s", quant_help);
        return 2;
    }
    const int ft = g4c_ftype_parse(type);
    if (ft < 0) {
        fprintf(stderr, "gemma4c quantize: unknown type '%s'\n%s", type, quant_help);
        return 2;
    }
    qp.ftype = (g4c_ftype)ft;
    if (!quiet) qp.progress = progress;
    g4c_err err = {0};
    const double t0 = g4c_time_ms();
    if (g4c_quantize_model(pos[0], pos[1], &qp, &err) != G4C_OK) {
        cli_die_err("quantize", &err);
        return 1;
    }
    fprintf(stderr, "gemma4c quantize: wrote %s%s%s (%s) in %.1f s\n", pos[1], qp.mmproj_out ? " and " : "",
            qp.mmproj_out ? qp.mmproj_out : "", g4c_ftype_name(qp.ftype), (g4c_time_ms() - t0) / 1000.0);
    return 0;
}
