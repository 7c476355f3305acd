/* RUN folders read into memory for gemma4c report:
 *   gemma4c perf           RUN/perf.json (tests[], hardware, model, framework, version)
 *   gemma4c eval / score   RUN/metrics.json ("task": vqa | coco), RUN/samples.jsonl (per-sample records),
 *                          RUN/run.json (eval only: backend) — docs/EVAL.md
 * A folder that holds neither is searched one level down (runs/e2b/{perf,vqa,coco} -> three runs labelled e2b). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report.h"

#define MAX_JSON ((size_t)1 << 30)

double rp_jnum(const void *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive((const cJSON *)obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

const char *rp_jstr(const void *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive((const cJSON *)obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }
static int num0(const cJSON *o, const char *k) {
    const double v = rp_jnum(o, k);
    return isnan(v) ? 0 : (int)v;
}

static int has_file(const char *dir, const char *name) {
    char p[4200];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p) return 0;
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static g4c_status read_json(const char *dir, const char *name, cJSON **out, int required, g4c_err *err) {
    char p[4200];
    *out = NULL;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (!required && access(p, F_OK) != 0) return G4C_OK;
    char *buf = NULL;
    size_t n = 0;
    G4C_TRY(g4c_read_file(p, MAX_JSON, &buf, &n, err));
    *out = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!*out) return G4C_FAIL(err, G4C_E_FORMAT, "%s is not valid JSON", p);
    return G4C_OK;
}

static const char *base_name(const char *p, char *out, size_t n) {
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/') len--;
    size_t s = len;
    while (s > 0 && p[s - 1] != '/') s--;
    snprintf(out, n, "%.*s", (int)(len - s), p + s);
    return out;
}

/* the system a run belongs to, from what it records */
static char *derive_label(const rp_run *r) {
    char b[512];
    if (r->kind == RP_RUN_PERF) {
        const char *l = rp_jstr(r->json, "label");
        if (l && *l) return strdup(l);
        const char *m = rp_jstr(r->json, "model");
        if (m && *m) return strdup(base_name(m, b, sizeof b));
    }
    const char *be = r->run_json ? rp_jstr(r->run_json, "backend") : NULL;
    if (be && !strncmp(be, "model ", 6)) { /* "model PATH budget N" */
        char path[4096];
        snprintf(path, sizeof path, "%s", be + 6);
        char *sp = strstr(path, " budget ");
        if (sp) *sp = 0;
        return strdup(base_name(path, b, sizeof b));
    }
    if (be && !strncmp(be, "endpoint ", 9)) { /* "endpoint URL model NAME" */
        const char *m = strstr(be, " model ");
        if (m && strcmp(m + 7, "(default)")) return strdup(m + 7);
        snprintf(b, sizeof b, "%s", be + 9);
        char *sp = strchr(b, ' ');
        if (sp) *sp = 0;
        return strdup(b);
    }
    return strdup(base_name(r->dir, b, sizeof b));
}

static g4c_status load_perf(rp_run *r, g4c_err *err) {
    const cJSON *tests = cJSON_GetObjectItemCaseSensitive((cJSON *)r->json, "tests");
    const int n = cJSON_IsArray(tests) ? cJSON_GetArraySize(tests) : 0;
    if (!n) return G4C_FAIL(err, G4C_E_FORMAT, "%s/perf.json has no tests", r->dir);
    r->perf = calloc((size_t)n, sizeof *r->perf);
    if (!r->perf) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, tests) {
        rp_perf_test *p = &r->perf[r->n_perf++];
        p->name = dup_or_null(rp_jstr(t, "name"));
        p->modality = dup_or_null(rp_jstr(t, "modality"));
        p->prompt = dup_or_null(rp_jstr(t, "prompt"));
        p->response = dup_or_null(rp_jstr(t, "response"));
        p->stop = dup_or_null(rp_jstr(t, "stop"));
        p->max_tokens = num0(t, "max_tokens");
        p->prompt_tokens = num0(t, "prompt_tokens");
        p->gen_tokens = num0(t, "gen_tokens");
        p->prompt_tok_s = rp_jnum(t, "prompt_tok_s");
        p->gen_tok_s = rp_jnum(t, "gen_tok_s");
        p->ttft_ms = rp_jnum(t, "ttft_ms");
        p->total_s = rp_jnum(t, "total_s");
        p->image_ms = rp_jnum(t, "image_ms");
        p->peak_mib = rp_jnum(t, "peak_mib");
    }
    return G4C_OK;
}

static void box_of(const cJSON *e, rp_obox *b) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "box");
    double v[4] = {0, 0, 0, 0};
    for (int k = 0; k < 4; k++) {
        const cJSON *x = cJSON_GetArrayItem(a, k);
        v[k] = cJSON_IsNumber(x) ? x->valuedouble : 0;
    }
    b->x1 = v[0], b->y1 = v[1], b->x2 = v[2], b->y2 = v[3];
    const char *l = rp_jstr(e, "label");
    b->label = strdup(l ? l : "?");
    const int st = rp_status_from_name(rp_jstr(e, "status"));
    b->status = st < 0 ? RP_ST_FP : st;
    const double iou = rp_jnum(e, "iou");
    b->iou = isnan(iou) ? -1 : iou;
}

static rp_obox *boxes(const cJSON *arr, int *n) {
    *n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    rp_obox *b = calloc((size_t)(*n ? *n : 1), sizeof *b);
    if (!b) { *n = 0; return NULL; }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) box_of(e, &b[i++]);
    return b;
}

/* one samples.jsonl line into the run */
static g4c_status add_sample(rp_run *r, const cJSON *o, g4c_err *err) {
    if (r->kind == RP_RUN_VQA) {
        rp_vqa_sample *g = realloc(r->vqa, sizeof *g * (size_t)(r->n_vqa + 1));
        if (!g) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        r->vqa = g;
        rp_vqa_sample *s = &r->vqa[r->n_vqa++];
        s->key = dup_or_null(rp_jstr(o, "key"));
        s->image = dup_or_null(rp_jstr(o, "image"));
        s->question = dup_or_null(rp_jstr(o, "question"));
        s->prediction = dup_or_null(rp_jstr(o, "prediction"));
        s->answer = dup_or_null(rp_jstr(o, "answer"));
        s->strict = rp_jnum(o, "strict");
        s->vqa = rp_jnum(o, "vqa");
        return G4C_OK;
    }
    rp_coco_sample *g = realloc(r->coco, sizeof *g * (size_t)(r->n_coco + 1));
    if (!g) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    r->coco = g;
    rp_coco_sample *s = &r->coco[r->n_coco++];
    memset(s, 0, sizeof *s);
    s->key = dup_or_null(rp_jstr(o, "key"));
    s->image = dup_or_null(rp_jstr(o, "image"));
    s->width = num0(o, "width"), s->height = num0(o, "height");
    s->pred = boxes(cJSON_GetObjectItemCaseSensitive(o, "predictions"), &s->n_pred);
    s->gt = boxes(cJSON_GetObjectItemCaseSensitive(o, "ground_truth"), &s->n_gt);
    s->tp = num0(o, "tp"), s->tp_strict = num0(o, "tp_strict");
    s->precision = rp_jnum(o, "precision"), s->recall = rp_jnum(o, "recall"), s->f1 = rp_jnum(o, "f1");
    s->strict_recall = rp_jnum(o, "strict_recall"), s->mean_tp_iou = rp_jnum(o, "mean_tp_iou");
    if (!s->pred || !s->gt) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    return G4C_OK;
}

static g4c_status load_samples(rp_run *r, g4c_err *err) {
    char p[4200];
    snprintf(p, sizeof p, "%s/samples.jsonl", r->dir);
    if (access(p, F_OK) != 0) return G4C_OK; /* metrics only: the figures that need samples are left out */
    char *buf = NULL;
    size_t n = 0;
    G4C_TRY(g4c_read_file(p, MAX_JSON, &buf, &n, err));
    g4c_status st = G4C_OK;
    int line = 0;
    for (char *s = buf; s < buf + n && st == G4C_OK;) {
        char *nl = memchr(s, '\n', (size_t)(buf + n - s));
        char *e = nl ? nl : buf + n;
        line++;
        char *q = s;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < e) {
            cJSON *o = cJSON_ParseWithLength(s, (size_t)(e - s));
            if (!cJSON_IsObject(o)) st = G4C_FAIL(err, G4C_E_FORMAT, "%s: line %d is not a JSON object", p, line);
            else st = add_sample(r, o, err);
            cJSON_Delete(o);
        }
        s = e + 1;
    }
    free(buf);
    return st;
}

g4c_status rp_run_load(rp_run *r, const char *dir, const char *label, g4c_err *err) {
    memset(r, 0, sizeof *r);
    r->dir = strdup(dir);
    if (!r->dir) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    g4c_status st;
    if (has_file(dir, "perf.json")) {
        r->kind = RP_RUN_PERF;
        if ((st = read_json(dir, "perf.json", (cJSON **)&r->json, 1, err)) == G4C_OK) st = load_perf(r, err);
    } else if (has_file(dir, "metrics.json")) {
        if ((st = read_json(dir, "metrics.json", (cJSON **)&r->json, 1, err)) != G4C_OK) goto done;
        const char *task = rp_jstr(r->json, "task");
        if (task ? !strcmp(task, "vqa") : !isnan(rp_jnum(r->json, "strict_accuracy"))) r->kind = RP_RUN_VQA;
        else if (task ? !strcmp(task, "coco") : !isnan(rp_jnum(r->json, "total_pred"))) r->kind = RP_RUN_COCO;
        else {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s/metrics.json is neither VQA nor COCO (no \"task\")", dir);
            goto done;
        }
        if ((st = read_json(dir, "run.json", (cJSON **)&r->run_json, 0, err)) == G4C_OK) st = load_samples(r, err);
    } else {
        st = G4C_FAIL(err, G4C_E_ARG, "%s holds neither perf.json (gemma4c perf) nor metrics.json (gemma4c eval / "
                                      "score)", dir);
    }
done:
    if (st == G4C_OK) {
        r->label = label ? strdup(label) : derive_label(r);
        if (!r->label) st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    }
    if (st != G4C_OK) rp_run_free(r);
    return st;
}

void rp_run_free(rp_run *r) {
    free(r->dir);
    free(r->label);
    cJSON_Delete(r->json);
    cJSON_Delete(r->run_json);
    for (int i = 0; i < r->n_perf; i++) {
        rp_perf_test *p = &r->perf[i];
        free(p->name), free(p->modality), free(p->prompt), free(p->response), free(p->stop);
    }
    free(r->perf);
    for (int i = 0; i < r->n_vqa; i++) {
        rp_vqa_sample *s = &r->vqa[i];
        free(s->key), free(s->image), free(s->question), free(s->prediction), free(s->answer);
    }
    free(r->vqa);
    for (int i = 0; i < r->n_coco; i++) {
        rp_coco_sample *s = &r->coco[i];
        for (int k = 0; s->pred && k < s->n_pred; k++) free((void *)s->pred[k].label);
        for (int k = 0; s->gt && k < s->n_gt; k++) free((void *)s->gt[k].label);
        free(s->pred), free(s->gt), free(s->key), free(s->image);
    }
    free(r->coco);
    memset(r, 0, sizeof *r);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static g4c_status push(char ***dirs, char ***labels, int *n, const char *dir, const char *label, g4c_err *err) {
    char **d = realloc(*dirs, sizeof *d * (size_t)(*n + 1));
    if (d) *dirs = d;
    char **l = realloc(*labels, sizeof *l * (size_t)(*n + 1));
    if (l) *labels = l;
    if (!d || !l) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    (*dirs)[*n] = strdup(dir);
    (*labels)[*n] = label ? strdup(label) : NULL;
    (*n)++;
    return G4C_OK;
}

g4c_status rp_find_runs(const char *path, char ***dirs, char ***labels, int *n, g4c_err *err) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return G4C_FAIL(err, G4C_E_ARG, "%s is not a folder", path);
    if (has_file(path, "perf.json") || has_file(path, "metrics.json")) return push(dirs, labels, n, path, NULL, err);
    DIR *d = opendir(path);
    if (!d) return G4C_FAIL(err, G4C_E_IO, "cannot read the folder %s", path);
    char **sub = NULL;
    int ns = 0;
    g4c_status st = G4C_OK;
    for (struct dirent *e; (e = readdir(d)) != NULL && st == G4C_OK;) {
        if (e->d_name[0] == '.') continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode) || !(has_file(p, "perf.json") || has_file(p, "metrics.json")))
            continue;
        char **g = realloc(sub, sizeof *g * (size_t)(ns + 1));
        if (!g || !(g[ns] = strdup(p))) { free(g ? g : sub); sub = NULL; ns = 0; st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); break; }
        sub = g, ns++;
    }
    closedir(d);
    if (st == G4C_OK && !ns)
        st = G4C_FAIL(err, G4C_E_ARG, "%s holds no RUN folder (perf.json from gemma4c perf, metrics.json from "
                                      "gemma4c eval / score), neither itself nor one level down", path);
    if (st == G4C_OK) qsort(sub, (size_t)ns, sizeof *sub, cmp_str);
    char b[512];
    base_name(path, b, sizeof b);
    for (int i = 0; i < ns; i++) {
        if (st == G4C_OK) st = push(dirs, labels, n, sub[i], b, err);
        free(sub[i]);
    }
    free(sub);
    return st;
}
