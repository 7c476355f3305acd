/* The benchmarks' metrics (docs/EVAL.md): the notebook's strict VQA match and its COCO parsing, label
 * normalization, class-aware greedy matching and statuses, plus the official VQA accuracy (normalization of
 * GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py) and COCO recall at IoU 0.50:0.05:0.95.
 * Pure functions over strings and boxes: no I/O. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* Python's str.strip() set (ASCII). */
static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static char *dup_range(const char *s, size_t n) {
    char *o = malloc(n + 1);
    if (!o) return NULL;
    memcpy(o, s, n);
    o[n] = 0;
    return o;
}

/* [*b, *e) stripped of whitespace on both ends */
static void strip_range(const char **b, const char **e) {
    while (*b < *e && is_space((unsigned char)**b)) (*b)++;
    while (*e > *b && is_space((unsigned char)(*e)[-1])) (*e)--;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* VQA                                                                                                          */

char *eval_vqa_prediction(const char *response) {
    if (!response) response = "";
    const char *b = response, *e = response + strlen(response);
    strip_range(&b, &e);
    const char *nl = memchr(b, '\n', (size_t)(e - b));
    if (nl) e = nl;
    strip_range(&b, &e);
    return dup_range(b, (size_t)(e - b));
}

char *eval_vqa_strict_norm(const char *s) {
    if (!s) s = "";
    const char *b = s, *e = s + strlen(s);
    strip_range(&b, &e);
    if (e > b && e[-1] == '.') e--;
    char *o = dup_range(b, (size_t)(e - b));
    if (o)
        for (char *p = o; *p; p++) *p = (char)tolower((unsigned char)*p);
    return o;
}

int eval_vqa_strict_match(const char *pred, const char *mc_answer) {
    char *p = eval_vqa_strict_norm(pred);
    if (!mc_answer) mc_answer = "";
    const char *b = mc_answer, *e = mc_answer + strlen(mc_answer);
    strip_range(&b, &e);
    int eq = p && strlen(p) == (size_t)(e - b);
    for (size_t i = 0; eq && i < (size_t)(e - b); i++) eq = p[i] == (char)tolower((unsigned char)b[i]);
    free(p);
    return eq;
}

/* vqaEval.py's tables (the GT-Vision-Lab/VQA master after "Fixed processing answers bug") */
static const char vqa_punct[] = {';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<',
                                 '@', '`', ',', '?', '!'};
static const char *const vqa_numbers[][2] = {{"none", "0"}, {"zero", "0"}, {"one", "1"},   {"two", "2"},
                                             {"three", "3"}, {"four", "4"}, {"five", "5"}, {"six", "6"},
                                             {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"}};
static const char *const vqa_contractions[][2] = {
    {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"}, {"couldnt", "couldn't"},
    {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"}, {"didnt", "didn't"}, {"doesnt", "doesn't"},
    {"dont", "don't"}, {"hadnt", "hadn't"}, {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"},
    {"hasnt", "hasn't"}, {"havent", "haven't"}, {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"},
    {"hes", "he's"}, {"howd", "how'd"}, {"howll", "how'll"}, {"hows", "how's"}, {"Id've", "I'd've"},
    {"I'dve", "I'd've"}, {"Im", "I'm"}, {"Ive", "I've"}, {"isnt", "isn't"}, {"itd", "it'd"}, {"itd've", "it'd've"},
    {"it'dve", "it'd've"}, {"itll", "it'll"}, {"let's", "let's"}, {"maam", "ma'am"}, {"mightnt", "mightn't"},
    {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"}, {"mightve", "might've"}, {"mustnt", "mustn't"},
    {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"}, {"oclock", "o'clock"},
    {"oughtnt", "oughtn't"}, {"ow's'at", "'ow's'at"}, {"'ows'at", "'ow's'at"}, {"'ow'sat", "'ow's'at"},
    {"shant", "shan't"}, {"shed've", "she'd've"}, {"she'dve", "she'd've"}, {"she's", "she's"},
    {"shouldve", "should've"}, {"shouldnt", "shouldn't"}, {"shouldnt've", "shouldn't've"},
    {"shouldn'tve", "shouldn't've"}, {"somebody'd", "somebodyd"}, {"somebodyd've", "somebody'd've"},
    {"somebody'dve", "somebody'd've"}, {"somebodyll", "somebody'll"}, {"somebodys", "somebody's"},
    {"someoned", "someone'd"}, {"someoned've", "someone'd've"}, {"someone'dve", "someone'd've"},
    {"someonell", "someone'll"}, {"someones", "someone's"}, {"somethingd", "something'd"},
    {"somethingd've", "something'd've"}, {"something'dve", "something'd've"}, {"somethingll", "something'll"},
    {"thats", "that's"}, {"thered", "there'd"}, {"thered've", "there'd've"}, {"there'dve", "there'd've"},
    {"therere", "there're"}, {"theres", "there's"}, {"theyd", "they'd"}, {"theyd've", "they'd've"},
    {"they'dve", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"}, {"theyve", "they've"},
    {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"}, {"we'dve", "we'd've"}, {"weve", "we've"},
    {"werent", "weren't"}, {"whatll", "what'll"}, {"whatre", "what're"}, {"whats", "what's"},
    {"whatve", "what've"}, {"whens", "when's"}, {"whered", "where'd"}, {"wheres", "where's"},
    {"whereve", "where've"}, {"whod", "who'd"}, {"whod've", "who'd've"}, {"who'dve", "who'd've"},
    {"wholl", "who'll"}, {"whos", "who's"}, {"whove", "who've"}, {"whyll", "why'll"}, {"whyre", "why're"},
    {"whys", "why's"}, {"wont", "won't"}, {"wouldve", "would've"}, {"wouldnt", "wouldn't"},
    {"wouldnt've", "wouldn't've"}, {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"}, {"yall'll", "y'all'll"},
    {"y'allll", "y'all'll"}, {"yall'd've", "y'all'd've"}, {"y'alld've", "y'all'd've"}, {"y'all'dve", "y'all'd've"},
    {"youd", "you'd"}, {"youd've", "you'd've"}, {"you'dve", "you'd've"}, {"youll", "you'll"}, {"youre", "you're"},
    {"youve", "you've"},
};

/* processPunctuation: each punctuation mark is deleted when it touches a space in the input, or anywhere when the
 * input has a digit,digit comma; otherwise it becomes a space. Then periodStrip deletes '.' not followed by a
 * digit ("(?!<=\d)" is a lookahead that never fails), at most 32 of them (re.UNICODE is passed as sub's count). */
static char *vqa_punctuation(const char *in) {
    const size_t n = strlen(in);
    int comma_digits = 0;
    for (size_t i = 0; i + 2 < n && !comma_digits; i++)
        comma_digits = isdigit((unsigned char)in[i]) && in[i + 1] == ',' && isdigit((unsigned char)in[i + 2]);
    char *out = dup_range(in, n);
    if (!out) return NULL;
    for (size_t k = 0; k < sizeof vqa_punct; k++) {
        const char p = vqa_punct[k];
        int del = comma_digits;
        for (size_t i = 0; i < n && !del; i++)
            if (in[i] == p && ((i + 1 < n && in[i + 1] == ' ') || (i > 0 && in[i - 1] == ' '))) del = 1;
        size_t j = 0;
        for (size_t i = 0; out[i]; i++) {
            if (out[i] != p) out[j++] = out[i];
            else if (!del) out[j++] = ' ';
        }
        out[j] = 0;
    }
    /* the period pass matches on the string as it is now */
    size_t j = 0;
    int removed = 0;
    for (size_t i = 0; out[i]; i++) {
        if (out[i] == '.' && !isdigit((unsigned char)out[i + 1]) && removed < 32) {
            removed++;
            continue;
        }
        out[j++] = out[i];
    }
    out[j] = 0;
    return out;
}

/* processDigitArticle: lowercase, split on whitespace, number words -> digits, drop a/an/the, contractions. */
static char *vqa_digit_article(const char *in) {
    const size_t n = strlen(in);
    char *out = malloc(2 * n + 16); /* a number word never grows; a contraction adds at most 2 bytes per word */
    if (!out) return NULL;
    size_t o = 0;
    const char *p = in;
    char word[512];
    while (*p) {
        while (*p && is_space((unsigned char)*p)) p++;
        if (!*p) break;
        const char *w = p;
        while (*p && !is_space((unsigned char)*p)) p++;
        size_t wl = (size_t)(p - w);
        const char *emit = NULL;
        char *big = NULL;
        if (wl < sizeof word) {
            for (size_t i = 0; i < wl; i++) word[i] = (char)tolower((unsigned char)w[i]);
            word[wl] = 0;
            emit = word;
        } else {
            big = dup_range(w, wl);
            if (!big) { free(out); return NULL; }
            for (size_t i = 0; i < wl; i++) big[i] = (char)tolower((unsigned char)big[i]);
            emit = big;
        }
        for (size_t k = 0; k < sizeof vqa_numbers / sizeof *vqa_numbers; k++)
            if (!strcmp(emit, vqa_numbers[k][0])) { emit = vqa_numbers[k][1]; break; }
        if (!strcmp(emit, "a") || !strcmp(emit, "an") || !strcmp(emit, "the")) { free(big); continue; }
        for (size_t k = 0; k < sizeof vqa_contractions / sizeof *vqa_contractions; k++)
            if (!strcmp(emit, vqa_contractions[k][0])) { emit = vqa_contractions[k][1]; break; }
        const size_t el = strlen(emit);
        if (o) out[o++] = ' ';
        memcpy(out + o, emit, el);
        o += el;
        free(big);
    }
    out[o] = 0;
    return out;
}

char *eval_vqa_normalize(const char *s) {
    if (!s) s = "";
    char *t = dup_range(s, strlen(s));
    if (!t) return NULL;
    for (char *p = t; *p; p++)
        if (*p == '\n' || *p == '\t') *p = ' ';
    const char *b = t, *e = t + strlen(t);
    strip_range(&b, &e);
    char *st = dup_range(b, (size_t)(e - b));
    free(t);
    if (!st) return NULL;
    char *pu = vqa_punctuation(st);
    free(st);
    if (!pu) return NULL;
    char *da = vqa_digit_article(pu);
    free(pu);
    return da;
}

double eval_vqa_accuracy(const char *pred, const char *const *answers, int n) {
    if (n <= 0) return 0;
    char *p = eval_vqa_normalize(pred);
    char **a = calloc((size_t)n, sizeof *a);
    double acc = 0;
    if (!p || !a) goto done;
    int *eq = calloc((size_t)n, sizeof *eq);
    if (!eq) goto done;
    int total = 0;
    for (int i = 0; i < n; i++) {
        a[i] = eval_vqa_normalize(answers[i] ? answers[i] : "");
        eq[i] = a[i] && !strcmp(a[i], p);
        total += eq[i];
    }
    if (n == 1) acc = eq[0];
    else {
        for (int i = 0; i < n; i++) {
            const double m = total - eq[i]; /* matches among the other n - 1 answers */
            acc += m / 3 < 1 ? m / 3 : 1;
        }
        acc /= n;
    }
    free(eq);
done:
    if (a)
        for (int i = 0; i < n; i++) free(a[i]);
    free(a);
    free(p);
    return acc;
}

static g4c_status group_add(eval_group **g, int *n, const char *name, double strict, double vqa, g4c_err *err) {
    if (!name || !*name) return G4C_OK;
    for (int i = 0; i < *n; i++)
        if (!strcmp((*g)[i].name, name)) {
            (*g)[i].n++, (*g)[i].strict += strict, (*g)[i].vqa += vqa;
            return G4C_OK;
        }
    eval_group *ng = realloc(*g, sizeof **g * (size_t)(*n + 1));
    if (!ng) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    *g = ng;
    ng[*n] = (eval_group){strdup(name), 1, strict, vqa};
    if (!ng[*n].name) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    (*n)++;
    return G4C_OK;
}

g4c_status eval_vqa_acc_add(eval_vqa_acc *a, double strict, double vqa, const char *qtype, const char *atype,
                            g4c_err *err) {
    a->n++;
    a->strict += strict;
    a->vqa += vqa;
    a->vqa_sq += vqa * vqa;
    G4C_TRY(group_add(&a->qtype, &a->n_qtype, qtype, strict, vqa, err));
    return group_add(&a->atype, &a->n_atype, atype, strict, vqa, err);
}

void eval_vqa_acc_free(eval_vqa_acc *a) {
    for (int i = 0; i < a->n_qtype; i++) free(a->qtype[i].name);
    for (int i = 0; i < a->n_atype; i++) free(a->atype[i].name);
    free(a->qtype);
    free(a->atype);
    memset(a, 0, sizeof *a);
}

#define Z95 1.959963984540054

void eval_ci_wilson(double k, int n, double *lo, double *hi) {
    if (n <= 0) { *lo = *hi = 0; return; }
    const double p = k / n, z2 = Z95 * Z95, den = 1 + z2 / n;
    const double c = (p + z2 / (2.0 * n)) / den;
    const double h = Z95 * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / den;
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

void eval_ci_mean(double sum, double sumsq, int n, double *lo, double *hi) {
    if (n <= 0) { *lo = *hi = 0; return; }
    const double m = sum / n;
    double h = 0;
    if (n > 1) {
        double var = (sumsq - n * m * m) / (n - 1);
        h = var > 0 ? Z95 * sqrt(var / n) : 0;
    }
    *lo = m - h < 0 ? 0 : m - h;
    *hi = m + h > 1 ? 1 : m + h;
}

static void add_pair(cJSON *o, const char *key, double lo, double hi) {
    cJSON *a = cJSON_AddArrayToObject(o, key);
    if (!a) return;
    cJSON_AddItemToArray(a, cJSON_CreateNumber(lo));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(hi));
}

static int cmp_group(const void *a, const void *b) {
    return strcmp(((const eval_group *)a)->name, ((const eval_group *)b)->name);
}

static void add_groups(cJSON *o, const char *key, eval_group *g, int n) {
    cJSON *t = cJSON_AddObjectToObject(o, key);
    if (!t) return;
    qsort(g, (size_t)n, sizeof *g, cmp_group);
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(t, g[i].name);
        if (!e) continue;
        cJSON_AddNumberToObject(e, "n", g[i].n);
        cJSON_AddNumberToObject(e, "vqa_accuracy", g[i].vqa / g[i].n);
        cJSON_AddNumberToObject(e, "strict_accuracy", g[i].strict / g[i].n);
    }
}

cJSON *eval_vqa_metrics(const eval_vqa_acc *a) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const int n = a->n;
    cJSON_AddStringToObject(o, "task", "vqa");
    cJSON_AddNumberToObject(o, "strict_accuracy", n ? a->strict / n : 0);
    cJSON_AddNumberToObject(o, "vqa_accuracy", n ? a->vqa / n : 0);
    cJSON_AddNumberToObject(o, "n", n);
    double lo, hi;
    eval_ci_wilson(a->strict, n, &lo, &hi);
    add_pair(o, "strict_accuracy_ci95", lo, hi);
    eval_ci_mean(a->vqa, a->vqa_sq, n, &lo, &hi);
    add_pair(o, "vqa_accuracy_ci95", lo, hi);
    eval_vqa_acc *m = (eval_vqa_acc *)a; /* sorting the groups is not a change of value */
    add_groups(o, "per_question_type", m->qtype, m->n_qtype);
    add_groups(o, "per_answer_type", m->atype, m->n_atype);
    return o;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* COCO                                                                                                         */

const char *const eval_coco_names[EVAL_COCO_N_CLASSES] = {
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush"};

static const char *const coco_aliases[][2] = {
    {"tv monitor", "tv"}, {"tvmonitor", "tv"}, {"television", "tv"}, {"monitor", "tv"},
    {"mobile phone", "cell phone"}, {"cellphone", "cell phone"}, {"phone", "cell phone"},
    {"smartphone", "cell phone"}, {"iphone", "cell phone"},
    {"sofa", "couch"}, {"loveseat", "couch"},
    {"diningtable", "dining table"}, {"table", "dining table"}, {"desk", "dining table"},
    {"pottedplant", "potted plant"}, {"houseplant", "potted plant"}, {"plant", "potted plant"},
    {"aeroplane", "airplane"}, {"plane", "airplane"}, {"jet", "airplane"},
    {"motorbike", "motorcycle"}, {"scooter", "motorcycle"},
    {"wine", "wine glass"}, {"glass", "wine glass"},
    {"laptop computer", "laptop"}, {"notebook", "laptop"},
    {"bike", "bicycle"},
    {"teddy", "teddy bear"}, {"stuffed bear", "teddy bear"}, {"plush bear", "teddy bear"},
    {"traffic signal", "traffic light"}, {"signal", "traffic light"},
    {"automobile", "car"}, {"vehicle", "car"},
    {"human", "person"}, {"man", "person"}, {"woman", "person"}, {"child", "person"}, {"boy", "person"},
    {"girl", "person"}, {"people", "person"}, {"pedestrian", "person"},
};

int eval_coco_class(const char *name) {
    for (int i = 0; name && i < EVAL_COCO_N_CLASSES; i++)
        if (!strcmp(name, eval_coco_names[i])) return i;
    return -1;
}

int eval_coco_label(const char *label, char *out, size_t size) {
    if (!size) return -1;
    out[0] = 0;
    if (!label) return -1;
    const char *b = label, *e = label + strlen(label);
    strip_range(&b, &e);
    /* lowercase; runs of '_'/'-' -> ' '; whitespace runs -> ' '; strip */
    size_t o = 0;
    int pending_space = 0;
    for (const char *p = b; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '_' || c == '-' || is_space(c)) {
            pending_space = 1;
            continue;
        }
        if (pending_space && o && o + 1 < size) out[o++] = ' ';
        pending_space = 0;
        if (o + 1 < size) out[o++] = (char)tolower(c);
    }
    out[o] = 0;
    for (size_t i = 0; i < sizeof coco_aliases / sizeof *coco_aliases; i++)
        if (!strcmp(out, coco_aliases[i][0])) {
            snprintf(out, size, "%s", coco_aliases[i][1]);
            break;
        }
    return eval_coco_class(out);
}

/* Python truthiness of a JSON value (the notebook's `a or b or c` chains) */
static int truthy(const cJSON *v) {
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return 0;
    if (cJSON_IsNumber(v)) return v->valuedouble != 0;
    if (cJSON_IsString(v)) return v->valuestring && v->valuestring[0];
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) return v->child != NULL;
    return 1;
}

static const cJSON *first_of(const cJSON *el, const char *const *keys, int n) {
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(el, keys[i]);
        if (truthy(v)) return v;
    }
    return NULL;
}

static int number_of(const cJSON *v, double *out) {
    if (cJSON_IsNumber(v)) { *out = v->valuedouble; return isfinite(*out); }
    if (cJSON_IsString(v) && v->valuestring) { /* float("412") */
        const char *s = v->valuestring;
        char *end;
        double x = strtod(s, &end);
        if (end == s) return 0;
        while (is_space((unsigned char)*end)) end++;
        if (*end || !isfinite(x)) return 0;
        *out = x;
        return 1;
    }
    return 0;
}

static double clip(double v, double hi) { return v < 0 ? 0 : v > hi ? hi : v; }

int eval_coco_parse(const char *response, int width, int height, eval_box **out) {
    *out = NULL;
    if (!response) return 0;
    size_t n = strnlen(response, EVAL_MAX_RESPONSE);
    /* strip code fences: remove every "```json", then every "```" */
    char *t = dup_range(response, n);
    if (!t) return -1;
    const char *fences[] = {"```json", "```"};
    for (int f = 0; f < 2; f++) {
        const size_t fl = strlen(fences[f]);
        char *w = t;
        for (char *r = t; *r;) {
            if (!strncmp(r, fences[f], fl)) { r += fl; continue; }
            *w++ = *r++;
        }
        *w = 0;
    }
    char *lb = strchr(t, '['), *rb = strrchr(t, ']');
    int count = 0, cap = 0;
    eval_box *boxes = NULL;
    if (!lb || !rb || rb < lb) { free(t); return 0; }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(lb, (size_t)(rb - lb) + 1, &end, 0);
    /* json.loads rejects extra data: the span ends at ']', so only a parse that consumed all of it counts */
    if (j && cJSON_IsArray(j) && end == rb + 1) {
        static const char *const lkeys[] = {"label", "class", "name", "object"};
        static const char *const bkeys[] = {"box_2d", "box", "bbox", "bounding_box"};
        const cJSON *el;
        cJSON_ArrayForEach(el, j) {
            if (!cJSON_IsObject(el)) continue;
            const cJSON *lv = first_of(el, lkeys, 4), *bv = first_of(el, bkeys, 4);
            if (!cJSON_IsString(lv) || !cJSON_IsArray(bv) || cJSON_GetArraySize(bv) != 4) continue;
            double v[4];
            int ok = 1;
            for (int k = 0; k < 4 && ok; k++) ok = number_of(cJSON_GetArrayItem(bv, k), &v[k]);
            if (!ok) continue;
            char lab[128];
            const int cls = eval_coco_label(lv->valuestring, lab, sizeof lab);
            if (cls < 0) continue;
            eval_box b = {cls, clip(v[1] / 1000.0 * width, width), clip(v[0] / 1000.0 * height, height),
                          clip(v[3] / 1000.0 * width, width), clip(v[2] / 1000.0 * height, height)};
            if (b.x2 <= b.x1 + 1 || b.y2 <= b.y1 + 1) continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 16;
                eval_box *g = realloc(boxes, sizeof *g * (size_t)cap);
                if (!g) { free(boxes); cJSON_Delete(j); free(t); return -1; }
                boxes = g;
            }
            boxes[count++] = b;
        }
    }
    cJSON_Delete(j);
    free(t);
    *out = boxes;
    return count;
}

double eval_iou(const eval_box *a, const eval_box *b) {
    const double iw = fmin(a->x2, b->x2) - fmax(a->x1, b->x1), ih = fmin(a->y2, b->y2) - fmax(a->y1, b->y1);
    if (iw <= 0 || ih <= 0) return 0;
    const double inter = iw * ih;
    const double uni = (a->x2 - a->x1) * (a->y2 - a->y1) + (b->x2 - b->x1) * (b->y2 - b->y1) - inter;
    return uni > 0 ? inter / uni : 0;
}

const char *const eval_status_names[EVAL_N_ST] = {"tp", "near", "class", "fp"};

typedef struct {
    double iou;
    int i, j;
} pair;

static int cmp_pair(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->iou != y->iou) return x->iou > y->iou ? -1 : 1;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

int eval_coco_match(const eval_box *pred, int np, const eval_box *gt, int ng, double thr, int *match_pred,
                    double *match_iou) {
    for (int i = 0; i < np; i++) {
        if (match_pred) match_pred[i] = -1;
        if (match_iou) match_iou[i] = 0;
    }
    if (np <= 0 || ng <= 0) return 0;
    size_t n = 0;
    for (int i = 0; i < np; i++)
        for (int j = 0; j < ng; j++)
            if (pred[i].cls == gt[j].cls && eval_iou(&pred[i], &gt[j]) >= thr) n++;
    if (!n) return 0;
    pair *p = malloc(sizeof *p * n);
    char *used_p = calloc((size_t)np, 1), *used_g = calloc((size_t)ng, 1);
    int m = 0;
    if (!p || !used_p || !used_g) { m = -1; goto done; }
    n = 0;
    for (int i = 0; i < np; i++)
        for (int j = 0; j < ng; j++) {
            if (pred[i].cls != gt[j].cls) continue;
            const double v = eval_iou(&pred[i], &gt[j]);
            if (v >= thr) p[n++] = (pair){v, i, j};
        }
    qsort(p, n, sizeof *p, cmp_pair);
    for (size_t k = 0; k < n; k++) {
        if (used_p[p[k].i] || used_g[p[k].j]) continue;
        used_p[p[k].i] = used_g[p[k].j] = 1;
        if (match_pred) match_pred[p[k].i] = p[k].j;
        if (match_iou) match_iou[p[k].i] = p[k].iou;
        m++;
    }
done:
    free(p);
    free(used_p);
    free(used_g);
    return m;
}

static void prf(int tp, int np, int ng, double *p, double *r, double *f) {
    *p = np ? (double)tp / np : 0;
    *r = ng ? (double)tp / ng : 0;
    *f = *p + *r > 0 ? 2 * *p * *r / (*p + *r) : 0;
}

g4c_status eval_coco_score(const eval_box *pred, int np, const eval_box *gt, int ng, eval_coco_image *r,
                           int *status, int *strict_gt, double *best_iou) {
    memset(r, 0, sizeof *r);
    r->n_pred = np;
    r->n_gt = ng;
    int *mp = malloc(sizeof(int) * (size_t)(np > 0 ? np : 1));
    double *mi = malloc(sizeof(double) * (size_t)(np > 0 ? np : 1));
    if (!mp || !mi) { free(mp); free(mi); return G4C_E_NOMEM; }
    for (int i = 0; i < np; i++) r->cls_pred[pred[i].cls]++;
    for (int j = 0; j < ng; j++) r->cls_gt[gt[j].cls]++;
    /* coarse */
    r->tp = eval_coco_match(pred, np, gt, ng, EVAL_IOU_COARSE, mp, NULL);
    for (int i = 0; i < np; i++)
        if (mp[i] >= 0) r->cls_tp[pred[i].cls]++;
    /* strict, and recall at 0.50:0.05:0.95 (0.50 is the strict match) */
    for (int k = EVAL_N_AR - 1; k >= 0; k--) {
        const double thr = (50 + 5 * k) / 100.0;
        r->tp_at[k] = eval_coco_match(pred, np, gt, ng, thr, mp, mi);
        for (int i = 0; i < np; i++)
            if (mp[i] >= 0) r->cls_tp_at[pred[i].cls][k]++;
    }
    if (r->tp < 0 || r->tp_at[0] < 0) { free(mp); free(mi); return G4C_E_NOMEM; }
    /* mp / mi now hold the strict (0.50) match */
    r->tp_strict = r->tp_at[0];
    double sum_iou = 0;
    for (int i = 0; i < np; i++) {
        if (mp[i] >= 0) {
            r->cls_tp_strict[pred[i].cls]++;
            sum_iou += mi[i];
        }
        double best_same = 0, best_any = 0;
        for (int j = 0; j < ng; j++) {
            const double v = eval_iou(&pred[i], &gt[j]);
            if (v > best_any) best_any = v;
            if (pred[i].cls == gt[j].cls && v > best_same) best_same = v;
        }
        const int st = mp[i] >= 0 ? EVAL_ST_TP : best_same >= EVAL_IOU_COARSE ? EVAL_ST_NEAR
                                                : best_any >= EVAL_IOU_STRICT ? EVAL_ST_CLASS : EVAL_ST_FP;
        r->st[st]++;
        if (status) status[i] = st;
        if (strict_gt) strict_gt[i] = mp[i];
        if (best_iou) best_iou[i] = best_same;
    }
    r->mean_tp_iou = r->tp_strict ? sum_iou / r->tp_strict : 0;
    prf(r->tp, np, ng, &r->precision, &r->recall, &r->f1);
    prf(r->tp_strict, np, ng, &r->strict_precision, &r->strict_recall, &r->strict_f1);
    free(mp);
    free(mi);
    return G4C_OK;
}

void eval_coco_acc_add(eval_coco_acc *a, const eval_coco_image *r) {
    const double v[7] = {r->precision, r->recall, r->f1, r->strict_precision, r->strict_recall, r->strict_f1,
                         r->mean_tp_iou};
    for (int k = 0; k < 7; k++) a->s[k] += v[k], a->sq[k] += v[k] * v[k];
    a->n++;
    a->tp += r->tp;
    a->tp_strict += r->tp_strict;
    a->n_pred += r->n_pred;
    a->n_gt += r->n_gt;
    for (int k = 0; k < EVAL_N_ST; k++) a->st[k] += r->st[k];
    for (int k = 0; k < EVAL_N_AR; k++) a->tp_at[k] += r->tp_at[k];
    for (int c = 0; c < EVAL_COCO_N_CLASSES; c++) {
        a->cls_gt[c] += r->cls_gt[c];
        a->cls_pred[c] += r->cls_pred[c];
        a->cls_tp[c] += r->cls_tp[c];
        a->cls_tp_strict[c] += r->cls_tp_strict[c];
        for (int k = 0; k < EVAL_N_AR; k++) a->cls_tp_at[c][k] += r->cls_tp_at[c][k];
    }
}

cJSON *eval_coco_metrics(const eval_coco_acc *a) {
    static const char *const names[7] = {"precision", "recall", "f1", "strict_precision", "strict_recall",
                                         "strict_f1", "mean_tp_iou"};
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const int n = a->n;
    cJSON_AddStringToObject(o, "task", "coco");
    for (int k = 0; k < 7; k++) cJSON_AddNumberToObject(o, names[k], n ? a->s[k] / n : 0);
    cJSON_AddNumberToObject(o, "total_tp", (double)a->tp);
    cJSON_AddNumberToObject(o, "total_tp_strict", (double)a->tp_strict);
    cJSON_AddNumberToObject(o, "total_pred", (double)a->n_pred);
    cJSON_AddNumberToObject(o, "total_gt", (double)a->n_gt);
    cJSON *sc = cJSON_AddObjectToObject(o, "status_counts");
    for (int k = 0; k < EVAL_N_ST && sc; k++) cJSON_AddNumberToObject(sc, eval_status_names[k], (double)a->st[k]);
    cJSON_AddNumberToObject(o, "n_images", n);
    /* recall pooled over every ground-truth object, at each IoU threshold */
    cJSON *ra = cJSON_AddObjectToObject(o, "recall_at_iou");
    double ar = 0;
    for (int k = 0; k < EVAL_N_AR; k++) {
        char key[8];
        snprintf(key, sizeof key, "%.2f", (50 + 5 * k) / 100.0);
        const double rec = a->n_gt ? (double)a->tp_at[k] / a->n_gt : 0;
        if (ra) cJSON_AddNumberToObject(ra, key, rec);
        ar += rec;
    }
    cJSON_AddNumberToObject(o, "ar", ar / EVAL_N_AR);
    cJSON *pc = cJSON_AddObjectToObject(o, "per_class");
    double ar_cls = 0;
    int n_cls = 0;
    for (int c = 0; c < EVAL_COCO_N_CLASSES && pc; c++) {
        if (!a->cls_gt[c] && !a->cls_pred[c]) continue;
        cJSON *e = cJSON_AddObjectToObject(pc, eval_coco_names[c]);
        if (!e) continue;
        const double ng = (double)a->cls_gt[c];
        double car = 0;
        for (int k = 0; k < EVAL_N_AR; k++) car += ng ? a->cls_tp_at[c][k] / ng : 0;
        car /= EVAL_N_AR;
        cJSON_AddNumberToObject(e, "n_gt", ng);
        cJSON_AddNumberToObject(e, "n_pred", (double)a->cls_pred[c]);
        cJSON_AddNumberToObject(e, "tp", (double)a->cls_tp[c]);
        cJSON_AddNumberToObject(e, "tp_strict", (double)a->cls_tp_strict[c]);
        cJSON_AddNumberToObject(e, "recall", ng ? a->cls_tp[c] / ng : 0);
        cJSON_AddNumberToObject(e, "strict_recall", ng ? a->cls_tp_strict[c] / ng : 0);
        cJSON_AddNumberToObject(e, "ar", car);
        if (ng) ar_cls += car, n_cls++;
    }
    cJSON_AddNumberToObject(o, "ar_class_mean", n_cls ? ar_cls / n_cls : 0);
    cJSON *ci = cJSON_AddObjectToObject(o, "ci95");
    for (int k = 0; k < 7 && ci; k++) {
        double lo, hi;
        eval_ci_mean(a->s[k], a->sq[k], n, &lo, &hi);
        add_pair(ci, names[k], lo, hi);
    }
    return o;
}
