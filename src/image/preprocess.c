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

/* Memory and time stay bounded for any image the decoder accepts: the horizontal weights are tabulated only when
 * the table is small (else recomputed per output column), the vertical weights are computed per output row, and
 * the horizontal pass streams into a ring of as many rows as one vertical tap window spans instead of a whole
 * intermediate image. The integer sums are the same either way. */
#define WEIGHT_TABLE_MAX ((size_t)1 << 22) /* int16 entries (8 MB) */

typedef struct {
    int in, out, ksize;
    double scale, support, invscale;
    unsigned prec;    /* fixed-point bits of the int16 weights */
    double *dw;       /* [ksize] scratch */
    int16_t *qw;      /* [ksize] scratch */
    int16_t *table;   /* [out][ksize], or NULL: computed on demand */
    int *tmin, *tsize;
} axis;

static void axis_free(axis *a) {
    free(a->dw);
    free(a->qw);
    free(a->table);
    free(a->tmin);
    free(a->tsize);
    memset(a, 0, sizeof *a);
}

/* HelperInterpCubic::aa_filter<double, use_keys_cubic=true> with cubic_convolution1/2 from UpSample.h. */
static double cubic_aa(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0.0;
}

/* HelperInterpBase::_compute_indices_min_size_weights_aa: output i's window and normalised double weights.
 * Returns the largest weight (0 when the weights sum to 0 and are left unnormalised, as torch does). */
static double axis_weights_f64(const axis *a, int i, double *k, int *xmin_out, int *xsize_out) {
    const double center = a->scale * (i + 0.5);
    int64_t xmin = (int64_t)(center - a->support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = (int64_t)(center + a->support + 0.5);
    if (xmax > a->in) xmax = a->in;
    int64_t xsize = xmax - xmin;
    if (xsize < 0) xsize = 0;
    if (xsize > a->ksize) xsize = a->ksize;
    double total = 0.0, wmax = 0.0;
    for (int64_t j = 0; j < xsize; j++) {
        k[j] = cubic_aa(((double)(j + xmin) - center + 0.5) * a->invscale);
        total += k[j];
    }
    if (total != 0.0)
        for (int64_t j = 0; j < xsize; j++) {
            k[j] /= total;
            if (k[j] > wmax) wmax = k[j];
        }
    *xmin_out = (int)xmin;
    *xsize_out = (int)xsize;
    return wmax;
}

/* _compute_index_ranges_int16_weights: (int)(w * 2^prec +- 0.5) */
static void quantize(const double *k, int n, unsigned prec, int16_t *q) {
    for (int j = 0; j < n; j++) {
        const double v = k[j] * (1 << prec);
        q[j] = (int16_t)(v < 0 ? (int)(-0.5 + v) : (int)(0.5 + v));
    }
}

/* Weights per output for in -> out: ceil(support) * 2 + 1. */
static int axis_ksize(int in, int out) {
    const double scale = (double)in / out;
    return (int)ceil(scale >= 1.0 ? 2.0 * scale : 2.0) * 2 + 1;
}

/* Geometry and precision for in -> out (antialias = true, align_corners = false, no scale override). */
static g4c_status axis_init(axis *a, int in, int out, int tabulate, g4c_err *err) {
    memset(a, 0, sizeof *a);
    a->in = in;
    a->out = out;
    a->scale = (double)in / out;
    a->support = a->scale >= 1.0 ? 2.0 * a->scale : 2.0; /* (interp_size * 0.5) * scale, interp_size = 4 */
    a->invscale = a->scale >= 1.0 ? 1.0 / a->scale : 1.0;
    a->ksize = axis_ksize(in, out);
    a->dw = g4c_malloc((size_t)a->ksize, sizeof(double), err);
    a->qw = g4c_malloc((size_t)a->ksize, sizeof(int16_t), err);
    if (!a->dw || !a->qw) {
        axis_free(a);
        return G4C_E_NOMEM;
    }
    /* the precision depends on the largest weight of the whole axis: a first pass finds it */
    double wt_max = 0.0;
    for (int i = 0; i < out; i++) {
        int xmin, xsize;
        const double m = axis_weights_f64(a, i, a->dw, &xmin, &xsize);
        if (m > wt_max) wt_max = m;
    }
    unsigned p;
    for (p = 0; p < 22; p++) {
        const int next = (int)(0.5 + wt_max * (1 << (p + 1)));
        if (next >= (1 << 15)) break;
    }
    a->prec = p;
    if (tabulate && (size_t)out * (size_t)a->ksize <= WEIGHT_TABLE_MAX) {
        a->table = g4c_malloc((size_t)out, (size_t)a->ksize * sizeof(int16_t), err);
        a->tmin = g4c_malloc((size_t)out, sizeof(int), err);
        a->tsize = g4c_malloc((size_t)out, sizeof(int), err);
        if (!a->table || !a->tmin || !a->tsize) {
            axis_free(a);
            return G4C_E_NOMEM;
        }
        for (int i = 0; i < out; i++) {
            (void)axis_weights_f64(a, i, a->dw, &a->tmin[i], &a->tsize[i]);
            quantize(a->dw, a->tsize[i], a->prec, a->table + (size_t)i * a->ksize);
        }
    }
    return G4C_OK;
}

/* Output i's int16 weights (from the table, or computed into a->qw). */
static const int16_t *axis_row(axis *a, int i, int *xmin, int *xsize) {
    if (a->table) {
        *xmin = a->tmin[i];
        *xsize = a->tsize[i];
        return a->table + (size_t)i * a->ksize;
    }
    (void)axis_weights_f64(a, i, a->dw, xmin, xsize);
    quantize(a->dw, *xsize, a->prec, a->qw);
    return a->qw;
}

/* prec >= 1 whenever some weight is non-zero; an all-zero axis gives 0 everywhere either way */
#define ROUND_OFFSET(prec) ((prec) ? (int32_t)1 << ((prec) - 1) : 0)

static inline uint8_t fixed_to_u8(int32_t s, unsigned prec) {
    if (s < 0) return 0; /* (s >> prec) would be negative: clamps to 0 */
    s >>= prec;
    return (uint8_t)(s > 255 ? 255 : s);
}

/* Row r of an image stored whole (ring = 0) or in a ring of `ring` rows. */
static inline uint8_t *row_at(uint8_t *base, int ring, int r, size_t stride) {
    return base + (size_t)(ring ? r % ring : r) * stride;
}

/* One output pixel of the horizontal pass: xsize taps from p (interleaved RGB). */
static inline void h_pixel(uint8_t *o, const uint8_t *p, const int16_t *k, int xsize, unsigned prec) {
    const int32_t round = ROUND_OFFSET(prec);
    int32_t s0 = round, s1 = round, s2 = round;
    for (int j = 0; j < xsize; j++, p += 3) {
        s0 += k[j] * p[0];
        s1 += k[j] * p[1];
        s2 += k[j] * p[2];
    }
    o[0] = fixed_to_u8(s0, prec);
    o[1] = fixed_to_u8(s1, prec);
    o[2] = fixed_to_u8(s2, prec);
}

/* Horizontal pass over source rows [r0, r1): [w][3] -> [a->out][3] each, written to row_at(dst, ring, r).
 * Row by row with tabulated weights; column by column (each weight row computed once per call) without. */
static void pass_horizontal(uint8_t *dst, int ring, const uint8_t *src, int w, int r0, int r1, axis *a) {
    const size_t in_stride = (size_t)w * 3, out_stride = (size_t)a->out * 3;
    int xmin, xsize;
    if (a->table) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *in = src + (size_t)r * in_stride;
            uint8_t *o = row_at(dst, ring, r, out_stride);
            for (int x = 0; x < a->out; x++) {
                const int16_t *k = axis_row(a, x, &xmin, &xsize);
                h_pixel(o + 3 * (size_t)x, in + (size_t)xmin * 3, k, xsize, a->prec);
            }
        }
        return;
    }
    for (int x = 0; x < a->out; x++) {
        const int16_t *k = axis_row(a, x, &xmin, &xsize);
        for (int r = r0; r < r1; r++)
            h_pixel(row_at(dst, ring, r, out_stride) + 3 * (size_t)x, src + (size_t)r * in_stride + (size_t)xmin * 3,
                    k, xsize, a->prec);
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
    const int need_h = tw != w, need_v = th != h;
    /* torch widens every source row before the vertical pass: a sliver (e.g. 1 x 60M) would mean billions of
     * intermediate pixels, so that work is capped (no real photo comes near it). */
    if (need_h && need_v && (uint64_t)h * (uint64_t)tw > G4C_IMAGE_MAX_RESIZE_WORK)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED,
                        "resize: %dx%d (WxH) is too elongated to resize to %dx%d (%llu intermediate pixels, limit "
                        "%llu)", w, h, tw, th, (unsigned long long)h * (unsigned long long)tw,
                        (unsigned long long)G4C_IMAGE_MAX_RESIZE_WORK);
    /* likewise the filter taps of one axis (about 4 x its source length when shrinking a lot) */
    const uint64_t taps_h = need_h ? (uint64_t)tw * axis_ksize(w, tw) : 0, taps_v = need_v ? (uint64_t)th * axis_ksize(h, th) : 0;
    if (taps_h > G4C_IMAGE_MAX_RESIZE_WORK || taps_v > G4C_IMAGE_MAX_RESIZE_WORK)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "resize: %dx%d (WxH) is too elongated to resize to %dx%d (%llu filter "
                        "taps, limit %llu)", w, h, tw, th, (unsigned long long)(taps_h > taps_v ? taps_h : taps_v),
                        (unsigned long long)G4C_IMAGE_MAX_RESIZE_WORK);
    axis ah = {0}, av = {0};
    g4c_status st = G4C_OK;
    uint8_t *ring = NULL;
    int32_t *acc = NULL;
    if (need_h && (st = axis_init(&ah, w, tw, 1, err)) != G4C_OK) goto done;
    if (!need_v) {
        pass_horizontal(dst, 0, src->rgb, w, 0, h, &ah);
        goto done;
    }
    if ((st = axis_init(&av, h, th, 0, err)) != G4C_OK) goto done;
    const size_t stride = (size_t)tw * 3;
    /* Ring of widened rows: every tap window fits (ysize <= ksize). Without a weight table (w above ~1M, so at most
     * 64 rows) all rows are widened at once instead, so each weight row is computed once. */
    const int n_ring = ah.table || !need_h ? av.ksize : h;
    acc = g4c_malloc(stride, sizeof(int32_t), err);
    if (need_h) ring = g4c_malloc((size_t)n_ring, stride, err);
    if (!acc || (need_h && !ring)) {
        st = G4C_E_NOMEM;
        goto done;
    }
    const int32_t round = ROUND_OFFSET(av.prec);
    int next = 0; /* source rows below this have been widened (the window start never decreases) */
    if (need_h && !ah.table) {
        pass_horizontal(ring, n_ring, src->rgb, w, 0, h, &ah);
        next = h;
    }
    for (int y = 0; y < th; y++) {
        int ymin, ysize;
        const int16_t *k = axis_row(&av, y, &ymin, &ysize);
        if (need_h) {
            if (next < ymin) next = ymin;
            if (next < ymin + ysize) {
                pass_horizontal(ring, n_ring, src->rgb, w, next, ymin + ysize, &ah);
                next = ymin + ysize;
            }
        }
        for (size_t i = 0; i < stride; i++) acc[i] = round;
        for (int j = 0; j < ysize; j++) {
            const int32_t kj = k[j];
            const uint8_t *row = need_h ? row_at(ring, n_ring, ymin + j, stride) : src->rgb + (size_t)(ymin + j) * stride;
            for (size_t i = 0; i < stride; i++) acc[i] += kj * row[i];
        }
        uint8_t *o = dst + (size_t)y * stride;
        for (size_t i = 0; i < stride; i++) o[i] = fixed_to_u8(acc[i], av.prec);
    }
done:
    free(ring);
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
