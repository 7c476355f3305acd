/* Image decoding: PNG (libpng) and JPEG (libjpeg-turbo) bytes -> 8-bit RGB, matching what the reference
 * preprocessing sees (spec §4.1 step 1): transformers' convert_to_rgb = PIL Image.open(f).convert("RGB").
 *
 * PIL rules reproduced here (Pillow src/libImaging/Convert.c, Unpack.c, Palette.c; PngImagePlugin,
 * JpegImagePlugin, JpegDecode.c):
 *   RGBA, LA          alpha dropped, never composited (rgba2rgb, la2rgb)
 *   L, LA, 1-bit      gray replicated; 1/2/4-bit gray scaled by 255/85/17 (as libpng expands it)
 *   P (palette)       looked up; indices past the PLTE entries are black (Pillow's palette is zero-filled)
 *   16-bit RGB/RGBA/LA  high byte of each sample (raw modes "RGB;16B", "RGBA;16B", "LA;16B")
 *   16-bit gray       mode "I;16": min(value, 255) (I16_RGB), not the high byte
 *   tRNS, gAMA, iCCP, sBIT  ignored (no colour management, no transparency in RGB)
 *   JPEG              libjpeg defaults (JDCT_ISLOW, fancy upsampling), out_color_space RGB / GRAYSCALE /
 *                     CMYK; 4-component files are read as Adobe-inverted CMYK ("CMYK;I", YCCK converted by
 *                     libjpeg) and turned into RGB with cmyk2rgb: nk = 255 - K, out = nk - MULDIV255(C, nk)
 *   EXIF orientation  not applied (convert() does not rotate)
 * Untrusted input (docs/SECURITY.md): the format comes from the signature, never the file name; the pixel count
 * is checked from the header before any pixel buffer exists; libpng/libjpeg errors longjmp back here and become
 * G4C_E_FORMAT; a file that ends early fails (PIL: "image file is truncated"), including a JPEG whose EOI is
 * missing when libjpeg needs bytes past the end (PIL's decoder suspends there and PIL raises), while a PNG
 * missing only its IEND is accepted as PIL accepts it; progressive JPEGs are cut off after G4C_IMAGE_MAX_SCANS scans. Other
 * libjpeg warnings (e.g. extraneous bytes, bad Huffman codes) are ignored like PIL does, and counted in the log. */
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "image/image.h"

void g4c_image_free(g4c_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

static g4c_status check_size(uint64_t w, uint64_t h, uint64_t max_pixels, const char *what, const char *fmt,
                             g4c_err *err) {
    if (w == 0 || h == 0) return G4C_FAIL(err, G4C_E_FORMAT, "%s: %s image has zero size (%llux%llu)", what, fmt,
                                          (unsigned long long)w, (unsigned long long)h);
    if (w > INT_MAX / 4 || h > INT_MAX / 4 || w * h > max_pixels)
        return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: %s image is %llux%llu = %llu pixels, over the limit of %llu",
                        what, fmt, (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
                        (unsigned long long)max_pixels);
    return G4C_OK;
}

/* ---- PNG -------------------------------------------------------------------------------------------------- */

/* Everything the decoder changes after setjmp lives here, outside the frame that calls setjmp. */
typedef struct {
    const uint8_t *data;
    size_t len, pos;
    int truncated;
    char msg[256];
    png_structp png;
    png_infop info;
    uint8_t *raw;   /* palette indices or 16-bit gray samples, when those need PIL's own conversion */
    uint8_t **rows;
    uint8_t *rgb;
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_on_read(png_structp png, png_bytep out, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) {
        c->truncated = 1;
        png_error(png, "file ends early");
    }
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
}

static g4c_status png_decode_inner(png_ctx *c, g4c_image *img, uint64_t max_pixels, const char *what, g4c_err *err) {
    if (setjmp(png_jmpbuf(c->png))) {
        if (c->truncated)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: truncated PNG (the %zu-byte file ends inside the image)", what,
                            c->len);
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: corrupt PNG: %s", what, c->msg);
    }
    png_set_read_fn(c->png, c, png_on_read);
    /* PIL checks the CRC of every chunk it parses; libpng would only warn for ancillary ones. */
    png_set_crc_action(c->png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    /* Our pixel limit replaces libpng's default 1e6-per-side limit (PIL has none). */
    png_set_user_limits(c->png, 0x7fffffffu, 0x7fffffffu);
    png_read_info(c->png, c->info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(c->png, c->info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    G4C_TRY(check_size(w, h, max_pixels, what, "PNG", err));
    const int pal = ctype == PNG_COLOR_TYPE_PALETTE;
    const int gray16 = ctype == PNG_COLOR_TYPE_GRAY && depth == 16;
    if (pal) {
        if (depth < 8) png_set_packing(c->png); /* one index per byte */
    } else if (!gray16) {
        if (depth == 16) png_set_strip_16(c->png); /* the high byte, as PIL's ";16B" raw modes */
        if (depth < 8) png_set_expand_gray_1_2_4_to_8(c->png);
        if (ctype & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(c->png);
        if (!(ctype & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(c->png);
    }
    (void)png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);
    const size_t row = pal ? (size_t)w : gray16 ? 2 * (size_t)w : 3 * (size_t)w;
    if (png_get_rowbytes(c->png, c->info) != row)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: unexpected PNG row size %zu for color type %d, depth %d", what,
                        (size_t)png_get_rowbytes(c->png, c->info), ctype, depth);
    c->rgb = g4c_malloc((size_t)w * h, 3, err);
    c->rows = g4c_malloc(h, sizeof *c->rows, err);
    if (pal || gray16) c->raw = g4c_malloc(h, row, err);
    if (!c->rgb || !c->rows || ((pal || gray16) && !c->raw)) return G4C_E_NOMEM;
    uint8_t *base = (pal || gray16) ? c->raw : c->rgb;
    for (png_uint_32 y = 0; y < h; y++) c->rows[y] = base + (size_t)y * row;
    png_read_image(c->png, c->rows);
    /* No png_read_end: like PIL, accept a file that stops after the image data. */
    const size_t n = (size_t)w * h;
    if (pal) {
        uint8_t lut[256][3] = {{0}};
        png_colorp plte = NULL;
        int n_plte = 0;
        if (png_get_PLTE(c->png, c->info, &plte, &n_plte) != PNG_INFO_PLTE || !plte)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: palette PNG without a PLTE chunk", what);
        for (int i = 0; i < n_plte && i < 256; i++) {
            lut[i][0] = plte[i].red;
            lut[i][1] = plte[i].green;
            lut[i][2] = plte[i].blue;
        }
        for (size_t i = 0; i < n; i++) memcpy(c->rgb + 3 * i, lut[c->raw[i]], 3);
    } else if (gray16) {
        for (size_t i = 0; i < n; i++) {
            const unsigned v = (unsigned)c->raw[2 * i] << 8 | c->raw[2 * i + 1];
            c->rgb[3 * i] = c->rgb[3 * i + 1] = c->rgb[3 * i + 2] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
    img->width = (int)w;
    img->height = (int)h;
    img->rgb = c->rgb;
    c->rgb = NULL;
    return G4C_OK;
}

static g4c_status decode_png(g4c_image *img, const uint8_t *data, size_t len, const char *what, uint64_t max_pixels,
                             g4c_err *err) {
    /* The size limit straight from IHDR (always the first chunk), before libpng parses or allocates anything. */
    if (len >= 24 && !memcmp(data + 12, "IHDR", 4)) {
        const uint32_t w = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
        const uint32_t h = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
        G4C_TRY(check_size(w, h, max_pixels, what, "PNG", err));
    }
    png_ctx c = {.data = data, .len = len};
    c.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_on_error, png_on_warning);
    if (c.png) c.info = png_create_info_struct(c.png);
    g4c_status st = c.info ? png_decode_inner(&c, img, max_pixels, what, err)
                           : G4C_FAIL(err, G4C_E_NOMEM, "%s: cannot create a PNG decoder", what);
    png_destroy_read_struct(c.png ? &c.png : NULL, c.info ? &c.info : NULL, NULL);
    free(c.raw);
    free(c.rows);
    free(c.rgb);
    return st;
}

/* ---- JPEG ------------------------------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to it */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 64];
} jpg_err_mgr;

typedef struct {
    struct jpeg_decompress_struct ci;
    jpg_err_mgr jerr;
    struct jpeg_progress_mgr progress;
    int created;
    uint8_t *line;
    uint8_t *rgb;
} jpg_ctx;

static void jpg_error_exit(j_common_ptr ci) {
    jpg_err_mgr *e = (jpg_err_mgr *)ci->err;
    char buf[JMSG_LENGTH_MAX];
    ci->err->format_message(ci, buf);
    snprintf(e->msg, sizeof e->msg, "corrupt JPEG: %s", buf);
    longjmp(e->jb, 1);
}

static void jpg_emit_message(j_common_ptr ci, int level) {
    jpg_err_mgr *e = (jpg_err_mgr *)ci->err;
    if (level >= 0) return; /* trace messages */
    if (ci->err->msg_code == JWRN_JPEG_EOF) {
        /* jpeg_mem_src ran out of bytes and would pad with a fake EOI: PIL refuses such files */
        snprintf(e->msg, sizeof e->msg, "truncated JPEG (the file ends inside the image data)");
        longjmp(e->jb, 1);
    }
    ci->err->num_warnings++;
}

static void jpg_output_message(j_common_ptr ci) { (void)ci; }

/* Called between chunks of input while decoding: bounds the work a file with many tiny scans can cause. */
static void jpg_progress(j_common_ptr ci) {
    if (!ci->is_decompressor) return;
    const int scans = ((j_decompress_ptr)ci)->input_scan_number;
    if (scans > G4C_IMAGE_MAX_SCANS) {
        jpg_err_mgr *e = (jpg_err_mgr *)ci->err;
        snprintf(e->msg, sizeof e->msg, "JPEG has more than %d scans (limit for progressive files)",
                 G4C_IMAGE_MAX_SCANS);
        longjmp(e->jb, 1);
    }
}

static g4c_status jpg_decode_inner(jpg_ctx *c, g4c_image *img, const uint8_t *data, size_t len, uint64_t max_pixels,
                                   const char *what, g4c_err *err) {
    c->ci.err = jpeg_std_error(&c->jerr.pub);
    c->jerr.pub.error_exit = jpg_error_exit;
    c->jerr.pub.emit_message = jpg_emit_message;
    c->jerr.pub.output_message = jpg_output_message;
    if (setjmp(c->jerr.jb)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: %s", what, c->jerr.msg);
    jpeg_create_decompress(&c->ci);
    c->created = 1;
    c->progress.progress_monitor = jpg_progress;
    c->ci.progress = &c->progress;
    jpeg_mem_src(&c->ci, data, (unsigned long)len);
    (void)jpeg_read_header(&c->ci, TRUE);
    G4C_TRY(check_size(c->ci.image_width, c->ci.image_height, max_pixels, what, "JPEG", err));
    const int nc = c->ci.num_components;
    if (nc == 1) c->ci.out_color_space = JCS_GRAYSCALE;
    else if (nc == 3) c->ci.out_color_space = JCS_RGB;
    else if (nc == 4) c->ci.out_color_space = JCS_CMYK; /* libjpeg turns YCCK into CMYK */
    else return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: JPEG with %d components (1, 3 or 4 supported)", what, nc);
    /* PIL's decoder settings are libjpeg's defaults; spelled out so a changed default can't drift us. */
    c->ci.dct_method = JDCT_ISLOW;
    c->ci.do_fancy_upsampling = TRUE;
    (void)jpeg_start_decompress(&c->ci);
    const size_t w = c->ci.output_width, h = c->ci.output_height, oc = (size_t)c->ci.output_components;
    if (oc != (size_t)nc || w != c->ci.image_width || h != c->ci.image_height)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: JPEG decoder produced %zux%zu x%zu for a %ux%u x%d image", what, w, h,
                        oc, c->ci.image_width, c->ci.image_height, nc);
    c->rgb = g4c_malloc(w * h, 3, err);
    c->line = g4c_malloc(w, oc, err);
    if (!c->rgb || !c->line) return G4C_E_NOMEM;
    while (c->ci.output_scanline < h) {
        const size_t y = c->ci.output_scanline;
        JSAMPROW rowp = c->line;
        if (jpeg_read_scanlines(&c->ci, &rowp, 1) != 1)
            return G4C_FAIL(err, G4C_E_FORMAT, "%s: JPEG decoder stopped at row %zu of %zu", what, y, h);
        uint8_t *out = c->rgb + y * w * 3;
        const uint8_t *in = c->line;
        if (oc == 3) {
            memcpy(out, in, w * 3);
        } else if (oc == 1) {
            for (size_t x = 0; x < w; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x];
        } else {
            for (size_t x = 0; x < w; x++, in += 4, out += 3) {
                /* "CMYK;I" unpack (invert), then cmyk2rgb with MULDIV255(a, b) = ((a*b+128)>>8 + a*b+128) >> 8 */
                const int nk = in[3]; /* 255 - (255 - K) */
                for (int ch = 0; ch < 3; ch++) {
                    const int t = (255 - in[ch]) * nk + 128;
                    const int v = nk - (((t >> 8) + t) >> 8);
                    out[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        }
    }
    /* No jpeg_finish_decompress: nothing after the last row matters (PIL reads no further either). */
    if (c->jerr.pub.num_warnings)
        g4c_log(G4C_LOG_WARN, "%s: JPEG decoded with %ld recoverable data error(s) (PIL ignores them too)", what,
                c->jerr.pub.num_warnings);
    img->width = (int)w;
    img->height = (int)h;
    img->rgb = c->rgb;
    c->rgb = NULL;
    return G4C_OK;
}

static g4c_status decode_jpeg(g4c_image *img, const uint8_t *data, size_t len, const char *what, uint64_t max_pixels,
                              g4c_err *err) {
    if (len > ULONG_MAX) return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: JPEG too large", what);
    jpg_ctx *c = calloc(1, sizeof *c); /* ~1 KB of libjpeg state, off the stack */
    if (!c) return G4C_FAIL(err, G4C_E_NOMEM, "%s: out of memory", what);
    g4c_status st = jpg_decode_inner(c, img, data, len, max_pixels, what, err);
    if (c->created) jpeg_destroy_decompress(&c->ci);
    free(c->line);
    free(c->rgb);
    free(c);
    return st;
}

/* ---- entry points ----------------------------------------------------------------------------------------- */

g4c_status g4c_image_decode(g4c_image *img, const void *bytes, size_t len, const char *what, uint64_t max_pixels,
                            g4c_err *err) {
    memset(img, 0, sizeof *img);
    if (!what) what = "image";
    if (!max_pixels) max_pixels = G4C_IMAGE_MAX_PIXELS;
    const uint8_t *b = bytes;
    if (!b || len == 0) return G4C_FAIL(err, G4C_E_FORMAT, "%s: empty file (0 bytes), not an image", what);
    if (len >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return decode_png(img, b, len, what, max_pixels, err);
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return decode_jpeg(img, b, len, what, max_pixels, err);
    const char *other = NULL;
    if (len >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) other = "GIF";
    else if (len >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) other = "WebP";
    else if (len >= 2 && !memcmp(b, "BM", 2)) other = "BMP";
    else if (len >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) other = "TIFF";
    else if (len >= 12 && !memcmp(b + 4, "ftyp", 4)) other = "HEIF/AVIF";
    if (other) return G4C_FAIL(err, G4C_E_UNSUPPORTED, "%s: %s images are not supported (PNG or JPEG only)", what, other);
    if (len >= 8 && !memcmp(b, "\x89PNG", 4))
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: damaged PNG signature", what);
    return G4C_FAIL(err, G4C_E_FORMAT, "%s: not a PNG or JPEG image (starts with %02x %02x %02x %02x)", what, b[0],
                    len > 1 ? b[1] : 0, len > 2 ? b[2] : 0, len > 3 ? b[3] : 0);
}

g4c_status g4c_image_load(g4c_image *img, const char *path, uint64_t max_pixels, g4c_err *err) {
    memset(img, 0, sizeof *img);
    char *buf = NULL;
    size_t len = 0;
    G4C_TRY(g4c_read_file(path, G4C_IMAGE_MAX_FILE_BYTES, &buf, &len, err));
    g4c_status st = g4c_image_decode(img, buf, len, path, max_pixels, err);
    free(buf);
    return st;
}
