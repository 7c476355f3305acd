/* JSON helpers over cJSON: bounded file reads and typed member getters with messages that name the field. */
#include <math.h>
#include <stdlib.h>

#include "formats/formats.h"

g4c_status g4c_json_parse(cJSON **out, const char *text, size_t len, const char *what, g4c_err *err) {
    *out = NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: invalid JSON near byte %zu", what, off);
    }
    *out = j;
    return G4C_OK;
}

g4c_status g4c_json_read_file(cJSON **out, const char *path, g4c_err *err) {
    char *buf;
    size_t n;
    *out = NULL;
    G4C_TRY(g4c_read_file(path, G4C_JSON_MAX_SIZE, &buf, &n, err));
    g4c_status st = g4c_json_parse(out, buf, n, path, err);
    free(buf);
    return st;
}

g4c_status g4c_json_get_num(const cJSON *obj, const char *key, double *out, int *found, const char *what,
                            g4c_err *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (found) *found = 0;
    if (!it || cJSON_IsNull(it)) return G4C_OK;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: \"%s\" must be a finite number", what, key);
    *out = it->valuedouble;
    if (found) *found = 1;
    return G4C_OK;
}

g4c_status g4c_json_get_int(const cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t *out, int *found,
                            const char *what, g4c_err *err) {
    double v = 0;
    int f = 0;
    G4C_TRY(g4c_json_get_num(obj, key, &v, &f, what, err));
    if (found) *found = f;
    if (!f) return G4C_OK;
    if (v != floor(v) || v < (double)lo || v > (double)hi)
        return G4C_FAIL(err, G4C_E_CONFIG, "%s: \"%s\" = %g must be an integer in [%lld, %lld]", what, key, v,
                        (long long)lo, (long long)hi);
    *out = (int64_t)v;
    return G4C_OK;
}

g4c_status g4c_json_get_bool(const cJSON *obj, const char *key, int *out, int *found, const char *what,
                             g4c_err *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (found) *found = 0;
    if (!it || cJSON_IsNull(it)) return G4C_OK;
    if (!cJSON_IsBool(it)) return G4C_FAIL(err, G4C_E_CONFIG, "%s: \"%s\" must be true or false", what, key);
    *out = cJSON_IsTrue(it);
    if (found) *found = 1;
    return G4C_OK;
}

g4c_status g4c_json_get_str(const cJSON *obj, const char *key, const char **out, const char *what, g4c_err *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!it || cJSON_IsNull(it)) return G4C_OK;
    if (!cJSON_IsString(it)) return G4C_FAIL(err, G4C_E_CONFIG, "%s: \"%s\" must be a string", what, key);
    *out = it->valuestring;
    return G4C_OK;
}
