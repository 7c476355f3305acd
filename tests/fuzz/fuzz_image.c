/* libFuzzer target: file bytes -> g4c_image_decode (PNG/JPEG, 4 MPix limit) -> g4c_image_preprocess at the
 * smallest budget. Every input must either fail with a message and no pixels, or decode to a sane image whose
 * preprocessing succeeds with in-range patches and positions (spec §4.1; docs/SECURITY.md). */
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint64_t limit = (uint64_t)4 << 20;
    g4c_image img;
    g4c_err err = {0};
    if (g4c_image_decode(&img, data, size, "fuzz", limit, &err) != G4C_OK) {
        if (!err.msg[0] || img.rgb || img.width || img.height) __builtin_trap(); /* failures say why, leave nothing */
        return 0;
    }
    if (!img.rgb || img.width <= 0 || img.height <= 0 || (uint64_t)img.width * (uint64_t)img.height > limit)
        __builtin_trap();
    g4c_image_patches p;
    if (g4c_image_preprocess(&img, 70, &p, &err) != G4C_OK) __builtin_trap(); /* any decoded image fits budget 70 */
    if (p.n_patches != p.grid_h * p.grid_w || p.n_soft_tokens * 9 != p.n_patches || p.n_soft_tokens > 70 ||
        p.n_soft_tokens <= 0 || p.width % 48 || p.height % 48)
        __builtin_trap();
    for (size_t i = 0; i < (size_t)p.n_patches * G4C_IMAGE_PATCH_DIM; i++)
        if (!(p.patches[i] >= 0.0f && p.patches[i] <= 1.0f)) __builtin_trap();
    for (int i = 0; i < p.n_patches; i++)
        if (p.positions[2 * i] != i % p.grid_w || p.positions[2 * i + 1] != i / p.grid_w) __builtin_trap();
    g4c_image_patches_free(&p);
    g4c_image_free(&img);
    return 0;
}
