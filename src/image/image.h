/* image: bytes of a JPEG/PNG file -> RGB pixels -> the model's pixel patches (spec §4.1).
 *
 * The reference is transformers 5.17's Gemma4ImageProcessor with its torchvision backend:
 *   PIL Image.open + convert("RGB")            -> g4c_image_load / g4c_image_decode   (decode.c)
 *   get_aspect_ratio_preserving_size            -> g4c_image_target_size               (preprocess.c)
 *   torchvision resize(uint8, BICUBIC, antialias=True) = torch's uint8 _upsample_bicubic2d_aa
 *                                               -> g4c_image_resize_bicubic_aa
 *   rescale x * (1/255), convert_image_to_patches, position ids -> g4c_image_patchify
 * Every step is bit-exact with the reference on tests/fixtures/images (tests/unit/test_image.c).
 *
 * Untrusted input: the format is detected from the first bytes (never the file name), the pixel count is checked
 * against max_pixels from the header before any pixel buffer is allocated, libpng/libjpeg errors come back as
 * G4C_E_FORMAT (never exit), truncated files fail, and progressive JPEGs are limited to G4C_IMAGE_MAX_SCANS scans. */
#ifndef G4C_IMAGE_IMAGE_H
#define G4C_IMAGE_IMAGE_H

#include "base/base.h"

/* Decoding limits. max_pixels = 0 in the calls below means G4C_IMAGE_MAX_PIXELS. */
#define G4C_IMAGE_MAX_PIXELS ((uint64_t)64 << 20)      /* 64 MPix (PIL warns at 89 MPix) */
#define G4C_IMAGE_MAX_FILE_BYTES ((size_t)256 << 20)   /* g4c_image_load refuses larger files */
#define G4C_IMAGE_MAX_SCANS 100                        /* progressive JPEG scans (typical files have ~10) */
#define G4C_IMAGE_MAX_RESIZE_WORK ((uint64_t)1 << 26)  /* rows x target width, taps per axis: slivers only */

/* Processor constants (HF Gemma4ImageProcessor defaults). */
#define G4C_IMAGE_PATCH 16
#define G4C_IMAGE_POOL 3
#define G4C_IMAGE_PATCH_DIM (G4C_IMAGE_PATCH * G4C_IMAGE_PATCH * 3) /* 768 */
#define G4C_IMAGE_DEFAULT_BUDGET 280

/* An 8-bit RGB image, rows top to bottom, pixels interleaved: rgb[(y * width + x) * 3 + c]. */
typedef struct {
    int width, height;
    uint8_t *rgb;
} g4c_image;

/* Decode PNG or JPEG bytes (detected by their signature) into RGB exactly as PIL's Image.open(...).convert("RGB"):
 * alpha is dropped (not composited), palettes are looked up (indices past the palette give gray i,i,i as in PIL),
 * gray and gray+alpha are replicated, 16-bit channels keep their high byte except 16-bit gray, which is clipped
 * to 255 (PIL "I;16" -> RGB), CMYK/YCCK JPEGs use Adobe-inverted CMYK and PIL's CMYK->RGB formula, EXIF
 * orientation is ignored (PIL does not apply it). `what` names the source in error messages. On failure *img is
 * zeroed. */
g4c_status g4c_image_decode(g4c_image *img, const void *bytes, size_t len, const char *what, uint64_t max_pixels,
                            g4c_err *err);
/* Read the file at path (at most G4C_IMAGE_MAX_FILE_BYTES) and decode it; errors name the path. */
g4c_status g4c_image_load(g4c_image *img, const char *path, uint64_t max_pixels, g4c_err *err);
void g4c_image_free(g4c_image *img);

/* The resize target for an h x w image (HF get_aspect_ratio_preserving_size): the largest size with sides
 * multiples of patch * pool whose patch count fits budget * pool^2, aspect preserved. Fails (G4C_E_ARG) where the
 * reference raises: both sides round to 0, or the result exceeds the patch budget. budget is not restricted to
 * {70, 140, 280, 560, 1120} here; g4c_image_preprocess checks that. */
g4c_status g4c_image_target_size(int h, int w, int budget, int patch, int pool, int *th, int *tw, g4c_err *err);

/* Antialiased bicubic resize of src to dst [th][tw][3], bit-exact with torch's uint8 _upsample_bicubic2d_aa
 * (Keys cubic a = -0.5, support scaled by the downscale factor, int16 weights at a per-pass precision,
 * horizontal pass rounded to uint8, then vertical). A pass whose size does not change is skipped; equal sizes
 * copy. Memory stays near the output size (the passes stream through a ring of rows). Fails for bad sizes, when
 * memory runs out, or (G4C_E_UNSUPPORTED) for slivers whose source height x target width, or whose filter taps
 * on one axis, exceed G4C_IMAGE_MAX_RESIZE_WORK: e.g. 1 x 2,000,000 or 20,000,000 x 2 pixels (torch widens every
 * row first and tabulates every tap: seconds to minutes). The worst accepted inputs take a few seconds. */
g4c_status g4c_image_resize_bicubic_aa(uint8_t *dst, int th, int tw, const g4c_image *src, g4c_err *err);

/* Split an h x w RGB image (h, w multiples of patch) into patches [n][patch * patch * 3], element order
 * (row-in-patch, col-in-patch, channel), values u8 * (1/255) in float32 as torch computes them; patches row-major
 * over the (h/patch, w/patch) grid; positions [n][2] = (x = column, y = row) of each patch. */
g4c_status g4c_image_patchify(const uint8_t *rgb, int h, int w, int patch, float *patches, int32_t *positions,
                              g4c_err *err);

/* The model's input for one image. */
typedef struct {
    int src_height, src_width; /* decoded size */
    int height, width;         /* resized size (multiples of 48) */
    int grid_h, grid_w;        /* patch grid: height / 16, width / 16 */
    int n_patches;             /* grid_h * grid_w */
    int n_soft_tokens;         /* n_patches / 9: the <|image|> tokens this image takes */
    float *patches;            /* [n_patches][768] */
    int32_t *positions;        /* [n_patches][2]: (x, y) */
} g4c_image_patches;

/* Resize (skipped when the size already matches) + rescale + patchify. budget is the soft-token budget, one of
 * 70, 140, 280, 560, 1120 (0 = G4C_IMAGE_DEFAULT_BUDGET). On failure *out is zeroed. */
g4c_status g4c_image_preprocess(const g4c_image *img, int budget, g4c_image_patches *out, g4c_err *err);
/* g4c_image_load with the default pixel limit, then g4c_image_preprocess. */
g4c_status g4c_image_preprocess_file(const char *path, int budget, g4c_image_patches *out, g4c_err *err);
void g4c_image_patches_free(g4c_image_patches *p);

#endif
