/* Benchmark data: VQAv2's official question + annotation files, COCO instances files, JSONL manifests (the
 * built-in sample set is one), deterministic sampling and lookup by key. */
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "image/image.h"

#ifndef G4C_SAMPLES_DIR
#define G4C_SAMPLES_DIR "data/samples"
#endif

const char *eval_samples_dir(void) {
    const char *e = getenv("G4C_SAMPLES");
    return e && *e ? e : G4C_SAMPLES_DIR;
}

g4c_status eval_json_read(cJSON **out, const char *path, g4c_err *err) {
    *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    G4C_TRY(g4c_read_file(path, EVAL_JSON_MAX, &buf, &n, err));
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    if (!j) {
        size_t at = end ? (size_t)(end - buf) : 0;
        if (!end) {
            const char *e = cJSON_GetErrorPtr();
            at = e && e >= buf && e <= buf + n ? (size_t)(e - buf) : 0;
        }
        free(buf);
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: not valid JSON (near byte %zu)", path, at);
    }
    free(buf);
    *out = j;
    return G4C_OK;
}

static void sample_free(eval_sample *s) {
    free(s->key);
    free(s->image);
    free(s->question);
    free(s->mc_answer);
    free(s->qtype);
    free(s->atype);
    for (int i = 0; i < s->n_answers; i++) free(s->answers[i]);
    free(s->answers);
    free(s->gt);
}

void eval_set_free(eval_set *s) {
    for (int i = 0; i < s->n; i++) sample_free(&s->s[i]);
    free(s->s);
    free(s->by_key);
    memset(s, 0, sizeof *s);
}

/* a copy of an optional string; *oom set when there was one to copy and memory ran out */
static char *xstrdup(const char *s, int *oom) {
    char *p = s ? strdup(s) : NULL;
    if (s && !p) *oom = 1;
    return p;
}

static char *key_of(long long id) {
    char b[32];
    snprintf(b, sizeof b, "%lld", id);
    return strdup(b);
}

static int get_ll(const cJSON *o, const char *k, long long *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    /* range first: converting a double outside long long's range (1e300) is undefined */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9.2e18 && v->valuedouble <= 9.2e18) ||
        v->valuedouble != (double)(long long)v->valuedouble)
        return 0;
    *out = (long long)v->valuedouble;
    return 1;
}

static const char *get_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* dir + "/" + name; name kept as is when absolute or dir is empty */
static char *join(const char *dir, const char *name) {
    if (!dir || !*dir || name[0] == '/') return strdup(name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return p;
}

static g4c_status grow(eval_set *s, int *cap, g4c_err *err) {
    if (s->n < *cap) return G4C_OK;
    int nc = *cap ? *cap * 2 : 64;
    eval_sample *g = realloc(s->s, sizeof *g * (size_t)nc);
    if (!g) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    s->s = g;
    *cap = nc;
    return G4C_OK;
}

/* answers: array of strings or of {"answer": ...} */
static g4c_status read_answers(eval_sample *e, const cJSON *arr, const char *what, g4c_err *err) {
    if (!cJSON_IsArray(arr)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: \"answers\" must be an array", what);
    int n = cJSON_GetArraySize(arr);
    e->answers = calloc((size_t)(n ? n : 1), sizeof *e->answers);
    if (!e->answers) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    const cJSON *a;
    cJSON_ArrayForEach(a, arr) {
        const char *t = cJSON_IsString(a) ? a->valuestring : get_str(a, "answer");
        if (!t) return G4C_FAIL(err, G4C_E_FORMAT, "%s: answer %d is not a string (or {\"answer\": ...})", what,
                                e->n_answers + 1);
        if (!(e->answers[e->n_answers++] = strdup(t))) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    }
    return G4C_OK;
}

/* the most frequent answer (first seen wins ties): VQA's multiple_choice_answer when a manifest has none */
static char *most_frequent(char **a, int n) {
    int best = -1, best_n = 0;
    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int j = 0; j < n; j++) c += !strcmp(a[i], a[j]);
        if (c > best_n) best = i, best_n = c;
    }
    return strdup(best >= 0 ? a[best] : "");
}

typedef struct {
    long long id;
    const cJSON *o;
} id_ref;

static int cmp_id(const void *a, const void *b) {
    long long x = ((const id_ref *)a)->id, y = ((const id_ref *)b)->id;
    return (x > y) - (x < y);
}

static const cJSON *find_id(const id_ref *r, int n, long long id) {
    id_ref k = {id, NULL};
    const id_ref *f = bsearch(&k, r, (size_t)n, sizeof *r, cmp_id);
    return f ? f->o : NULL;
}

static g4c_status index_array(const cJSON *arr, const char *idkey, const char *what, id_ref **out, int *n_out,
                              g4c_err *err) {
    *out = NULL;
    *n_out = 0;
    if (!cJSON_IsArray(arr)) return G4C_FAIL(err, G4C_E_FORMAT, "%s is not an array", what);
    int n = cJSON_GetArraySize(arr), k = 0;
    id_ref *r = malloc(sizeof *r * (size_t)(n ? n : 1));
    if (!r) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        if (!get_ll(o, idkey, &r[k].id)) {
            free(r);
            return G4C_FAIL(err, G4C_E_FORMAT, "%s[%d]: \"%s\" is missing or not an integer", what, k, idkey);
        }
        r[k++].o = o;
    }
    qsort(r, (size_t)n, sizeof *r, cmp_id);
    *out = r;
    *n_out = n;
    return G4C_OK;
}

g4c_status eval_load_vqa(eval_set *out, const char *questions, const char *annotations, const char *images_dir,
                         g4c_err *err) {
    memset(out, 0, sizeof *out);
    out->task = EVAL_VQA;
    cJSON *q = NULL, *a = NULL;
    id_ref *ann = NULL;
    int n_ann = 0, cap = 0;
    g4c_status st = eval_json_read(&q, questions, err);
    if (st == G4C_OK) st = eval_json_read(&a, annotations, err);
    if (st != G4C_OK) goto done;
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(q, "questions");
    if (!cJSON_IsArray(qs)) { st = G4C_FAIL(err, G4C_E_FORMAT, "%s: no \"questions\" array", questions); goto done; }
    const char *sub = get_str(q, "data_subtype");
    char what[64];
    snprintf(what, sizeof what, "\"annotations\" of %.40s", annotations);
    if ((st = index_array(cJSON_GetObjectItemCaseSensitive(a, "annotations"), "question_id", what, &ann, &n_ann,
                          err)) != G4C_OK)
        goto done;
    const cJSON *qo;
    cJSON_ArrayForEach(qo, qs) {
        long long qid, iid;
        const char *text = get_str(qo, "question");
        if (!get_ll(qo, "question_id", &qid) || !get_ll(qo, "image_id", &iid) || !text) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: question %d lacks question_id, image_id or question", questions,
                          out->n);
            goto done;
        }
        const cJSON *an = find_id(ann, n_ann, qid);
        if (!an) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: no annotation for question_id %lld", annotations, qid);
            goto done;
        }
        if ((st = grow(out, &cap, err)) != G4C_OK) goto done;
        eval_sample *e = &out->s[out->n++];
        memset(e, 0, sizeof *e);
        e->question_id = qid;
        e->image_id = iid;
        char file[96];
        snprintf(file, sizeof file, "COCO_%s_%012lld.jpg", sub ? sub : "val2014", iid);
        e->key = key_of(qid);
        e->image = join(images_dir, file);
        e->question = strdup(text);
        int oom = 0;
        e->mc_answer = xstrdup(get_str(an, "multiple_choice_answer"), &oom);
        e->qtype = xstrdup(get_str(an, "question_type"), &oom);
        e->atype = xstrdup(get_str(an, "answer_type"), &oom);
        snprintf(what, sizeof what, "annotation of question_id %lld", qid);
        if ((st = read_answers(e, cJSON_GetObjectItemCaseSensitive(an, "answers"), what, err)) != G4C_OK) goto done;
        if (!e->mc_answer && !oom) e->mc_answer = most_frequent(e->answers, e->n_answers);
        if (oom || !e->key || !e->image || !e->question || !e->mc_answer) {
            st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
            goto done;
        }
    }
done:
    free(ann);
    cJSON_Delete(q);
    cJSON_Delete(a);
    if (st != G4C_OK) eval_set_free(out);
    return st;
}

static g4c_status add_gt(eval_sample *e, int cls, const cJSON *bbox, const char *what, g4c_err *err) {
    double v[4];
    if (!cJSON_IsArray(bbox) || cJSON_GetArraySize(bbox) != 4)
        return G4C_FAIL(err, G4C_E_FORMAT, "%s: \"bbox\" must be [x, y, w, h]", what);
    for (int k = 0; k < 4; k++) {
        const cJSON *x = cJSON_GetArrayItem(bbox, k);
        if (!cJSON_IsNumber(x)) return G4C_FAIL(err, G4C_E_FORMAT, "%s: \"bbox\" must hold 4 numbers", what);
        v[k] = x->valuedouble;
    }
    if (v[2] * v[3] < EVAL_COCO_MIN_AREA) return G4C_OK; /* area from the bbox, not the "area" field */
    eval_box *g = realloc(e->gt, sizeof *g * (size_t)(e->n_gt + 1));
    if (!g) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    e->gt = g;
    g[e->n_gt++] = (eval_box){cls, v[0], v[1], v[0] + v[2], v[1] + v[3]};
    return G4C_OK;
}

g4c_status eval_load_coco(eval_set *out, const char *instances, const char *images_dir, g4c_err *err) {
    memset(out, 0, sizeof *out);
    out->task = EVAL_COCO;
    cJSON *j = NULL;
    id_ref *cats = NULL, *imgs = NULL;
    int n_cats = 0, n_imgs = 0;
    g4c_status st = eval_json_read(&j, instances, err);
    if (st != G4C_OK) return st;
    char what[64];
    snprintf(what, sizeof what, "\"categories\" of %.40s", instances);
    if ((st = index_array(cJSON_GetObjectItemCaseSensitive(j, "categories"), "id", what, &cats, &n_cats, err)))
        goto done;
    snprintf(what, sizeof what, "\"images\" of %.40s", instances);
    if ((st = index_array(cJSON_GetObjectItemCaseSensitive(j, "images"), "id", what, &imgs, &n_imgs, err)))
        goto done;
    out->s = calloc((size_t)(n_imgs ? n_imgs : 1), sizeof *out->s);
    if (!out->s) { st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); goto done; }
    /* samples in id order; imgs[i].o is sample i */
    for (int i = 0; i < n_imgs; i++) {
        eval_sample *e = &out->s[out->n++];
        const char *fn = get_str(imgs[i].o, "file_name");
        long long w = 0, h = 0;
        get_ll(imgs[i].o, "width", &w);
        get_ll(imgs[i].o, "height", &h);
        e->image_id = imgs[i].id;
        e->question_id = -1;
        e->width = w > 0 && w < (1 << 30) ? (int)w : 0;
        e->height = h > 0 && h < (1 << 30) ? (int)h : 0;
        e->key = key_of(imgs[i].id);
        char file[40];
        snprintf(file, sizeof file, "%012lld.jpg", imgs[i].id);
        e->image = join(images_dir, fn ? fn : file);
        if (!e->key || !e->image) { st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); goto done; }
    }
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(j, "annotations"), *an;
    if (!cJSON_IsArray(anns)) { st = G4C_FAIL(err, G4C_E_FORMAT, "%s: no \"annotations\" array", instances); goto done; }
    int k = 0;
    cJSON_ArrayForEach(an, anns) {
        long long iid, cid;
        snprintf(what, sizeof what, "annotations[%d]", k++);
        if (!get_ll(an, "image_id", &iid) || !get_ll(an, "category_id", &cid)) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: %s lacks image_id or category_id", instances, what);
            goto done;
        }
        const cJSON *cat = find_id(cats, n_cats, cid);
        const int cls = cat ? eval_coco_class(get_str(cat, "name")) : -1;
        if (cls < 0) continue; /* not one of the 80 known classes */
        id_ref key = {iid, NULL};
        const id_ref *f = bsearch(&key, imgs, (size_t)n_imgs, sizeof *imgs, cmp_id);
        if (!f) {
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: %s refers to image_id %lld, not in \"images\"", instances, what, iid);
            goto done;
        }
        if ((st = add_gt(&out->s[f - imgs], cls, cJSON_GetObjectItemCaseSensitive(an, "bbox"), what, err))) goto done;
    }
done:
    free(cats);
    free(imgs);
    cJSON_Delete(j);
    if (st != G4C_OK) eval_set_free(out);
    return st;
}

g4c_status eval_load_manifest(eval_set *out, eval_task task, const char *path, g4c_err *err) {
    memset(out, 0, sizeof *out);
    out->task = task;
    char *buf = NULL;
    size_t len = 0;
    G4C_TRY(g4c_read_file(path, EVAL_JSON_MAX, &buf, &len, err));
    char *dir = strdup(path);
    if (!dir) { free(buf); return G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else dir[0] = 0;
    g4c_status st = G4C_OK;
    int cap = 0, line = 0;
    char what[96];
    for (char *p = buf; p < buf + len && st == G4C_OK;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *end = nl ? nl : buf + len;
        line++;
        char *q = p;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == end) { p = end + 1; continue; }
        snprintf(what, sizeof what, "%.60s line %d", path, line);
        cJSON *o = cJSON_ParseWithLength(p, (size_t)(end - p));
        p = end + 1;
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: not a JSON object", what);
            break;
        }
        const char *img = get_str(o, "image");
        if (!img) img = get_str(o, "file_name");
        if ((st = grow(out, &cap, err)) != G4C_OK) { cJSON_Delete(o); break; }
        eval_sample *e = &out->s[out->n++];
        memset(e, 0, sizeof *e);
        e->image_id = e->question_id = -1;
        long long id;
        const char *sid = get_str(o, "id");
        if (get_ll(o, "image_id", &id)) e->image_id = id;
        if (get_ll(o, "question_id", &id)) e->question_id = id;
        /* one choice of key, so that running out of memory leaves it NULL (reported below), never another key */
        if (sid) e->key = strdup(sid);
        else if (get_ll(o, "id", &id)) e->key = key_of(id);
        else if (task == EVAL_VQA && e->question_id >= 0) e->key = key_of(e->question_id);
        else if (task == EVAL_COCO && e->image_id >= 0) e->key = key_of(e->image_id);
        else e->key = key_of(line);
        int oom = 0;
        if (!img) { st = G4C_FAIL(err, G4C_E_FORMAT, "%s: \"image\" is missing", what); cJSON_Delete(o); break; }
        e->image = join(dir, img);
        long long w = 0, h = 0;
        if (get_ll(o, "width", &w) && w > 0 && w < (1 << 30)) e->width = (int)w;
        if (get_ll(o, "height", &h) && h > 0 && h < (1 << 30)) e->height = (int)h;
        if (task == EVAL_VQA) {
            const char *qt = get_str(o, "question");
            if (!qt) st = G4C_FAIL(err, G4C_E_FORMAT, "%s: \"question\" is missing", what);
            else {
                e->question = strdup(qt);
                st = read_answers(e, cJSON_GetObjectItemCaseSensitive(o, "answers"), what, err);
            }
            if (st == G4C_OK) {
                const char *mc = get_str(o, "answer");
                if (!mc) mc = get_str(o, "multiple_choice_answer");
                e->mc_answer = mc ? strdup(mc) : most_frequent(e->answers, e->n_answers);
                e->qtype = xstrdup(get_str(o, "question_type"), &oom);
                e->atype = xstrdup(get_str(o, "answer_type"), &oom);
            }
        } else {
            const cJSON *boxes = cJSON_GetObjectItemCaseSensitive(o, "boxes"), *b;
            if (!cJSON_IsArray(boxes)) st = G4C_FAIL(err, G4C_E_FORMAT, "%s: \"boxes\" must be an array", what);
            int k = 0;
            const cJSON *blist = st == G4C_OK ? boxes : NULL;
            cJSON_ArrayForEach(b, blist) {
                k++;
                const char *lab = get_str(b, "label");
                if (!lab) lab = get_str(b, "category");
                if (!lab) lab = get_str(b, "name");
                char norm[64];
                const int cls = eval_coco_label(lab, norm, sizeof norm);
                if (cls < 0) {
                    st = G4C_FAIL(err, G4C_E_FORMAT, "%s: box %d: label '%.40s' is not a COCO class", what, k,
                                  lab ? lab : "(missing)");
                    break;
                }
                char bw[128];
                snprintf(bw, sizeof bw, "%s: box %d", what, k);
                if ((st = add_gt(e, cls, cJSON_GetObjectItemCaseSensitive(b, "bbox"), bw, err)) != G4C_OK) break;
            }
        }
        cJSON_Delete(o);
        if (st == G4C_OK && (oom || !e->key || !e->image || (task == EVAL_VQA && (!e->question || !e->mc_answer))))
            st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    }
    free(buf);
    free(dir);
    if (st == G4C_OK && out->n == 0) st = G4C_FAIL(err, G4C_E_FORMAT, "%s: no samples", path);
    if (st != G4C_OK) eval_set_free(out);
    return st;
}

void eval_set_keep_eligible(eval_set *s) {
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->s[i].n_gt >= EVAL_COCO_MIN_OBJECTS) s->s[k++] = s->s[i];
        else sample_free(&s->s[i]);
    }
    s->n = k;
    free(s->by_key);
    s->by_key = NULL;
}

static unsigned long long splitmix(unsigned long long *x) {
    unsigned long long z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

g4c_status eval_set_sample(eval_set *s, int n, unsigned long long seed, g4c_err *err) {
    if (n <= 0 || n >= s->n) return G4C_OK;
    int *idx = malloc(sizeof *idx * (size_t)s->n);
    char *keep = calloc((size_t)s->n, 1);
    if (!idx || !keep) { free(idx); free(keep); return G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); }
    for (int i = 0; i < s->n; i++) idx[i] = i;
    unsigned long long x = seed;
    for (int i = s->n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(splitmix(&x) % (unsigned long long)(i + 1));
        int t = idx[i];
        idx[i] = idx[j], idx[j] = t;
    }
    /* the first n of the permutation, in file order */
    qsort(idx + s->n - n, (size_t)n, sizeof *idx, cmp_int);
    for (int i = s->n - n; i < s->n; i++) keep[idx[i]] = 1;
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        if (keep[i]) s->s[k++] = s->s[i];
        else sample_free(&s->s[i]);
    }
    s->n = k;
    free(idx);
    free(keep);
    free(s->by_key);
    s->by_key = NULL;
    return G4C_OK;
}

static const eval_set *g_sort_set; /* qsort has no context argument */
static int cmp_key(const void *a, const void *b) {
    return strcmp(g_sort_set->s[*(const int *)a].key, g_sort_set->s[*(const int *)b].key);
}

g4c_status eval_set_index(eval_set *s, g4c_err *err) {
    free(s->by_key);
    s->by_key = malloc(sizeof(int) * (size_t)(s->n ? s->n : 1));
    if (!s->by_key) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    for (int i = 0; i < s->n; i++) s->by_key[i] = i;
    g_sort_set = s;
    qsort(s->by_key, (size_t)s->n, sizeof(int), cmp_key);
    g_sort_set = NULL;
    for (int i = 1; i < s->n; i++)
        if (!strcmp(s->s[s->by_key[i]].key, s->s[s->by_key[i - 1]].key))
            return G4C_FAIL(err, G4C_E_FORMAT, "two samples have the id '%s'", s->s[s->by_key[i]].key);
    return G4C_OK;
}

int eval_set_find(const eval_set *s, const char *key) {
    int lo = 0, hi = s->n - 1;
    while (s->by_key && lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(s->s[s->by_key[mid]].key, key);
        if (!c) return s->by_key[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

g4c_status eval_sample_size(eval_sample *s, g4c_err *err) {
    if (s->width > 0 && s->height > 0) return G4C_OK;
    g4c_image img = {0};
    G4C_TRY(g4c_image_load(&img, s->image, 0, err));
    s->width = img.width;
    s->height = img.height;
    g4c_image_free(&img);
    return G4C_OK;
}
