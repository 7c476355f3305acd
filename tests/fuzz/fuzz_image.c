/* libFuzzer target: file bytes -> g4c_image_decode (PNG/JPEG) -> the preprocessing steps at a tiny budget. Every
 * input must either fail with a message and no pixels, or decode to a sane image that resizes and patchifies with
 * in-range patches and positions (spec §4.1; docs/SECURITY.md).
 * Speed: the harness passes a pixel limit of 64 Ki pixels (production: 64 MPix; the limit is an argument of the
 * API, checked from the header before allocation, so a lower one exercises the same code) and a budget of 1 to 4
 * soft tokens (g4c_image_target_size, g4c_image_resize_bicubic_aa and g4c_image_patchify: what
 * g4c_image_preprocess runs, minus its check that the budget is one of the five the model accepts), resizing only
 * images of at most 16 Ki pixels, so one input costs well under a millisecond instead of tens. */
#include <stdlib.h>

#include "image/image.h"

#define LIMIT ((uint64_t)1 << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    g4c_image img;
    g4c_err err = {0};
    if (g4c_image_decode(&img, data, size, "fuzz", LIMIT, &err) != G4C_OK) {
        if (!err.msg[0] || img.rgb || img.width || img.height) __builtin_trap(); /* failures say why, leave nothing */
        return 0;
    }
    if (!img.rgb || img.width <= 0 || img.height <= 0 || (uint64_t)img.width * (uint64_t)img.height > LIMIT)
        __builtin_trap();
    int th = 0, tw = 0;
    /* every decodable image has a size at the model's smallest budget (the check only; resizing there is slow) */
    if (g4c_image_target_size(img.height, img.width, 70, G4C_IMAGE_PATCH, G4C_IMAGE_POOL, &th, &tw, &err) != G4C_OK)
        __builtin_trap();
    const int budget = 1 + (size ? data[size - 1] & 3 : 0), P = G4C_IMAGE_PATCH, K = G4C_IMAGE_POOL;
    /* resizing costs ~ source pixels x taps: images over 16 Ki pixels (most of the time went there) are decoded
     * and sized but not resized */
    if ((uint64_t)img.width * (uint64_t)img.height > ((uint64_t)1 << 14)) {
        g4c_image_free(&img);
        return 0;
    }
    if (g4c_image_target_size(img.height, img.width, budget, P, K, &th, &tw, &err) == G4C_OK) {
        /* HF's rule: sides multiples of patch x pool, patch count within budget x pool^2 */
        if (th <= 0 || tw <= 0 || th % (P * K) || tw % (P * K) || (th / P) * (tw / P) > budget * K * K)
            __builtin_trap();
        uint8_t *rgb = malloc((size_t)th * (size_t)tw * 3);
        const int np = (th / P) * (tw / P);
        float *patches = malloc(sizeof(float) * (size_t)np * G4C_IMAGE_PATCH_DIM);
        int32_t *pos = malloc(sizeof(int32_t) * 2 * (size_t)np);
        if (!rgb || !patches || !pos) __builtin_trap();
        const g4c_status st = g4c_image_resize_bicubic_aa(rgb, th, tw, &img, &err);
        if (st == G4C_OK) {
            if (g4c_image_patchify(rgb, th, tw, P, patches, pos, &err) != G4C_OK) __builtin_trap();
            for (size_t i = 0; i < (size_t)np * G4C_IMAGE_PATCH_DIM; i++)
                if (!(patches[i] >= 0.0f && patches[i] <= 1.0f)) __builtin_trap();
            for (int i = 0; i < np; i++)
                if (pos[2 * i] != i % (tw / P) || pos[2 * i + 1] != i / (tw / P)) __builtin_trap();
        } else if (st != G4C_E_UNSUPPORTED || !err.msg[0]) {
            __builtin_trap(); /* only slivers past G4C_IMAGE_MAX_RESIZE_WORK are refused */
        }
        free(rgb);
        free(patches);
        free(pos);
    } else if (!err.msg[0]) {
        __builtin_trap();
    }
    g4c_image_free(&img);
    return 0;
}
