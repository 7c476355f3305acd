/* Whole-file reads, path joining and a monotonic clock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "base/base.h"

g4c_status g4c_read_file(const char *path, size_t max_size, char **out, size_t *out_len, g4c_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return G4C_FAIL(err, G4C_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return G4C_FAIL(err, G4C_E_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_size) {
        fclose(f);
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: %lld bytes is larger than the %zu-byte limit", path,
                        (long long)st.st_size, max_size);
    }
    size_t n = (size_t)st.st_size;
    char *buf = g4c_malloc(n + 1, 1, err);
    if (!buf) { fclose(f); return G4C_E_NOMEM; }
    if (fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return G4C_FAIL(err, G4C_E_IO, "%s: short read", path);
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    if (out_len) *out_len = n;
    return G4C_OK;
}

g4c_status g4c_path_join(char *buf, size_t size, const char *dir, const char *name, g4c_err *err) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) return G4C_FAIL(err, G4C_E_ARG, "path too long: %s/%s", dir, name);
    return G4C_OK;
}

double g4c_time_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
