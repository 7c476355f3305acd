/* Image preprocessing (spec §4.1 steps 2-7): target size, antialiased bicubic resize, rescale, patchify.
 *
 * Reference: transformers 5.17 Gemma4ImageProcessor (torchvision backend). The resize is
 * torchvision.transforms.v2.functional.resize(uint8 [3,H,W], [th, tw], BICUBIC, antialias=True), which on CPU
 * keeps the uint8 tensor and runs torch's _upsample_bicubic2d_aa uint8 kernel (aten/src/ATen/native/cpu/
 * UpSampleKernel.cpp + UpSampleKernelAVXAntialias.h, a port of Pillow's ImagingResample). Reproduced exactly:
 *   scale = in / out (double); support = 2 * max(scale, 1); ksize = ceil(support) * 2 + 1
 *   per output i: center = scale * (i + 0.5); xmin = max((int64)(center - support + 0.5), 0)
 *                 xsize = clamp(min((int64)(center + support + 0.5), in) - xmin, 0, ksize)
 *                 w_j = cubic(((j + xmin) - center + 0.5) * (scale >= 1 ? 1 / scale : 1)), Keys a = -0.5 with
 *                 torch's polynomial forms, normalised by their sum (when non-zero)
 *   per pass: precision p = the largest p < 22 with (int)(0.5 + max_w * 2^(p+1)) < 2^15 ... (torch's loop);
 *             int16 weights (int)(w * 2^p +- 0.5)
 *   out = clamp((sum_j w_j * px_j + 2^(p-1)) >> p, 0, 255)   -- int32, arithmetic shift
 *   horizontal pass first into a uint8 [H][tw] buffer, then vertical; a pass whose size is unchanged is skipped.
 * Note the filter is Keys a = -0.5 (PIL-compatible; torch's non-antialiased bicubic uses -0.75). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "image/image.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* the weights must round like torch's double arithmetic (GCC: off in ISO C mode) */
#endif

/* ---- target size ------------------------------------------------------------------------------------------ */

g4c_status g4c_image_target_size(int h, int w, int budget, int patch, int pool, int *th, int *tw, g4c_err *err) {
    *th = *tw = 0;
    if (h <= 0 || w <= 0) return G4C_FAIL(err, G4C_E_ARG, "image size %dx%d (WxH) is not positive", w, h);
    if (budget <= 0 || patch <= 0 || pool <= 0 || budget > (1 << 20) || patch > 1024 || pool > 64)
        return G4C_FAIL(err, G4C_E_ARG, "bad resize parameters: budget %d, patch %d, pool %d", budget, patch, pool);
    /* HF get_aspect_ratio_preserving_size, in the same double arithmetic (Python int / int is correctly rounded,
     * as is the division of two exactly representable doubles). */
    const int64_t max_patches = (int64_t)budget * pool * pool;
    const int64_t target_px = max_patches * patch * patch;
    const double factor = sqrt((double)target_px / ((double)h * (double)w));
    const int64_t side = (int64_t)pool * patch;
    int64_t H = (int64_t)floor(factor * h / (double)side) * side;
    int64_t W = (int64_t)floor(factor * w / (double)side) * side;
    if (H == 0 && W == 0)
        return G4C_FAIL(err, G4C_E_ARG,
                        "cannot resize a %dx%d (WxH) image: it would become 0 x 0 (sides must be multiples of %lld)",
                        w, h, (long long)side);
    const int64_t max_side = (max_patches / ((int64_t)pool * pool)) * side;
    if (H == 0) {
        H = side;
        const int64_t r = (int64_t)floor((double)w / (double)h) * side;
        W = r < max_side ? r : max_side;
    } else if (W == 0) {
        W = side;
        const int64_t r = (int64_t)floor((double)h / (double)w) * side;
        H = r < max_side ? r : max_side;
    }
    if (H * W > target_px)
        return G4C_FAIL(err, G4C_E_ARG, "resizing %dx%d (WxH) to %lldx%lld exceeds %lld patches of %dx%d", w, h,
                        (long long)W, (long long)H, (long long)max_patches, patch, patch);
    if (H > INT32_MAX || W > INT32_MAX)
        return G4C_FAIL(err, G4C_E_ARG, "resizing %dx%d (WxH): target %lldx%lld is too large", w, h, (long long)W,
                        (long long)H);
    *th = (int)H;
    *tw = (int)W;
    return G4C_OK;
}

/* ---- resize ----------------------------------------------------------------------------------------------- */

typedef struct {
    int ksize;      /* weights per output (stride of w) */
    unsigned prec;  /* fixed-point bits of w */
    int *xmin;      /* [out] first input index */
    int *xsize;     /* [out] number of inputs used */
    int16_t *w;     /* [out][ksize] */
} axis_weights;

static void axis_free(axis_weights *a) {
    free(a->xmin);
    free(a->xsize);
    free(a->w);
}

/* HelperInterpCubic::aa_filter<double, use_keys_cubic=true> with cubic_convolution1/2 from UpSample.h. */
static double cubic_aa(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0.0;
}

/* HelperInterpBase::_compute_index_ranges_int16_weights for antialias = true, align_corners = false. */
static g4c_status axis_init(axis_weights *a, int in, int out, g4c_err *err) {
    memset(a, 0, sizeof *a);
    const double scale = (double)in / out;
    const double support = scale >= 1.0 ? 2.0 * scale : 2.0;
    a->ksize = (int)ceil(support) * 2 + 1;
    double *wd = g4c_malloc((size_t)out, (size_t)a->ksize * sizeof(double), err);
    a->xmin = g4c_malloc((size_t)out, sizeof(int), err);
    a->xsize = g4c_malloc((size_t)out, sizeof(int), err);
    a->w = g4c_malloc((size_t)out, (size_t)a->ksize * sizeof(int16_t), err);
    if (!wd || !a->xmin || !a->xsize || !a->w) {
        free(wd);
        axis_free(a);
        return G4C_E_NOMEM;
    }
    const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    double wt_max = 0.0;
    for (int i = 0; i < out; i++) {
        const double center = scale * (i + 0.5);
        int64_t xmin = (int64_t)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int64_t xmax = (int64_t)(center + support + 0.5);
        if (xmax > in) xmax = in;
        int64_t xsize = xmax - xmin;
        if (xsize < 0) xsize = 0;
        if (xsize > a->ksize) xsize = a->ksize;
        double *k = wd + (size_t)i * a->ksize;
        double total = 0.0;
        int64_t j = 0;
        for (; j < xsize; j++) {
            k[j] = cubic_aa(((double)(j + xmin) - center + 0.5) * invscale);
            total += k[j];
        }
        if (total != 0.0) {
            for (j = 0; j < xsize; j++) {
                k[j] /= total;
                if (k[j] > wt_max) wt_max = k[j];
            }
        }
        for (; j < a->ksize; j++) k[j] = 0.0;
        a->xmin[i] = (int)xmin;
        a->xsize[i] = (int)xsize;
    }
    unsigned p;
    for (p = 0; p < 22; p++) {
        const int next = (int)(0.5 + wt_max * (1 << (p + 1)));
        if (next >= (1 << 15)) break;
    }
    a->prec = p;
    for (size_t i = 0; i < (size_t)out * a->ksize; i++) {
        const double v = wd[i] * (1 << p);
        a->w[i] = (int16_t)(v < 0 ? (int)(-0.5 + v) : (int)(0.5 + v));
    }
    free(wd);
    return G4C_OK;
}

/* prec >= 1 whenever some weight is non-zero; an all-zero axis gives 0 everywhere either way */
#define ROUND_OFFSET(prec) ((prec) ? (int32_t)1 << ((prec) - 1) : 0)

static inline uint8_t fixed_to_u8(int32_t s, unsigned prec) {
    if (s < 0) return 0; /* (s >> prec) would be negative: clamps to 0 */
    s >>= prec;
    return (uint8_t)(s > 255 ? 255 : s);
}

/* [h][in_w][3] -> [h][out_w][3] */
static void pass_horizontal(uint8_t *dst, const uint8_t *src, int h, int in_w, int out_w, const axis_weights *a) {
    const int32_t round = ROUND_OFFSET(a->prec);
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)y * in_w * 3;
        uint8_t *o = dst + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const int16_t *k = a->w + (size_t)x * a->ksize;
            const uint8_t *p = row + (size_t)a->xmin[x] * 3;
            int32_t s0 = round, s1 = round, s2 = round;
            for (int j = 0; j < a->xsize[x]; j++, p += 3) {
                s0 += k[j] * p[0];
                s1 += k[j] * p[1];
                s2 += k[j] * p[2];
            }
            o[3 * x] = fixed_to_u8(s0, a->prec);
            o[3 * x + 1] = fixed_to_u8(s1, a->prec);
            o[3 * x + 2] = fixed_to_u8(s2, a->prec);
        }
    }
}

/* [in_h][w][3] -> [out_h][w][3]; acc is a [w * 3] scratch row. Row-at-a-time accumulation (same integer sums). */
static void pass_vertical(uint8_t *dst, const uint8_t *src, int w, int out_h, const axis_weights *a, int32_t *acc) {
    const int32_t round = ROUND_OFFSET(a->prec);
    const size_t stride = (size_t)w * 3;
    for (int y = 0; y < out_h; y++) {
        const int16_t *k = a->w + (size_t)y * a->ksize;
        const uint8_t *base = src + (size_t)a->xmin[y] * stride;
        for (size_t i = 0; i < stride; i++) acc[i] = round;
        for (int j = 0; j < a->xsize[y]; j++) {
            const int32_t kj = k[j];
            const uint8_t *row = base + (size_t)j * stride;
            for (size_t i = 0; i < stride; i++) acc[i] += kj * row[i];
        }
        uint8_t *o = dst + (size_t)y * stride;
        for (size_t i = 0; i < stride; i++) o[i] = fixed_to_u8(acc[i], a->prec);
    }
}

g4c_status g4c_image_resize_bicubic_aa(uint8_t *dst, int th, int tw, const g4c_image *src, g4c_err *err) {
    const int h = src->height, w = src->width;
    if (h <= 0 || w <= 0 || !src->rgb || th <= 0 || tw <= 0 || th > (1 << 24) || tw > (1 << 24))
        return G4C_FAIL(err, G4C_E_ARG, "resize: bad sizes %dx%d -> %dx%d (WxH)", w, h, tw, th);
    if (h == th && w == tw) {
        memcpy(dst, src->rgb, (size_t)h * w * 3);
        return G4C_OK;
    }
    axis_weights ah = {0}, av = {0};
    const int need_h = tw != w, need_v = th != h;
    if (need_h) G4C_TRY(axis_init(&ah, w, tw, err));
    if (need_v && axis_init(&av, h, th, err) != G4C_OK) {
        axis_free(&ah);
        return G4C_E_NOMEM;
    }
    g4c_status st = G4C_OK;
    uint8_t *tmp = need_h && need_v ? g4c_malloc((size_t)h * tw, 3, err) : NULL;
    int32_t *acc = need_v ? g4c_malloc((size_t)tw * 3, sizeof(int32_t), err) : NULL;
    if ((need_h && need_v && !tmp) || (need_v && !acc)) {
        st = G4C_E_NOMEM;
    } else if (need_h && need_v) {
        pass_horizontal(tmp, src->rgb, h, w, tw, &ah);
        pass_vertical(dst, tmp, tw, th, &av, acc);
    } else if (need_h) {
        pass_horizontal(dst, src->rgb, h, w, tw, &ah);
    } else {
        pass_vertical(dst, src->rgb, w, th, &av, acc);
    }
    free(tmp);
    free(acc);
    axis_free(&ah);
    axis_free(&av);
    return st;
}

/* ---- rescale + patchify ----------------------------------------------------------------------------------- */

g4c_status g4c_image_patchify(const uint8_t *rgb, int h, int w, int patch, float *patches, int32_t *positions,
                              g4c_err *err) {
    if (patch <= 0 || h <= 0 || w <= 0 || h % patch || w % patch)
        return G4C_FAIL(err, G4C_E_ARG, "patchify: %dx%d (WxH) is not a multiple of the patch size %d", w, h, patch);
    /* torch: uint8 tensor * python float 1/255 -> float32 multiply by (float)(1/255.0) */
    const float scale = (float)(1.0 / 255.0);
    const int gh = h / patch, gw = w / patch;
    const size_t dim = (size_t)patch * patch * 3;
    for (int gy = 0; gy < gh; gy++) {
        for (int gx = 0; gx < gw; gx++) {
            const size_t n = (size_t)gy * gw + gx;
            float *out = patches + n * dim;
            for (int py = 0; py < patch; py++) {
                const uint8_t *row = rgb + ((size_t)(gy * patch + py) * w + (size_t)gx * patch) * 3;
                for (int i = 0; i < patch * 3; i++) *out++ = (float)row[i] * scale;
            }
            if (positions) {
                positions[2 * n] = gx;
                positions[2 * n + 1] = gy;
            }
        }
    }
    return G4C_OK;
}

void g4c_image_patches_free(g4c_image_patches *p) {
    if (!p) return;
    free(p->patches);
    free(p->positions);
    memset(p, 0, sizeof *p);
}

g4c_status g4c_image_preprocess(const g4c_image *img, int budget, g4c_image_patches *out, g4c_err *err) {
    memset(out, 0, sizeof *out);
    if (budget == 0) budget = G4C_IMAGE_DEFAULT_BUDGET;
    if (budget != 70 && budget != 140 && budget != 280 && budget != 560 && budget != 1120)
        return G4C_FAIL(err, G4C_E_ARG, "image budget %d: must be one of 70, 140, 280, 560, 1120 soft tokens", budget);
    int th, tw;
    G4C_TRY(g4c_image_target_size(img->height, img->width, budget, G4C_IMAGE_PATCH, G4C_IMAGE_POOL, &th, &tw, err));
    const uint8_t *px = img->rgb;
    uint8_t *resized = NULL;
    if (th != img->height || tw != img->width) {
        resized = g4c_malloc((size_t)th * tw, 3, err);
        if (!resized) return G4C_E_NOMEM;
        g4c_status st = g4c_image_resize_bicubic_aa(resized, th, tw, img, err);
        if (st != G4C_OK) {
            free(resized);
            return st;
        }
        px = resized;
    }
    g4c_image_patches p = {.src_height = img->height, .src_width = img->width, .height = th, .width = tw,
                           .grid_h = th / G4C_IMAGE_PATCH, .grid_w = tw / G4C_IMAGE_PATCH};
    p.n_patches = p.grid_h * p.grid_w;
    p.n_soft_tokens = p.n_patches / (G4C_IMAGE_POOL * G4C_IMAGE_POOL);
    p.patches = g4c_malloc((size_t)p.n_patches, G4C_IMAGE_PATCH_DIM * sizeof(float), err);
    p.positions = g4c_malloc((size_t)p.n_patches, 2 * sizeof(int32_t), err);
    g4c_status st = (p.patches && p.positions)
                        ? g4c_image_patchify(px, th, tw, G4C_IMAGE_PATCH, p.patches, p.positions, err)
                        : G4C_E_NOMEM;
    free(resized);
    if (st != G4C_OK) {
        g4c_image_patches_free(&p);
        return st;
    }
    *out = p;
    return G4C_OK;
}

g4c_status g4c_image_preprocess_file(const char *path, int budget, g4c_image_patches *out, g4c_err *err) {
    memset(out, 0, sizeof *out);
    g4c_image img;
    G4C_TRY(g4c_image_load(&img, path, 0, err));
    g4c_status st = g4c_image_preprocess(&img, budget, out, err);
    if (st != G4C_OK && err) {
        /* name the file: the preprocessing messages only know sizes */
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        int k = snprintf(err->msg, sizeof err->msg, "%s: ", path);
        if (k > 0 && (size_t)k < sizeof err->msg) snprintf(err->msg + k, sizeof err->msg - (size_t)k, "%.*s",
                                                           (int)(sizeof err->msg - (size_t)k - 1), msg);
    }
    g4c_image_free(&img);
    return st;
}
