/* image (src/image/, docs/gemma4-spec.md §4.1) against transformers 5.17's Gemma4ImageProcessor (torchvision
 * backend) on tests/fixtures/images (references by tools/make_image_fixtures.py in tests/fixtures/ref/img):
 *   decode     every fixture decodes to exactly PIL's convert("RGB") pixels (<image>.rgb.npy)
 *   sizes      target size and soft-token count equal the reference json for every case (errors where it has one)
 *   resize     the resized pixels equal torchvision's (<image>_b<budget>.resized.npy), fed the reference RGB so
 *              decoding cannot mix in, and end to end from the file; patches = resized * (1/255) in patch order,
 *              positions (col, row) row-major
 * plus the spec's worked sizes, PNG variants written by this test (bit depths 1-16, palette with indices past
 * PLTE, gray+alpha, RGBA-16, Adam7 interlace) checked against PIL's documented conversions, JPEGs encoded here
 * with libjpeg (progressive == baseline, more than G4C_IMAGE_MAX_SCANS scans refused, EXIF orientation ignored),
 * and hostile input: truncation at many lengths, empty and non-image files, a 100000x100000 header (refused
 * before allocating), a wrong extension, a missing file. */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"
#include "test.h"

#include <jpeglib.h> /* after stdio.h: libjpeg-turbo 2.1 needs size_t and FILE */

#ifndef G4C_FIXTURES
#define G4C_FIXTURES "tests/fixtures"
#endif

static char tmp_dir[64];

static int mkdir_p_tmp(void) { return mkdir(tmp_dir, 0700) == 0 || errno == EEXIST ? 0 : -1; }

typedef struct { const char *file; int budget; } ref_case; /* file under images/ */

static const char *const images[] = {"astronaut384.png", "camera_16bit.png", "camera_gray.png", "chelsea.png",
                                     "chelsea_alpha.png", "chelsea_palette.png", "coffee.jpg", "coffee_cmyk.jpg",
                                     "gray_alpha.png", "tall.png", "tiny.png", "wide.png"};
#define N_IMAGES ((int)(sizeof images / sizeof *images))

static void stem(char *out, size_t n, const char *file) {
    snprintf(out, n, "%s", file);
    char *dot = strrchr(out, '.');
    if (dot) *dot = 0;
}

/* A uint8 .npy [h][w][3] into a malloc'd byte array. */
static uint8_t *load_u8(const char *path, int *h, int *w) {
    float *f = NULL;
    int nd = 0;
    int64_t shape[4] = {0};
    g4c_err err = {0};
    if (g4c_npy_read_f32(path, &f, &nd, shape, &err) != G4C_OK || nd != 3 || shape[2] != 3) {
        fprintf(stderr, "  cannot read %s: %s\n", path, err.msg);
        free(f);
        return NULL;
    }
    size_t n = (size_t)(shape[0] * shape[1] * 3);
    uint8_t *u = malloc(n);
    for (size_t i = 0; i < n; i++) u[i] = (uint8_t)f[i];
    free(f);
    *h = (int)shape[0];
    *w = (int)shape[1];
    return u;
}

static char *read_all(const char *path, size_t *len) {
    char *buf = NULL;
    g4c_err err = {0};
    if (g4c_read_file(path, (size_t)1 << 30, &buf, len, &err) != G4C_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        return NULL;
    }
    return buf;
}

static void write_all(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) abort();
    fclose(f);
}

/* Minimal JSON field access for the flat reference records. */
static int json_int(const char *js, const char *key, long *out) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(js, pat);
    if (!p) return 0;
    *out = strtol(p + strlen(pat), NULL, 10);
    return 1;
}

/* ---- decode ----------------------------------------------------------------------------------------------- */

static void test_decode_fixtures(void) {
    for (int i = 0; i < N_IMAGES; i++) {
        char path[512], ref[512], s[128];
        stem(s, sizeof s, images[i]);
        snprintf(path, sizeof path, "%s/images/%s", G4C_FIXTURES, images[i]);
        snprintf(ref, sizeof ref, "%s/ref/img/%s.rgb.npy", G4C_FIXTURES, s);
        int rh = 0, rw = 0;
        uint8_t *want = load_u8(ref, &rh, &rw);
        g4c_image img;
        g4c_err err = {0};
        g4c_status st = g4c_image_load(&img, path, 0, &err);
        CHECKF(st == G4C_OK, "%s: %s", images[i], err.msg);
        if (st != G4C_OK || !want) {
            free(want);
            continue;
        }
        CHECKF(img.height == rh && img.width == rw, "%s: %dx%d, reference %dx%d", images[i], img.width, img.height,
               rw, rh);
        if (img.height == rh && img.width == rw) {
            size_t n = (size_t)rh * rw * 3, same = 0;
            int maxd = 0;
            for (size_t k = 0; k < n; k++) {
                int d = abs((int)img.rgb[k] - (int)want[k]);
                same += d == 0;
                if (d > maxd) maxd = d;
            }
            printf("     decode %-20s %4dx%-4d exact %6.2f%%  max|d| %d\n", images[i], rw, rh, 100.0 * same / n, maxd);
            CHECKF(maxd == 0, "%s: decoded pixels differ from PIL (max |d| %d)", images[i], maxd);
        }
        g4c_image_free(&img);
        free(want);
    }
}

/* ---- target sizes, resize, patches against the reference -------------------------------------------------- */

static const ref_case cases[] = {
    {"astronaut384.png", 70}, {"camera_16bit.png", 70}, {"camera_gray.png", 70}, {"chelsea.png", 70},
    {"chelsea_alpha.png", 70}, {"chelsea_palette.png", 70}, {"coffee.jpg", 70}, {"coffee_cmyk.jpg", 70},
    {"gray_alpha.png", 70}, {"tall.png", 70}, {"tiny.png", 70}, {"wide.png", 70},
    {"chelsea.png", 140}, {"chelsea.png", 280}, {"coffee.jpg", 280},
};
#define N_CASES ((int)(sizeof cases / sizeof *cases))

static size_t total_px, total_same;

/* Compare patches/positions of p against the reference resized image want [th][tw][3]. Returns max |d| in u8 units
 * (patches are compared exactly as floats: they must equal want * (float)(1/255)). */
static int check_patches(const char *tag, const g4c_image_patches *p, const uint8_t *want, int tw, size_t *same_out) {
    const float scale = (float)(1.0 / 255.0);
    int maxd = 0;
    size_t same = 0;
    for (int n = 0; n < p->n_patches; n++) {
        const int gx = n % p->grid_w, gy = n / p->grid_w;
        if (p->positions[2 * n] != gx || p->positions[2 * n + 1] != gy) {
            CHECKF(0, "%s: position %d is (%d, %d), want (%d, %d)", tag, n, p->positions[2 * n],
                   p->positions[2 * n + 1], gx, gy);
            return 256;
        }
        for (int py = 0; py < 16; py++)
            for (int px = 0; px < 16; px++)
                for (int c = 0; c < 3; c++) {
                    const uint8_t u = want[((size_t)(gy * 16 + py) * tw + gx * 16 + px) * 3 + c];
                    const float got = p->patches[(size_t)n * 768 + (py * 16 + px) * 3 + c];
                    const float ref = (float)u * scale;
                    const int d = (int)lroundf(fabsf(got - ref) * 255.0f);
                    if (got == ref) same++;
                    else if (d == 0) {
                        CHECKF(0, "%s: patch value %.9g is not u8/255 (want %.9g)", tag, got, ref);
                        return 256;
                    }
                    if (d > maxd) maxd = d;
                }
    }
    *same_out = same;
    return maxd;
}

static void run_case(const ref_case *rc, int from_file) {
    char s[128], js_path[512], ref[512], tag[192];
    stem(s, sizeof s, rc->file);
    snprintf(tag, sizeof tag, "%s_b%d%s", s, rc->budget, from_file ? " (file)" : " (ref rgb)");
    snprintf(js_path, sizeof js_path, "%s/ref/img/%s_b%d.json", G4C_FIXTURES, s, rc->budget);
    size_t jl;
    char *js = read_all(js_path, &jl);
    CHECKF(js != NULL, "%s: no reference json", tag);
    if (!js) return;
    const int ref_error = strstr(js, "\"error\"") != NULL;
    long th = 0, tw = 0, n_patches = 0, n_soft = 0;
    if (!ref_error) {
        CHECK(json_int(js, "target_height", &th) && json_int(js, "target_width", &tw));
        CHECK(json_int(js, "n_patches", &n_patches) && json_int(js, "n_soft_tokens", &n_soft));
    }
    g4c_image_patches p;
    g4c_err err = {0};
    g4c_status st;
    int rh = 0, rw = 0;
    uint8_t *rgb = NULL;
    if (from_file) {
        char path[512];
        snprintf(path, sizeof path, "%s/images/%s", G4C_FIXTURES, rc->file);
        st = g4c_image_preprocess_file(path, rc->budget, &p, &err);
    } else {
        snprintf(ref, sizeof ref, "%s/ref/img/%s.rgb.npy", G4C_FIXTURES, s);
        rgb = load_u8(ref, &rh, &rw);
        if (!rgb) {
            CHECK(0);
            free(js);
            return;
        }
        g4c_image img = {.width = rw, .height = rh, .rgb = rgb};
        st = g4c_image_preprocess(&img, rc->budget, &p, &err);
    }
    if (ref_error) {
        CHECKF(st != G4C_OK, "%s: the reference raised an error but we produced %dx%d", tag, p.width, p.height);
        if (st == G4C_OK) g4c_image_patches_free(&p);
        printf("     %-34s reference error reproduced: %s\n", tag, err.msg);
        free(rgb);
        free(js);
        return;
    }
    CHECKF(st == G4C_OK, "%s: %s", tag, err.msg);
    if (st != G4C_OK) {
        free(rgb);
        free(js);
        return;
    }
    CHECKF(p.height == th && p.width == tw, "%s: target %dx%d (HxW), reference %ldx%ld", tag, p.height, p.width, th, tw);
    CHECKF(p.n_patches == n_patches && p.n_soft_tokens == n_soft, "%s: %d patches / %d tokens, reference %ld / %ld",
           tag, p.n_patches, p.n_soft_tokens, n_patches, n_soft);
    snprintf(ref, sizeof ref, "%s/ref/img/%s_b%d.resized.npy", G4C_FIXTURES, s, rc->budget);
    if (access(ref, R_OK) != 0) {
        printf("     %-34s %4ldx%-4ld %4ld tokens (sizes only: no resized.npy)\n", tag, tw, th, n_soft);
    } else if (p.height == th && p.width == tw) {
        int hh = 0, ww = 0;
        uint8_t *want = load_u8(ref, &hh, &ww);
        CHECK(want && hh == th && ww == tw);
        if (want && hh == th && ww == tw) {
            size_t same = 0, n = (size_t)th * tw * 3;
            int maxd = check_patches(tag, &p, want, (int)tw, &same);
            printf("     %-34s %4ldx%-4ld %4ld tokens  bit-identical %7.3f%%  max|d| %d\n", tag, tw, th, n_soft,
                   100.0 * same / n, maxd);
            CHECKF(maxd <= 1, "%s: resized pixels differ by up to %d", tag, maxd);
            CHECKF(same == n, "%s: %zu of %zu resized values differ from torchvision", tag, n - same, n);
            total_px += n;
            total_same += same;
        }
        free(want);
    }
    g4c_image_patches_free(&p);
    free(rgb);
    free(js);
}

static void test_reference_from_rgb(void) {
    total_px = total_same = 0;
    for (int i = 0; i < N_CASES; i++) run_case(&cases[i], 0);
    printf("     resize from reference RGB: %zu of %zu values bit-identical (%.4f%%)\n", total_same, total_px,
           total_px ? 100.0 * total_same / total_px : 0.0);
}

static void test_reference_end_to_end(void) {
    total_px = total_same = 0;
    for (int i = 0; i < N_CASES; i++) run_case(&cases[i], 1);
    printf("     end to end from the files: %zu of %zu values bit-identical (%.4f%%)\n", total_same, total_px,
           total_px ? 100.0 * total_same / total_px : 0.0);
}

/* ---- target sizes: the spec's worked examples and edge cases ---------------------------------------------- */

static void test_target_size(void) {
    static const struct { int w, h, budget, tw, th, tokens; } ex[] = {
        {1024, 768, 280, 912, 672, 266},  {1024, 1024, 280, 768, 768, 256}, {512, 512, 280, 768, 768, 256},
        {224, 224, 280, 768, 768, 256},   {1920, 1080, 280, 1056, 576, 264}, {1024, 768, 1120, 1824, 1344, 1064},
        {100000, 1, 70, 3360, 48, 70},    {1, 100000, 70, 48, 3360, 70},     {1, 1, 70, 384, 384, 64},
        {60, 1000, 70, 96, 1632, 68},
    };
    for (size_t i = 0; i < sizeof ex / sizeof *ex; i++) {
        int th = -1, tw = -1;
        g4c_err err = {0};
        g4c_status st = g4c_image_target_size(ex[i].h, ex[i].w, ex[i].budget, 16, 3, &th, &tw, &err);
        CHECKF(st == G4C_OK && th == ex[i].th && tw == ex[i].tw, "%dx%d at %d: got %dx%d (%s), want %dx%d", ex[i].w,
               ex[i].h, ex[i].budget, tw, th, err.msg, ex[i].tw, ex[i].th);
        CHECKF((th / 16) * (tw / 16) / 9 == ex[i].tokens, "%dx%d at %d: %d tokens, want %d", ex[i].w, ex[i].h,
               ex[i].budget, (th / 16) * (tw / 16) / 9, ex[i].tokens);
    }
    int th, tw;
    g4c_err err = {0};
    CHECK(g4c_image_target_size(0, 10, 70, 16, 3, &th, &tw, &err) == G4C_E_ARG && th == 0 && tw == 0);
    CHECK(g4c_image_target_size(10, 10, 0, 16, 3, &th, &tw, &err) == G4C_E_ARG);
    /* every budget the processor accepts, and a rejected one */
    g4c_image img = {.width = 64, .height = 48, .rgb = calloc(64 * 48, 3)};
    static const int budgets[] = {70, 140, 280, 560, 1120};
    for (int i = 0; i < 5; i++) {
        g4c_image_patches p;
        CHECK(g4c_image_preprocess(&img, budgets[i], &p, &err) == G4C_OK);
        CHECKF(p.n_soft_tokens <= budgets[i] && p.n_soft_tokens * 9 == p.n_patches && p.width % 48 == 0 &&
                   p.height % 48 == 0, "budget %d: %d tokens", budgets[i], p.n_soft_tokens);
        g4c_image_patches_free(&p);
    }
    g4c_image_patches p;
    CHECK(g4c_image_preprocess(&img, 100, &p, &err) == G4C_E_ARG && strstr(err.msg, "70, 140") && !p.patches);
    CHECK(g4c_image_preprocess(&img, 0, &p, &err) == G4C_OK && p.n_soft_tokens <= 280 && p.n_soft_tokens > 250);
    g4c_image_patches_free(&p);
    free(img.rgb);
}

/* ---- resize properties ------------------------------------------------------------------------------------ */

static void test_resize_properties(void) {
    g4c_err err = {0};
    uint64_t seed = 7;
    /* equal size copies; constant images stay constant through strong down- and upscaling, one axis or both */
    g4c_image src = {.width = 97, .height = 31, .rgb = malloc(97 * 31 * 3)};
    for (int i = 0; i < 97 * 31 * 3; i++) src.rgb[i] = (uint8_t)test_rng_u64(&seed);
    uint8_t *dst = malloc(97 * 31 * 3);
    CHECK(g4c_image_resize_bicubic_aa(dst, 31, 97, &src, &err) == G4C_OK && !memcmp(dst, src.rgb, 97 * 31 * 3));
    free(dst);
    static const int sizes[][4] = {{31, 97, 48, 48}, {31, 97, 31, 480}, {31, 97, 96, 97}, {3000, 7, 48, 96},
                                   {7, 3000, 96, 48}, {1, 1, 48, 48}};
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        const int h = sizes[t][0], w = sizes[t][1], th = sizes[t][2], tw = sizes[t][3];
        g4c_image c = {.width = w, .height = h, .rgb = malloc((size_t)w * h * 3)};
        for (int i = 0; i < w * h; i++) c.rgb[3 * i] = 0, c.rgb[3 * i + 1] = 77, c.rgb[3 * i + 2] = 255;
        uint8_t *o = malloc((size_t)th * tw * 3);
        CHECK(g4c_image_resize_bicubic_aa(o, th, tw, &c, &err) == G4C_OK);
        int bad = 0;
        for (int i = 0; i < th * tw; i++) bad += o[3 * i] != 0 || o[3 * i + 1] != 77 || o[3 * i + 2] != 255;
        CHECKF(bad == 0, "%dx%d -> %dx%d: %d pixels of a constant image changed", w, h, tw, th, bad);
        free(o);
        free(c.rgb);
    }
    CHECK(g4c_image_resize_bicubic_aa(NULL, 0, 10, &src, &err) == G4C_E_ARG);
    free(src.rgb);
    /* patchify order on a known image: value = f(x, y, c) */
    enum { W = 48, H = 32 };
    uint8_t *img = malloc(W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) img[(y * W + x) * 3 + c] = (uint8_t)(x * 5 + y * 3 + c);
    float *pt = malloc(sizeof(float) * 6 * 768);
    int32_t pos[12];
    CHECK(g4c_image_patchify(img, H, W, 16, pt, pos, &err) == G4C_OK);
    int bad = 0;
    for (int n = 0; n < 6; n++)
        for (int py = 0; py < 16; py++)
            for (int px = 0; px < 16; px++)
                for (int c = 0; c < 3; c++) {
                    const int x = (n % 3) * 16 + px, y = (n / 3) * 16 + py;
                    bad += pt[n * 768 + (py * 16 + px) * 3 + c] != (float)(uint8_t)(x * 5 + y * 3 + c) * (float)(1.0 / 255.0);
                }
    CHECK(bad == 0);
    CHECK(pos[0] == 0 && pos[1] == 0 && pos[2] == 1 && pos[3] == 0 && pos[6] == 0 && pos[7] == 1 && pos[10] == 2 &&
          pos[11] == 1);
    CHECK(g4c_image_patchify(img, H, 40, 16, pt, pos, &err) == G4C_E_ARG);
    free(pt);
    free(img);
}

/* The streaming two-pass resize equals its definition: a horizontal-only resize (rounded to uint8) followed by a
 * vertical-only one; for ordinary sizes, a tall sliver (ring of thousands of rows) and a very wide image (weights
 * computed per column instead of tabulated). Slivers beyond the work limit are refused. */
static void test_resize_streaming(void) {
    static const int shapes[][2] = {{451, 300}, {40, 30}, {7, 5000}, {60, 1000}, {1000, 60}, {1200000, 3}, {1, 200000}};
    uint64_t seed = 11;
    g4c_err err = {0};
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        const int w = shapes[t][0], h = shapes[t][1];
        g4c_image src = {.width = w, .height = h, .rgb = malloc((size_t)w * h * 3)};
        for (size_t i = 0; i < (size_t)w * h * 3; i++) src.rgb[i] = (uint8_t)(test_rng_u64(&seed) >> 56);
        int th, tw;
        CHECK(g4c_image_target_size(h, w, 70, 16, 3, &th, &tw, &err) == G4C_OK);
        uint8_t *a = malloc((size_t)th * tw * 3), *b = malloc((size_t)th * tw * 3);
        g4c_image mid = {.width = tw, .height = h, .rgb = malloc((size_t)h * tw * 3)};
        CHECKF(g4c_image_resize_bicubic_aa(a, th, tw, &src, &err) == G4C_OK, "%s", err.msg);
        CHECKF(g4c_image_resize_bicubic_aa(mid.rgb, h, tw, &src, &err) == G4C_OK, "%s", err.msg);
        CHECKF(g4c_image_resize_bicubic_aa(b, th, tw, &mid, &err) == G4C_OK, "%s", err.msg);
        CHECKF(!memcmp(a, b, (size_t)th * tw * 3), "%dx%d -> %dx%d: streamed resize differs from pass by pass", w, h,
               tw, th);
        free(a);
        free(b);
        free(mid.rgb);
        free(src.rgb);
    }
    /* 1 x 2,000,000: 96 million widened pixels before the vertical pass: refused, as documented */
    g4c_image sliver = {.width = 1, .height = 2000000, .rgb = calloc(2000000, 3)};
    g4c_image_patches p;
    CHECK(g4c_image_preprocess(&sliver, 70, &p, &err) == G4C_E_UNSUPPORTED && strstr(err.msg, "elongated") &&
          !p.patches);
    printf("     %s\n", err.msg);
    free(sliver.rgb);
}

/* ---- PNG variants written here ---------------------------------------------------------------------------- */

typedef struct { uint8_t *p; size_t n, cap; } bytes;

static void put(bytes *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u8(bytes *b, unsigned v) { uint8_t x = (uint8_t)v; put(b, &x, 1); }
static void put_be32(bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static uint32_t crc32_of(const uint8_t *d, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= d[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void png_chunk(bytes *b, const char *type, const uint8_t *d, size_t n) {
    put_be32(b, (uint32_t)n);
    size_t at = b->n;
    put(b, type, 4);
    if (n) put(b, d, n);
    put_be32(b, crc32_of(b->p + at, n + 4));
}

/* sample(x, y, channel) in [0, 2^depth) */
typedef unsigned (*sample_fn)(int x, int y, int ch, int depth);

static const int spp_of[7] = {1, 0, 3, 1, 2, 0, 4};

/* A PNG with stored (uncompressed) deflate blocks; Adam7 when interlace. */
static bytes make_png(int w, int h, int depth, int ctype, int interlace, sample_fn f, const uint8_t *plte, int n_plte,
                      int trns) {
    static const int a7[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                 {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
    const int spp = spp_of[ctype];
    bytes raw = {0};
    for (int pass = 0; pass < (interlace ? 7 : 1); pass++) {
        const int x0 = interlace ? a7[pass][0] : 0, y0 = interlace ? a7[pass][1] : 0;
        const int dx = interlace ? a7[pass][2] : 1, dy = interlace ? a7[pass][3] : 1;
        const int pw = w > x0 ? (w - x0 + dx - 1) / dx : 0, ph = h > y0 ? (h - y0 + dy - 1) / dy : 0;
        if (!pw || !ph) continue;
        for (int j = 0; j < ph; j++) {
            put_u8(&raw, 0); /* filter: none */
            unsigned acc = 0;
            int bits = 0;
            for (int i = 0; i < pw; i++)
                for (int c = 0; c < spp; c++) {
                    unsigned v = f(x0 + i * dx, y0 + j * dy, c, depth);
                    if (depth == 16) {
                        put_u8(&raw, v >> 8);
                        put_u8(&raw, v & 255);
                    } else if (depth == 8) {
                        put_u8(&raw, v);
                    } else {
                        acc = acc << depth | v;
                        bits += depth;
                        if (bits == 8) put_u8(&raw, acc), acc = 0, bits = 0;
                    }
                }
            if (bits) put_u8(&raw, acc << (8 - bits));
        }
    }
    bytes z = {0};
    put_u8(&z, 0x78), put_u8(&z, 0x01);
    size_t off = 0;
    do {
        size_t n = raw.n - off > 65535 ? 65535 : raw.n - off;
        put_u8(&z, off + n == raw.n);
        put_u8(&z, n & 255), put_u8(&z, n >> 8), put_u8(&z, ~n & 255), put_u8(&z, (~n >> 8) & 255);
        if (n) put(&z, raw.p + off, n);
        off += n;
    } while (off < raw.n);
    uint32_t a = 1, b2 = 0;
    for (size_t i = 0; i < raw.n; i++) a = (a + raw.p[i]) % 65521, b2 = (b2 + a) % 65521;
    put_be32(&z, b2 << 16 | a);
    bytes png = {0};
    put(&png, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        (uint8_t)depth, (uint8_t)ctype, 0, 0, (uint8_t)interlace};
    png_chunk(&png, "IHDR", ihdr, 13);
    if (plte) png_chunk(&png, "PLTE", plte, (size_t)n_plte * 3);
    if (trns) {
        const uint8_t t[6] = {0, 1, 0, 2, 0, 3};
        png_chunk(&png, "tRNS", t, ctype == 0 ? 2 : 6);
    }
    png_chunk(&png, "IDAT", z.p, z.n);
    png_chunk(&png, "IEND", NULL, 0);
    free(raw.p);
    free(z.p);
    return png;
}

static unsigned pattern(int x, int y, int ch, int depth) {
    const unsigned m = depth == 16 ? 600u : (1u << depth); /* 16-bit: both sides of 255 */
    return (unsigned)(x * 37 + y * 101 + ch * 53 + x * y) % m;
}

/* What PIL's convert("RGB") gives for one pixel of such a PNG. */
static void pil_rgb(uint8_t out[3], int x, int y, int depth, int ctype, const uint8_t *plte, int n_plte) {
    unsigned v[4];
    for (int c = 0; c < spp_of[ctype]; c++) v[c] = pattern(x, y, c, depth);
    if (ctype == 3) {
        for (int c = 0; c < 3; c++) out[c] = (int)v[0] < n_plte ? plte[3 * v[0] + c] : 0;
        return;
    }
    for (int c = 0; c < spp_of[ctype]; c++) {
        if (depth == 16) v[c] = (ctype == 0) ? (v[c] > 255 ? 255 : v[c]) : v[c] >> 8;
        else if (depth < 8) v[c] = v[c] * 255 / ((1u << depth) - 1);
    }
    for (int c = 0; c < 3; c++) out[c] = (uint8_t)((ctype & 2) ? v[c] : v[0]);
}

static void test_png_variants(void) {
    static const struct { int ctype, depth; } kinds[] = {{0, 1}, {0, 2}, {0, 4}, {0, 8}, {0, 16}, {2, 8},  {2, 16},
                                                        {3, 1}, {3, 2}, {3, 4}, {3, 8}, {4, 8},  {4, 16}, {6, 8},
                                                        {6, 16}};
    uint8_t plte[3 * 200];
    for (int i = 0; i < 600; i++) plte[i] = (uint8_t)(i * 7 + 3);
    int n_ok = 0, n = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (int il = 0; il < 2; il++)
            for (int sz = 0; sz < 2; sz++) {
                const int w = sz ? 13 : 1, h = sz ? 9 : 3, ct = kinds[k].ctype, d = kinds[k].depth;
                /* palettes shorter than the index range: PIL maps the rest to black */
                const int n_plte = ct == 3 ? (d == 8 ? 200 : (1 << d) - 1) : 0;
                bytes png = make_png(w, h, d, ct, il, pattern, ct == 3 ? plte : NULL, n_plte, ct == 0 || ct == 2);
                g4c_image img;
                g4c_err err = {0};
                g4c_status st = g4c_image_decode(&img, png.p, png.n, "synthetic.png", 0, &err);
                n++;
                CHECKF(st == G4C_OK, "ctype %d depth %d interlace %d: %s", ct, d, il, err.msg);
                if (st == G4C_OK) {
                    int bad = img.width != w || img.height != h;
                    for (int y = 0; !bad && y < h; y++)
                        for (int x = 0; x < w; x++) {
                            uint8_t want[3];
                            pil_rgb(want, x, y, d, ct, plte, n_plte);
                            bad += memcmp(want, img.rgb + (y * w + x) * 3, 3) != 0;
                        }
                    CHECKF(!bad, "ctype %d depth %d interlace %d %dx%d: %d pixels differ from PIL's rules", ct, d, il,
                           w, h, bad);
                    n_ok += !bad;
                    g4c_image_free(&img);
                }
                free(png.p);
            }
    printf("     %d of %d synthetic PNGs (all color types and depths, Adam7, short palettes, tRNS) as PIL\n", n_ok, n);
}

/* ---- JPEGs encoded here with libjpeg ---------------------------------------------------------------------- */

enum { JPG_BASELINE, JPG_PROGRESSIVE, JPG_MANY_SCANS };

/* rgb [h][w][3] -> JPEG bytes (malloc'd by libjpeg's mem dest). many scans: DC, then one scan per AC coefficient
 * per component = 1 + 63 * 3 = 190 scans, a valid progressive script over G4C_IMAGE_MAX_SCANS. */
static unsigned char *jpeg_encode(const uint8_t *rgb, int w, int h, int mode, int exif_orientation, unsigned long *len) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    unsigned char *out = NULL;
    *len = 0;
    jpeg_mem_dest(&ci, &out, len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 85, TRUE);
    static jpeg_scan_info many[190];
    if (mode == JPG_PROGRESSIVE) jpeg_simple_progression(&ci);
    if (mode == JPG_MANY_SCANS) {
        many[0] = (jpeg_scan_info){3, {0, 1, 2, 0}, 0, 0, 0, 0};
        int n = 1;
        for (int c = 0; c < 3; c++)
            for (int k = 1; k < 64; k++) many[n++] = (jpeg_scan_info){1, {c, 0, 0, 0}, k, k, 0, 0};
        ci.scan_info = many;
        ci.num_scans = n;
    }
    jpeg_start_compress(&ci, TRUE);
    if (exif_orientation) {
        /* APP1 "Exif\0\0" + big-endian TIFF with one IFD entry: Orientation (0x0112) SHORT = value */
        const uint8_t exif[] = {'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0,
                                0, 1, 0, (uint8_t)exif_orientation, 0, 0, 0, 0, 0, 0};
        jpeg_write_marker(&ci, JPEG_APP0 + 1, exif, sizeof exif);
    }
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)ci.next_scanline * w * 3);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return out;
}

static int count_sos(const unsigned char *j, unsigned long n) {
    int k = 0;
    for (unsigned long i = 0; i + 1 < n; i++) k += j[i] == 0xFF && j[i + 1] == 0xDA;
    return k;
}

static void test_jpeg_variants(void) {
    enum { W = 67, H = 45 };
    uint8_t *rgb = malloc(W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) rgb[(y * W + x) * 3 + c] = (uint8_t)(128 + 100 * sin(x * 0.2 + y * 0.1 * (c + 1)));
    unsigned long nb, np, nm, ne;
    unsigned char *base = jpeg_encode(rgb, W, H, JPG_BASELINE, 0, &nb);
    unsigned char *prog = jpeg_encode(rgb, W, H, JPG_PROGRESSIVE, 0, &np);
    unsigned char *many = jpeg_encode(rgb, W, H, JPG_MANY_SCANS, 0, &nm);
    unsigned char *exif = jpeg_encode(rgb, W, H, JPG_BASELINE, 6, &ne);
    g4c_image a, b, e;
    g4c_err err = {0};
    CHECKF(g4c_image_decode(&a, base, nb, "base.jpg", 0, &err) == G4C_OK, "%s", err.msg);
    CHECKF(g4c_image_decode(&b, prog, np, "prog.jpg", 0, &err) == G4C_OK, "%s", err.msg);
    /* progressive coding is lossless over the same quantised coefficients: identical pixels */
    CHECK(a.rgb && b.rgb && a.width == W && a.height == H && b.width == W && !memcmp(a.rgb, b.rgb, W * H * 3));
    printf("     progressive JPEG (%d scans) decodes identical to baseline\n", count_sos(prog, np));
    /* EXIF orientation 6 (rotate 90) is not applied: PIL's convert() does not */
    CHECKF(g4c_image_decode(&e, exif, ne, "exif.jpg", 0, &err) == G4C_OK, "%s", err.msg);
    CHECK(e.rgb && e.width == W && e.height == H && a.rgb && !memcmp(a.rgb, e.rgb, W * H * 3));
    g4c_image_free(&e);
    g4c_image m;
    CHECK(count_sos(many, nm) == 190);
    CHECK(g4c_image_decode(&m, many, nm, "many.jpg", 0, &err) == G4C_E_FORMAT && strstr(err.msg, "many.jpg") &&
          strstr(err.msg, "scans") && !m.rgb);
    printf("     190-scan progressive JPEG refused: %s\n", err.msg);
    /* truncated progressive file */
    CHECK(g4c_image_decode(&m, prog, np / 2, "half.jpg", 0, &err) == G4C_E_FORMAT && strstr(err.msg, "truncated"));
    g4c_image_free(&a);
    g4c_image_free(&b);
    free(base);
    free(prog);
    free(many);
    free(exif);
    free(rgb);
}

/* ---- hostile and broken input ----------------------------------------------------------------------------- */

static void test_truncated(void) {
    static const char *const files[] = {"chelsea.png", "coffee.jpg", "chelsea_palette.png", "coffee_cmyk.jpg",
                                        "camera_16bit.png"};
    int n_cut = 0;
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/images/%s", G4C_FIXTURES, files[f]);
        size_t len;
        char *data = read_all(path, &len);
        if (!data) { CHECK(0); continue; }
        const int is_png = strstr(files[f], ".png") != NULL;
        /* PNG: everything before IEND (12 bytes) is needed; JPEG: everything, since libjpeg reads ahead for the
         * last rows and meets the end of the data where the EOI should be (PIL then raises "truncated" too) */
        const size_t need = is_png ? len - 12 : len;
        const size_t cuts[] = {1, 2, 3, 7, 8, 9, 16, 33, 40, 100, 300, 1000, len / 3, len / 2, need - 100, need - 5,
                               need - 1};
        for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
            if (cuts[c] >= need) continue;
            g4c_image img;
            g4c_err err = {0};
            /* a fresh copy of exactly cuts[c] bytes, so ASan sees any read past the end */
            char *part = malloc(cuts[c]);
            memcpy(part, data, cuts[c]);
            g4c_status st = g4c_image_decode(&img, part, cuts[c], files[f], 0, &err);
            CHECKF(st == G4C_E_FORMAT && !img.rgb && strstr(err.msg, files[f]),
                   "%s cut at %zu of %zu bytes: status %d (%s)", files[f], cuts[c], len, st, err.msg);
            if (st == G4C_OK) g4c_image_free(&img);
            free(part);
            n_cut++;
        }
        g4c_image img;
        g4c_err err = {0};
        if (is_png) { /* IEND alone missing is accepted, as PIL does */
            CHECKF(g4c_image_decode(&img, data, need, files[f], 0, &err) == G4C_OK, "%s without IEND: %s", files[f],
                   err.msg);
            g4c_image_free(&img);
        } else { /* EOI missing: refused, as PIL does */
            CHECKF(g4c_image_decode(&img, data, len - 2, files[f], 0, &err) == G4C_E_FORMAT, "%s without EOI: %s",
                   files[f], err.msg);
            n_cut++;
        }
        free(data);
    }
    printf("     %d truncated files refused (cut inside signature, headers and image data)\n", n_cut);
}

static void test_bad_input(void) {
    g4c_image img;
    g4c_err err = {0};
    CHECK(g4c_image_decode(&img, "", 0, "empty.png", 0, &err) == G4C_E_FORMAT && strstr(err.msg, "empty.png") &&
          strstr(err.msg, "0 bytes"));
    CHECK(g4c_image_decode(&img, "hello, world\n", 13, "notes.txt", 0, &err) == G4C_E_FORMAT &&
          strstr(err.msg, "notes.txt") && strstr(err.msg, "not a PNG or JPEG"));
    CHECK(g4c_image_decode(&img, "GIF89a\1\0\1\0", 10, "anim.gif", 0, &err) == G4C_E_UNSUPPORTED &&
          strstr(err.msg, "GIF"));
    CHECK(g4c_image_decode(&img, "RIFF\0\0\0\0WEBPVP8 ", 16, "x.webp", 0, &err) == G4C_E_UNSUPPORTED &&
          strstr(err.msg, "WebP"));
    /* a PNG header claiming 100000 x 100000 (1e10 pixels): refused from IHDR, before any pixel buffer */
    bytes big = {0};
    put(&big, "\x89PNG\r\n\x1a\n", 8);
    const uint8_t ihdr[13] = {0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 2, 0, 0, 0};
    png_chunk(&big, "IHDR", ihdr, 13);
    png_chunk(&big, "IEND", NULL, 0);
    CHECK(g4c_image_decode(&img, big.p, big.n, "big.png", 0, &err) == G4C_E_UNSUPPORTED &&
          strstr(err.msg, "100000x100000") && strstr(err.msg, "limit"));
    printf("     %s\n", err.msg);
    free(big.p);
    /* zero width in IHDR */
    bytes zero = {0};
    put(&zero, "\x89PNG\r\n\x1a\n", 8);
    const uint8_t ihdr0[13] = {0, 0, 0, 0, 0, 0, 0, 5, 8, 2, 0, 0, 0};
    png_chunk(&zero, "IHDR", ihdr0, 13);
    png_chunk(&zero, "IEND", NULL, 0);
    CHECK(g4c_image_decode(&img, zero.p, zero.n, "zero.png", 0, &err) == G4C_E_FORMAT);
    free(zero.p);
    /* a JPEG whose SOF claims 65000 x 65000 */
    char path[512];
    snprintf(path, sizeof path, "%s/images/coffee.jpg", G4C_FIXTURES);
    size_t len;
    char *jpg = read_all(path, &len);
    int patched = 0;
    for (size_t i = 0; jpg && i + 9 < len; i++)
        if ((uint8_t)jpg[i] == 0xFF && ((uint8_t)jpg[i + 1] == 0xC0 || (uint8_t)jpg[i + 1] == 0xC2)) {
            jpg[i + 5] = (char)0xFD, jpg[i + 6] = (char)0xE8, jpg[i + 7] = (char)0xFD, jpg[i + 8] = (char)0xE8;
            patched = 1;
            break;
        }
    CHECK(patched);
    CHECK(jpg && g4c_image_decode(&img, jpg, len, "huge.jpg", 0, &err) == G4C_E_UNSUPPORTED &&
          strstr(err.msg, "65000x65000"));
    free(jpg);
    /* a caller's smaller limit */
    snprintf(path, sizeof path, "%s/images/chelsea.png", G4C_FIXTURES);
    CHECK(g4c_image_load(&img, path, 1000, &err) == G4C_E_UNSUPPORTED && strstr(err.msg, "chelsea.png"));
    /* a flipped byte inside IDAT: the chunk CRC no longer matches */
    char *png = read_all(path, &len);
    if (png) {
        png[len / 2] ^= 0x55;
        CHECK(g4c_image_decode(&img, png, len, "flipped.png", 0, &err) == G4C_E_FORMAT && strstr(err.msg, "flipped"));
        printf("     %s\n", err.msg);
        free(png);
    }
    /* missing file, directory */
    CHECK(g4c_image_load(&img, "/nonexistent/photo.jpg", 0, &err) == G4C_E_IO && strstr(err.msg, "/nonexistent/photo.jpg"));
    printf("     %s\n", err.msg);
    CHECK(g4c_image_load(&img, "/tmp", 0, &err) != G4C_OK && strstr(err.msg, "/tmp"));
    g4c_image_patches p;
    CHECK(g4c_image_preprocess_file("/nonexistent/photo.png", 280, &p, &err) == G4C_E_IO && !p.patches &&
          strstr(err.msg, "photo.png"));
}

static void copy_file(const char *from, const char *to) {
    size_t len;
    char *d = read_all(from, &len);
    if (!d) abort();
    write_all(to, d, len);
    free(d);
}

/* The format comes from the bytes: a PNG named .jpg and a JPEG named .png decode the same. */
static void test_wrong_extension(void) {
    if (mkdir_p_tmp() != 0) { CHECK(0); return; }
    static const char *const pairs[][2] = {{"chelsea.png", "really_png.jpg"}, {"coffee.jpg", "really_jpeg.png"},
                                           {"tiny.png", "noextension"}};
    for (int i = 0; i < 3; i++) {
        char from[512], to[512];
        snprintf(from, sizeof from, "%s/images/%s", G4C_FIXTURES, pairs[i][0]);
        snprintf(to, sizeof to, "%s/%s", tmp_dir, pairs[i][1]);
        copy_file(from, to);
        g4c_image a, b;
        g4c_err err = {0};
        CHECKF(g4c_image_load(&a, from, 0, &err) == G4C_OK, "%s", err.msg);
        CHECKF(g4c_image_load(&b, to, 0, &err) == G4C_OK, "%s", err.msg);
        CHECK(a.rgb && b.rgb && a.width == b.width && a.height == b.height &&
              !memcmp(a.rgb, b.rgb, (size_t)a.width * a.height * 3));
        g4c_image_free(&a);
        g4c_image_free(&b);
        unlink(to);
    }
    rmdir(tmp_dir);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/g4c_test_image.%d", (int)getpid());
    RUN(test_decode_fixtures);
    RUN(test_reference_from_rgb);
    RUN(test_reference_end_to_end);
    RUN(test_target_size);
    RUN(test_resize_properties);
    RUN(test_resize_streaming);
    RUN(test_png_variants);
    RUN(test_jpeg_variants);
    RUN(test_truncated);
    RUN(test_bad_input);
    RUN(test_wrong_extension);
    return TEST_REPORT();
}
