/* The polygon answer of `gemma4c segment`: {"polygon": [[x, y], ...], "label": "..."} in [0, 1000], parsed the
 * way eval parses boxes (code fences stripped, the first JSON value found) and forgiving about the shape:
 *   keys polygon / segmentation / points / vertices / coordinates; wrappers objects / polygons / results /
 *   segments / masks; a bare array of points; points [x, y] or {"x": .., "y": ..}; flat [x0, y0, x1, y1, ...];
 *   COCO-style nested [[x0, y0, ...], ...]; several objects -> several polygons.
 * Coordinates whose largest value is <= 1 are taken as fractions of the image (a common variant). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

#define MAX_POLYGONS 64
#define MAX_POINTS 4096

char *rp_segment_prompt(const char *object) {
    const char *o = object && *object ? object : "the main object";
    const char *fmt =
        "Segment %s in this image. Return ONLY a JSON object \xe2\x80\x94 no explanation, no markdown:\n"
        "{\"polygon\": [[x1, y1], [x2, y2], ...], \"label\": \"<what it is>\"}\n"
        "The polygon traces the outline of %s with 8 to 32 points in order.\n"
        "Coordinates are integers in [0, 1000] (normalized to image size), x first.";
    size_t n = strlen(fmt) + 2 * strlen(o) + 1;
    char *p = malloc(n);
    if (p) snprintf(p, n, fmt, o, o);
    return p;
}

void rp_polygons_free(rp_polygon *p, int n) {
    for (int i = 0; p && i < n; i++) {
        free(p[i].xy);
        free(p[i].label);
    }
    free(p);
}

typedef struct {
    rp_polygon *p;
    int n;
    int oom;
    int short_polys; /* polygons dropped for fewer than 3 points */
    int found_key;   /* a polygon-ish key or a point list was seen */
} acc;

static const char *const poly_keys[] = {"polygon", "segmentation", "points", "vertices", "coordinates", "polygons",
                                        "outline", "contour"};
static const char *const label_keys[] = {"label", "class", "name", "object", "category"};
static const char *const wrap_keys[] = {"objects", "results", "segments", "masks", "detections", "items"};

static int is_num(const cJSON *v) { return cJSON_IsNumber(v) && isfinite(v->valuedouble); }

/* a point: [x, y] or {"x": .., "y": ..} */
static int point(const cJSON *v, double *x, double *y) {
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && is_num(cJSON_GetArrayItem(v, 0)) &&
        is_num(cJSON_GetArrayItem(v, 1))) {
        *x = cJSON_GetArrayItem(v, 0)->valuedouble, *y = cJSON_GetArrayItem(v, 1)->valuedouble;
        return 1;
    }
    if (cJSON_IsObject(v)) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, "x"), *b = cJSON_GetObjectItemCaseSensitive(v, "y");
        if (is_num(a) && is_num(b)) { *x = a->valuedouble, *y = b->valuedouble; return 1; }
    }
    return 0;
}

/* 1 when v is a list of points or a flat list of numbers */
static int is_point_list(const cJSON *v) {
    if (!cJSON_IsArray(v) || !v->child) return 0;
    double x, y;
    if (point(v->child, &x, &y)) return 1;
    const int n = cJSON_GetArraySize(v);
    if (n < 2 || n % 2) return 0;
    for (const cJSON *e = v->child; e; e = e->next)
        if (!is_num(e)) return 0;
    return 1;
}

static void add_polygon(acc *a, const cJSON *list, const char *label) {
    a->found_key = 1;
    if (a->n >= MAX_POLYGONS || a->oom) return;
    double *xy = malloc(sizeof(double) * 2 * MAX_POINTS);
    if (!xy) { a->oom = 1; return; }
    int n = 0;
    double x, y;
    if (point(list->child, &x, &y)) {
        for (const cJSON *e = list->child; e && n < MAX_POINTS; e = e->next)
            if (point(e, &x, &y)) xy[2 * n] = x, xy[2 * n + 1] = y, n++;
    } else {
        for (const cJSON *e = list->child; e && e->next && n < MAX_POINTS; e = e->next->next)
            xy[2 * n] = e->valuedouble, xy[2 * n + 1] = e->next->valuedouble, n++;
    }
    if (n < 3) {
        a->short_polys++;
        free(xy);
        return;
    }
    rp_polygon *g = realloc(a->p, sizeof *g * (size_t)(a->n + 1));
    if (!g) { free(xy); a->oom = 1; return; }
    a->p = g;
    double *fit = realloc(xy, sizeof(double) * 2 * (size_t)n);
    a->p[a->n].xy = fit ? fit : xy;
    a->p[a->n].n = n;
    a->p[a->n].label = label ? strdup(label) : NULL;
    a->n++;
}

static void walk(acc *a, const cJSON *v, const char *label, int depth);

/* a polygon value: a point list, or a list of point lists (COCO segmentation) */
static void polygon_value(acc *a, const cJSON *v, const char *label, int depth) {
    if (is_point_list(v)) { add_polygon(a, v, label); return; }
    if (cJSON_IsArray(v) && depth < 6)
        for (const cJSON *e = v->child; e; e = e->next) {
            if (is_point_list(e)) add_polygon(a, e, label);
            else walk(a, e, label, depth + 1);
        }
    else if (cJSON_IsObject(v)) walk(a, v, label, depth + 1);
}

static void walk(acc *a, const cJSON *v, const char *label, int depth) {
    if (depth > 8 || a->oom) return;
    if (cJSON_IsArray(v)) {
        if (is_point_list(v)) { add_polygon(a, v, label); return; }
        for (const cJSON *e = v->child; e; e = e->next) walk(a, e, label, depth + 1);
        return;
    }
    if (!cJSON_IsObject(v)) return;
    const char *lab = label;
    for (size_t k = 0; k < sizeof label_keys / sizeof *label_keys; k++) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(v, label_keys[k]);
        if (cJSON_IsString(l) && *l->valuestring) { lab = l->valuestring; break; }
    }
    int any = 0;
    for (size_t k = 0; k < sizeof poly_keys / sizeof *poly_keys && !any; k++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, poly_keys[k]);
        if (p) { polygon_value(a, p, lab, depth + 1); any = 1; }
    }
    for (size_t k = 0; k < sizeof wrap_keys / sizeof *wrap_keys && !any; k++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, wrap_keys[k]);
        if (p) { walk(a, p, NULL, depth + 1); any = 1; }
    }
}

/* the text between the first code fence and the next one (the language tag skipped), else all of it */
static char *unfence(const char *s) {
    const char *f = strstr(s, "```");
    if (!f) return strdup(s);
    const char *b = f + 3;
    while (*b && *b != '\n' && *b != '{' && *b != '[') b++; /* ```json */
    const char *e = strstr(b, "```");
    size_t n = e ? (size_t)(e - b) : strlen(b);
    char *o = malloc(n + 1);
    if (o) memcpy(o, b, n), o[n] = 0;
    return o;
}

/* the first JSON object or array that parses, trying each '{' / '[' in turn, then spans to the last closer */
static cJSON *first_json(const char *s) {
    int tries = 0;
    for (const char *p = s; *p && tries < 64; p++) {
        if (*p != '{' && *p != '[') continue;
        tries++;
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithOpts(p, &end, 0);
        if (j) return j;
        const char *close = strrchr(p, *p == '{' ? '}' : ']');
        if (close) {
            j = cJSON_ParseWithLength(p, (size_t)(close - p + 1));
            if (j) return j;
        }
    }
    return NULL;
}

int rp_parse_polygons(const char *response, int w, int h, rp_polygon **out, char *why, size_t why_size) {
    *out = NULL;
    if (why && why_size) why[0] = 0;
    char *text = unfence(response ? response : "");
    if (!text) return -1;
    cJSON *j = first_json(text);
    free(text);
    if (!j) {
        if (why) snprintf(why, why_size, "no JSON object or array in the answer");
        return 0;
    }
    acc a = {0};
    walk(&a, j, NULL, 0);
    cJSON_Delete(j);
    if (a.oom) { rp_polygons_free(a.p, a.n); return -1; }
    if (!a.n) {
        if (why)
            snprintf(why, why_size, a.short_polys ? "the polygon has fewer than 3 points"
                     : a.found_key ? "the polygon holds no [x, y] points"
                                   : "the JSON has no polygon (keys polygon, segmentation, points)");
        free(a.p);
        return 0;
    }
    /* coordinates: [0, 1000], or fractions when none exceeds 1 */
    double mx = 0;
    for (int k = 0; k < a.n; k++)
        for (int i = 0; i < 2 * a.p[k].n; i++)
            if (fabs(a.p[k].xy[i]) > mx) mx = fabs(a.p[k].xy[i]);
    const double unit = mx <= 1.0 ? 1.0 : 1000.0;
    for (int k = 0; k < a.n; k++)
        for (int i = 0; i < a.p[k].n; i++) {
            double x = a.p[k].xy[2 * i] / unit * w, y = a.p[k].xy[2 * i + 1] / unit * h;
            a.p[k].xy[2 * i] = x < 0 ? 0 : x > w ? w : x;
            a.p[k].xy[2 * i + 1] = y < 0 ? 0 : y > h ? h : y;
        }
    *out = a.p;
    return a.n;
}
