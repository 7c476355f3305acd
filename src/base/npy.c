/* NumPy .npy v1.0 files: float32 little-endian C order (written and read) and uint8 (read, as float values):
 * the formats of the reference arrays under tests/fixtures/ and of `gemma4c logits --out`. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"

g4c_status g4c_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, g4c_err *err) {
    if (ndim < 0 || ndim > 4) return G4C_FAIL(err, G4C_E_ARG, "npy: ndim %d out of range", ndim);
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%" PRId64 "%s", shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        count *= (size_t)shape[i];
    }
    len += snprintf(dict + len, sizeof dict - (size_t)len, "), }");
    /* magic(6) + version(2) + header_len(2) + dict + padding + '\n' must be a multiple of 64 */
    size_t total = 10 + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    uint16_t hlen = (uint16_t)(len + pad + 1);
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) return G4C_FAIL(err, G4C_E_ARG, "npy: path too long: %s", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return G4C_FAIL(err, G4C_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    int ok = fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8;
    unsigned char hl[2] = {(unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    ok = ok && fwrite(hl, 1, 2, f) == 2 && fwrite(dict, 1, (size_t)len, f) == (size_t)len;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(data, sizeof(float), count, f) == count;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return G4C_FAIL(err, G4C_E_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return G4C_OK;
}

g4c_status g4c_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[4], g4c_err *err) {
    *data = NULL;
    char *buf;
    size_t n;
    G4C_TRY(g4c_read_file(path, (size_t)1 << 34, &buf, &n, err));
    g4c_status st = G4C_E_FORMAT;
    if (n < 10 || memcmp(buf, "\x93NUMPY\x01\x00", 8) != 0) {
        G4C_FAIL(err, st, "%s: not an npy v1.0 file", path);
        goto done;
    }
    size_t hlen = (unsigned char)buf[8] | ((size_t)(unsigned char)buf[9] << 8);
    if (10 + hlen > n) { G4C_FAIL(err, st, "%s: header runs past the end", path); goto done; }
    char *hdr = buf + 10;
    char save = hdr[hlen];
    hdr[hlen] = 0;
    const int is_u8 = strstr(hdr, "'descr': '|u1'") != NULL;
    if ((!is_u8 && !strstr(hdr, "'descr': '<f4'")) || !strstr(hdr, "'fortran_order': False")) {
        G4C_FAIL(err, st, "%s: only little-endian float32 or uint8 C-order arrays are supported", path);
        goto done;
    }
    char *p = strstr(hdr, "'shape': (");
    if (!p) { G4C_FAIL(err, st, "%s: no shape", path); goto done; }
    p += 10;
    int nd = 0;
    size_t count = 1;
    while (*p && *p != ')') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || nd == 4) { G4C_FAIL(err, st, "%s: bad shape", path); goto done; }
        shape[nd++] = v;
        count *= (size_t)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    hdr[hlen] = save;
    if (n - 10 - hlen != count * (is_u8 ? 1 : 4)) {
        G4C_FAIL(err, st, "%s: data size does not match the shape", path);
        goto done;
    }
    *data = g4c_malloc(count ? count : 1, 4, err);
    if (!*data) { st = G4C_E_NOMEM; goto done; }
    if (is_u8)
        for (size_t i = 0; i < count; i++) (*data)[i] = (unsigned char)buf[10 + hlen + i];
    else
        memcpy(*data, buf + 10 + hlen, count * 4);
    *ndim = nd;
    st = G4C_OK;
done:
    free(buf);
    return st;
}
