/* gemma4c preprocess: an image file -> the pixel patches (and patch positions) the vision tower receives, as .npy
 * (spec §4.1; the oracle hook for comparing against transformers' Gemma4ImageProcessor). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "image/image.h"

static const char *const preprocess_help =
    "usage: gemma4c preprocess --image FILE [--image-budget N] --out PATCHES.npy [--positions-out POS.npy]\n"
    "Decodes a PNG or JPEG (detected from its bytes) to RGB, resizes it (aspect preserved, sides multiples of 48,\n"
    "antialiased bicubic) to fill the soft-token budget, rescales to [0, 1] and cuts 16x16 patches, exactly as\n"
    "transformers' Gemma4ImageProcessor does.\n"
    "  --image FILE          input image (PNG or JPEG, at most 64 MPix)\n"
    "  --image-budget N      soft tokens per image: 70, 140, 280 (default), 560 or 1120\n"
    "  -o, --out FILE        float32 .npy [n_patches, 768]; each row is one patch in (row, column, channel) order,\n"
    "                        patches row-major over the patch grid\n"
    "  --positions-out FILE  int32 .npy [n_patches, 2]: (x, y) = (column, row) of each patch in the grid\n"
    "Prints \"N patches, WxH -> TWxTH, S soft tokens\" on stderr.\n";

/* int32 C-order [n, 2] as .npy v1.0, written to a temp file and renamed into place. */
static int write_positions(const char *path, const int32_t *pos, int n) {
    char dict[128];
    int len = snprintf(dict, sizeof dict, "{'descr': '<i4', 'fortran_order': False, 'shape': (%d, 2), }", n);
    const size_t total = 10 + (size_t)len + 1, pad = (64 - total % 64) % 64;
    const size_t hlen = (size_t)len + pad + 1;
    char tmp[PATH_MAX];
    int k = snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (k < 0 || (size_t)k >= sizeof tmp) {
        fprintf(stderr, "gemma4c preprocess: path too long: %s\n", path);
        return 1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "gemma4c preprocess: %s: cannot create: %s\n", tmp, strerror(errno));
        return 1;
    }
    const unsigned char hl[2] = {(unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    int ok = fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8 && fwrite(hl, 1, 2, f) == 2 &&
             fwrite(dict, 1, (size_t)len, f) == (size_t)len;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    for (int i = 0; ok && i < 2 * n; i++) { /* little-endian regardless of the host */
        const uint32_t v = (uint32_t)pos[i];
        const unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                                    (unsigned char)(v >> 24)};
        ok = fwrite(b, 1, 4, f) == 4;
    }
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "gemma4c preprocess: %s: write failed: %s\n", path, strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
}

int cmd_preprocess(int argc, char **argv) {
    const char *image = NULL, *out = NULL, *pos_out = NULL;
    int budget = G4C_IMAGE_DEFAULT_BUDGET;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(preprocess_help, stdout);
            return 0;
        }
        const int takes_value = !strcmp(a, "--image") || !strcmp(a, "--image-budget") || !strcmp(a, "-o") ||
                                !strcmp(a, "--out") || !strcmp(a, "--positions-out");
        if (!takes_value) {
            fprintf(stderr, "gemma4c preprocess: unknown option '%s' (see gemma4c preprocess --help)\n", a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "gemma4c preprocess: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--image")) image = v;
        else if (!strcmp(a, "--positions-out")) pos_out = v;
        else if (!strcmp(a, "--image-budget")) {
            char *end;
            errno = 0;
            long x = strtol(v, &end, 10);
            if (!*v || *end || errno || (x != 70 && x != 140 && x != 280 && x != 560 && x != 1120)) {
                fprintf(stderr, "gemma4c preprocess: --image-budget must be 70, 140, 280, 560 or 1120, got '%s'\n", v);
                return 2;
            }
            budget = (int)x;
        } else out = v;
    }
    if (!image || !out) {
        fprintf(stderr, "gemma4c preprocess: %s is required\n\n%s", !image ? "--image FILE" : "--out FILE",
                preprocess_help);
        return 2;
    }
    g4c_err err = {0};
    g4c_image_patches p;
    if (g4c_image_preprocess_file(image, budget, &p, &err) != G4C_OK) {
        cli_die_err("preprocess", &err);
        return 1;
    }
    int rc = 0;
    const int64_t shape[2] = {p.n_patches, G4C_IMAGE_PATCH_DIM};
    if (g4c_npy_write_f32(out, p.patches, 2, shape, &err) != G4C_OK) {
        cli_die_err("write", &err);
        rc = 1;
    } else if (pos_out && write_positions(pos_out, p.positions, p.n_patches)) {
        rc = 1;
    }
    if (!rc)
        fprintf(stderr, "%d patches, %dx%d -> %dx%d, %d soft tokens\n", p.n_patches, p.src_width, p.src_height,
                p.width, p.height, p.n_soft_tokens);
    g4c_image_patches_free(&p);
    return rc;
}
