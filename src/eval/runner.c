/* The crash-safe benchmark loop and its reports.
 *   RUN/run.json       what the run is (task, sample ids, backend): --resume refuses another run's folder
 *   RUN/results.jsonl  one line per finished sample (id, raw response, tokens, time), appended and fsync'd before
 *                      the next sample starts; --resume skips the ids it holds and drops a torn last line
 *   RUN/samples.jsonl  per-sample records (prediction, ground truth, status, time, tokens, tok/s)
 *   RUN/metrics.json   the metrics (docs/EVAL.md lists the keys)
 *   RUN/summary.md     the same for people
 * The last three are written whole to a temporary file, fsync'd and renamed over the old one. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/eval.h"

char *eval_prompt(eval_task task, const eval_sample *s) {
    if (task == EVAL_COCO) return strdup(EVAL_COCO_PROMPT);
    const char *q = s->question ? s->question : "";
    size_t n = strlen(EVAL_VQA_PROMPT_FMT) + strlen(q) + 1;
    char *p = malloc(n);
    if (p) snprintf(p, n, EVAL_VQA_PROMPT_FMT, q);
    return p;
}

/* ---- files ---- */

static g4c_status mkdir_p(const char *dir, g4c_err *err) {
    char *p = strdup(dir);
    if (!p) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            g4c_status st = G4C_FAIL(err, G4C_E_IO, "cannot create the folder %s: %s", p, strerror(errno));
            free(p);
            return st;
        }
        if (!c) break;
        *s = c;
    }
    free(p);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return G4C_FAIL(err, G4C_E_IO, "%s is not a folder", dir);
    return G4C_OK;
}

static g4c_status write_all(int fd, const char *buf, size_t n, const char *path, g4c_err *err) {
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return G4C_FAIL(err, G4C_E_IO, "cannot write %s: %s", path, strerror(errno));
        buf += w, n -= (size_t)w;
    }
    return G4C_OK;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) fsync(fd), close(fd);
}

/* temp file + fsync + rename + fsync of the folder */
static g4c_status write_atomic(const char *dir, const char *name, const char *data, size_t n, g4c_err *err) {
    char path[4096], tmp[4112];
    G4C_TRY(g4c_path_join(path, sizeof path, dir, name, err));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return G4C_FAIL(err, G4C_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    g4c_status st = write_all(fd, data, n, tmp, err);
    if (st == G4C_OK && fsync(fd) != 0) st = G4C_FAIL(err, G4C_E_IO, "cannot sync %s: %s", tmp, strerror(errno));
    close(fd);
    if (st == G4C_OK && rename(tmp, path) != 0)
        st = G4C_FAIL(err, G4C_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != G4C_OK) unlink(tmp);
    else fsync_dir(dir);
    return st;
}

static g4c_status write_json_atomic(const char *dir, const char *name, const cJSON *j, g4c_err *err) {
    char *s = cJSON_Print(j);
    if (!s) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) { free(s); return G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); }
    t[n] = '\n', t[n + 1] = 0;
    g4c_status st = write_atomic(dir, name, t, n + 1, err);
    free(t);
    return st;
}

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = (b->n + n + 1) * 2;
        char *g = realloc(b->p, c);
        if (!g) { b->oom = 1; return; }
        b->p = g, b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ---- records ---- */

static const char *rec_response(const cJSON *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "response");
    if (!cJSON_IsString(v)) v = cJSON_GetObjectItemCaseSensitive(r, "answer");
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* the sample a record names: "key", then question_id / image_id (by task), then "id" */
static int rec_sample(const eval_set *set, const cJSON *r) {
    const char *names[] = {"key", set->task == EVAL_VQA ? "question_id" : "image_id", "id"};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, names[i]);
        char buf[40];
        const char *k = NULL;
        if (cJSON_IsString(v)) k = v->valuestring;
        else if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) {
            snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
            k = buf;
        }
        if (k) return eval_set_find(set, k);
    }
    return -2; /* no id at all */
}

static void copy_num(cJSON *dst, const cJSON *src, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, key);
    if (cJSON_IsNumber(v)) cJSON_AddNumberToObject(dst, key, v->valuedouble);
}

static cJSON *box_json(const eval_box *b) {
    cJSON *a = cJSON_CreateArray();
    const double v[4] = {b->x1, b->y1, b->x2, b->y2};
    for (int k = 0; k < 4 && a; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(round(v[k] * 100) / 100));
    return a;
}

typedef struct {
    eval_vqa_acc vqa;
    eval_coco_acc coco;
    double time_ms, gen_tokens;
    int n_timed;
} scores;

/* Score one sample's record into the accumulators; with out, also build its per-sample report line. */
static g4c_status score_one(eval_set *set, int i, const cJSON *rec, scores *sc, cJSON **out, g4c_err *err) {
    eval_sample *s = &set->s[i];
    const char *resp = rec_response(rec);
    cJSON *o = out ? cJSON_CreateObject() : NULL;
    if (out && !o) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    if (o) {
        cJSON_AddStringToObject(o, "key", s->key);
        if (s->question_id >= 0) cJSON_AddNumberToObject(o, "question_id", (double)s->question_id);
        if (s->image_id >= 0) cJSON_AddNumberToObject(o, "image_id", (double)s->image_id);
        cJSON_AddStringToObject(o, "image", s->image);
    }
    g4c_status st = G4C_OK;
    if (set->task == EVAL_VQA) {
        char *pred = eval_vqa_prediction(resp);
        if (!pred) { cJSON_Delete(o); return G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); }
        const int strict = eval_vqa_strict_match(pred, s->mc_answer);
        const double acc = eval_vqa_accuracy(pred, (const char *const *)s->answers, s->n_answers);
        st = eval_vqa_acc_add(&sc->vqa, strict, acc, s->qtype, s->atype, err);
        if (o) {
            cJSON_AddStringToObject(o, "question", s->question);
            cJSON_AddStringToObject(o, "response", resp);
            cJSON_AddStringToObject(o, "prediction", pred);
            cJSON_AddStringToObject(o, "answer", s->mc_answer);
            cJSON *a = cJSON_AddArrayToObject(o, "answers");
            for (int k = 0; k < s->n_answers && a; k++) cJSON_AddItemToArray(a, cJSON_CreateString(s->answers[k]));
            if (s->qtype) cJSON_AddStringToObject(o, "question_type", s->qtype);
            if (s->atype) cJSON_AddStringToObject(o, "answer_type", s->atype);
            cJSON_AddNumberToObject(o, "strict", strict);
            cJSON_AddNumberToObject(o, "vqa", acc);
        }
        free(pred);
    } else {
        if ((st = eval_sample_size(s, err)) != G4C_OK) { cJSON_Delete(o); return st; }
        eval_box *pb = NULL;
        const int np = eval_coco_parse(resp, s->width, s->height, &pb);
        int *status = malloc(sizeof(int) * (size_t)(np > 0 ? np : 1));
        double *iou = malloc(sizeof(double) * (size_t)(np > 0 ? np : 1));
        eval_coco_image r;
        if (np < 0 || !status || !iou || eval_coco_score(pb, np, s->gt, s->n_gt, &r, status, NULL, iou) != G4C_OK)
            st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
        if (st == G4C_OK) eval_coco_acc_add(&sc->coco, &r);
        if (st == G4C_OK && o) {
            cJSON_AddNumberToObject(o, "width", s->width);
            cJSON_AddNumberToObject(o, "height", s->height);
            cJSON_AddStringToObject(o, "response", resp);
            cJSON *pa = cJSON_AddArrayToObject(o, "predictions");
            for (int k = 0; k < np && pa; k++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "label", eval_coco_names[pb[k].cls]);
                cJSON_AddItemToObject(e, "box", box_json(&pb[k]));
                cJSON_AddStringToObject(e, "status", eval_status_names[status[k]]);
                cJSON_AddNumberToObject(e, "iou", round(iou[k] * 1e4) / 1e4);
                cJSON_AddItemToArray(pa, e);
            }
            cJSON *ga = cJSON_AddArrayToObject(o, "ground_truth");
            for (int k = 0; k < s->n_gt && ga; k++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "label", eval_coco_names[s->gt[k].cls]);
                cJSON_AddItemToObject(e, "box", box_json(&s->gt[k]));
                cJSON_AddItemToArray(ga, e);
            }
            cJSON_AddNumberToObject(o, "n_pred", r.n_pred);
            cJSON_AddNumberToObject(o, "n_gt", r.n_gt);
            cJSON_AddNumberToObject(o, "tp", r.tp);
            cJSON_AddNumberToObject(o, "tp_strict", r.tp_strict);
            cJSON_AddNumberToObject(o, "precision", r.precision);
            cJSON_AddNumberToObject(o, "recall", r.recall);
            cJSON_AddNumberToObject(o, "f1", r.f1);
            cJSON_AddNumberToObject(o, "strict_precision", r.strict_precision);
            cJSON_AddNumberToObject(o, "strict_recall", r.strict_recall);
            cJSON_AddNumberToObject(o, "strict_f1", r.strict_f1);
            cJSON_AddNumberToObject(o, "mean_tp_iou", r.mean_tp_iou);
        }
        free(pb);
        free(status);
        free(iou);
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "time_ms");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(rec, "gen_tokens");
    if (cJSON_IsNumber(t) && cJSON_IsNumber(g)) {
        sc->time_ms += t->valuedouble;
        sc->gen_tokens += g->valuedouble;
        sc->n_timed++;
    }
    if (o) {
        copy_num(o, rec, "prompt_tokens");
        copy_num(o, rec, "gen_tokens");
        copy_num(o, rec, "time_ms");
        copy_num(o, rec, "tok_s");
        if (st != G4C_OK) cJSON_Delete(o);
        else *out = o;
    }
    return st;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void summary_md(sbuf *b, const eval_set *set, const cJSON *m, const scores *sc) {
#define NUM(k) num(m, k)
    if (set->task == EVAL_VQA) {
        sb_printf(b, "# VQA: %d questions\n\n| metric | value | 95%% CI |\n|---|---|---|\n", (int)NUM("n"));
        const char *ks[] = {"strict_accuracy", "vqa_accuracy"};
        for (int i = 0; i < 2; i++) {
            char ck[64];
            snprintf(ck, sizeof ck, "%s_ci95", ks[i]);
            const cJSON *ci = cJSON_GetObjectItemCaseSensitive(m, ck);
            sb_printf(b, "| %s | %.4f | %.4f – %.4f |\n", ks[i], NUM(ks[i]),
                      cJSON_GetArrayItem(ci, 0) ? cJSON_GetArrayItem(ci, 0)->valuedouble : 0,
                      cJSON_GetArrayItem(ci, 1) ? cJSON_GetArrayItem(ci, 1)->valuedouble : 0);
        }
        const char *gs[] = {"per_answer_type", "per_question_type"};
        for (int i = 0; i < 2; i++) {
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(m, gs[i]), *e;
            if (!g || !g->child) continue;
            sb_printf(b, "\n## %s\n\n| type | n | strict | vqa |\n|---|---|---|---|\n", gs[i]);
            cJSON_ArrayForEach(e, g) {
                const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "n");
                const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "strict_accuracy");
                const cJSON *q = cJSON_GetObjectItemCaseSensitive(e, "vqa_accuracy");
                sb_printf(b, "| %.60s | %d | %.4f | %.4f |\n", e->string, n ? n->valueint : 0,
                          s ? s->valuedouble : 0, q ? q->valuedouble : 0);
            }
        }
    } else {
        sb_printf(b, "# COCO class-aware localization: %d images\n\n", (int)NUM("n_images"));
        sb_printf(b, "| | precision | recall | F1 |\n|---|---|---|---|\n| coarse (IoU 0.3) | %.4f | %.4f | %.4f |\n"
                     "| strict (IoU 0.5) | %.4f | %.4f | %.4f |\n\n",
                  NUM("precision"), NUM("recall"), NUM("f1"), NUM("strict_precision"), NUM("strict_recall"),
                  NUM("strict_f1"));
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(m, "status_counts");
        sb_printf(b, "mean IoU of strict matches %.4f · AR@[.50:.95] %.4f · predictions %d (tp %d, near %d, class %d, "
                     "fp %d) · ground truth %d · coarse TP %d\n",
                  NUM("mean_tp_iou"), NUM("ar"), (int)NUM("total_pred"), (int)num(st, "tp"), (int)num(st, "near"),
                  (int)num(st, "class"), (int)num(st, "fp"), (int)NUM("total_gt"), (int)NUM("total_tp"));
        const cJSON *pc = cJSON_GetObjectItemCaseSensitive(m, "per_class"), *e;
        if (pc && pc->child) {
            sb_puts(b, "\n## per class\n\n| class | GT | predicted | recall | strict recall | AR |\n|---|---|---|---|---|---|\n");
            cJSON_ArrayForEach(e, pc) {
                double x[6];
                const char *k[6] = {"n_gt", "n_pred", "recall", "strict_recall", "ar", "tp"};
                for (int i = 0; i < 6; i++) {
                    const cJSON *y = cJSON_GetObjectItemCaseSensitive(e, k[i]);
                    x[i] = y ? y->valuedouble : 0;
                }
                sb_printf(b, "| %s | %d | %d | %.4f | %.4f | %.4f |\n", e->string, (int)x[0], (int)x[1], x[2], x[3], x[4]);
            }
        }
    }
    if (sc->n_timed)
        sb_printf(b, "\n## speed\n\n%d samples timed: %.2f s per sample, %.1f generated tokens per second\n",
                  sc->n_timed, sc->time_ms / sc->n_timed / 1e3,
                  sc->time_ms > 0 ? sc->gen_tokens / (sc->time_ms / 1e3) : 0);
    sb_puts(b, "\nDefinitions: docs/EVAL.md. Per-sample records: samples.jsonl.\n");
#undef NUM
}

/* recs[i]: sample i's record or NULL (not scored). Writes samples.jsonl, metrics.json, summary.md. */
static g4c_status finalize(eval_set *set, cJSON **recs, const char *out_dir, cJSON **metrics_out, g4c_err *err) {
    scores sc;
    memset(&sc, 0, sizeof sc);
    sbuf lines = {0};
    g4c_status st = G4C_OK;
    for (int i = 0; i < set->n && st == G4C_OK; i++) {
        if (!recs[i]) continue;
        cJSON *o = NULL;
        if ((st = score_one(set, i, recs[i], &sc, &o, err)) != G4C_OK) break;
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!s) { st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); break; }
        sb_puts(&lines, s);
        sb_puts(&lines, "\n");
        free(s);
    }
    cJSON *m = NULL;
    if (st == G4C_OK) m = set->task == EVAL_VQA ? eval_vqa_metrics(&sc.vqa) : eval_coco_metrics(&sc.coco);
    if (st == G4C_OK && (!m || lines.oom)) st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    if (st == G4C_OK) st = write_atomic(out_dir, "samples.jsonl", lines.p ? lines.p : "", lines.n, err);
    if (st == G4C_OK) st = write_json_atomic(out_dir, "metrics.json", m, err);
    if (st == G4C_OK) {
        sbuf md = {0};
        summary_md(&md, set, m, &sc);
        st = md.oom ? G4C_FAIL(err, G4C_E_NOMEM, "out of memory") : write_atomic(out_dir, "summary.md", md.p, md.n, err);
        free(md.p);
    }
    free(lines.p);
    eval_vqa_acc_free(&sc.vqa);
    if (st == G4C_OK && metrics_out) *metrics_out = m;
    else cJSON_Delete(m);
    return st;
}

g4c_status eval_score_file(eval_set *set, const char *predictions, const char *out_dir, g4c_err *err) {
    G4C_TRY(eval_set_index(set, err));
    char *buf = NULL;
    size_t len = 0;
    G4C_TRY(g4c_read_file(predictions, EVAL_JSON_MAX, &buf, &len, err));
    cJSON **recs = calloc((size_t)(set->n ? set->n : 1), sizeof *recs);
    cJSON *arr = NULL;
    g4c_status st = recs ? G4C_OK : G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    int line = 0, n_scored = 0;
    size_t i0 = 0;
    while (i0 < len && (buf[i0] == ' ' || buf[i0] == '\n' || buf[i0] == '\r' || buf[i0] == '\t')) i0++;
    if (st == G4C_OK && i0 < len && buf[i0] == '[') { /* a JSON array (the VQA challenge's results format) */
        arr = cJSON_ParseWithLength(buf, len);
        if (!cJSON_IsArray(arr)) st = G4C_FAIL(err, G4C_E_FORMAT, "%s: not a valid JSON array", predictions);
    }
    const cJSON *it = arr ? arr->child : NULL;
    for (char *p = buf; st == G4C_OK && (arr ? it != NULL : p < buf + len);) {
        cJSON *r;
        line++;
        if (arr) {
            r = cJSON_Duplicate(it, 1);
            it = it->next;
        } else {
            char *nl = memchr(p, '\n', (size_t)(buf + len - p));
            char *end = nl ? nl : buf + len;
            char *q = p;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
            if (q == end) { p = end + 1; continue; }
            r = cJSON_ParseWithLength(p, (size_t)(end - p));
            p = end + 1;
        }
        if (!cJSON_IsObject(r)) {
            cJSON_Delete(r);
            st = G4C_FAIL(err, G4C_E_FORMAT, "%s: record %d is not a JSON object", predictions, line);
            break;
        }
        int i = rec_sample(set, r);
        if (i < 0) {
            st = G4C_FAIL(err, G4C_E_FORMAT, i == -2 ? "%s: record %d has no id (key, %s or id)"
                                                      : "%s: record %d: its id (key, %s or id) is not in the data",
                          predictions, line, set->task == EVAL_VQA ? "question_id" : "image_id");
            cJSON_Delete(r);
            break;
        }
        if (recs[i]) cJSON_Delete(recs[i]); /* the last record of an id wins */
        else n_scored++;
        recs[i] = r;
    }
    free(buf);
    cJSON_Delete(arr);
    if (st == G4C_OK && !n_scored) st = G4C_FAIL(err, G4C_E_FORMAT, "%s: no predictions", predictions);
    if (st == G4C_OK) st = mkdir_p(out_dir, err);
    if (st == G4C_OK) st = finalize(set, recs, out_dir, NULL, err);
    for (int i = 0; recs && i < set->n; i++) cJSON_Delete(recs[i]);
    free(recs);
    return st;
}

/* ---- the run ---- */

static unsigned long long fnv1a(unsigned long long h, const char *s) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* separator */
}

static void fmt_hms(char *b, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(b, n, "%ld:%02ld", t / 60, t % 60);
}

static void progress(eval_task task, int done, int total, int n_new, double t0, const scores *sc) {
    const int width = 24;
    const int fill = total ? (int)((double)done / total * width) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '-';
    bar[width] = 0;
    const double el = (g4c_time_ms() - t0) / 1e3, rate = n_new > 0 && el > 0 ? n_new / el : 0;
    char eta[32], acc[96];
    fmt_hms(eta, sizeof eta, rate > 0 ? (total - done) / rate : 0);
    if (task == EVAL_VQA)
        snprintf(acc, sizeof acc, "running accuracy %.3f (vqa %.3f)", sc->vqa.n ? sc->vqa.strict / sc->vqa.n : 0,
                 sc->vqa.n ? sc->vqa.vqa / sc->vqa.n : 0);
    else
        snprintf(acc, sizeof acc, "running strict F1 %.3f (coarse %.3f)",
                 sc->coco.n ? sc->coco.s[5] / sc->coco.n : 0, sc->coco.n ? sc->coco.s[2] / sc->coco.n : 0);
    fprintf(stderr, "\r[%d/%d] |%s| %3d%% %.2f it/s ETA %s | %s\033[K", done, total, bar,
            total ? done * 100 / total : 100, rate, eta, acc);
    fflush(stderr);
}

/* Read RUN/results.jsonl: records of finished samples go to recs; a torn last line is cut off the file. */
static g4c_status load_results(eval_set *set, const char *path, cJSON **recs, int *n_done, g4c_err *err) {
    *n_done = 0;
    if (access(path, F_OK) != 0) return G4C_OK;
    char *buf = NULL;
    size_t len = 0;
    G4C_TRY(g4c_read_file(path, EVAL_JSON_MAX, &buf, &len, err));
    size_t good = 0; /* bytes of complete lines */
    int line = 0;
    g4c_status st = G4C_OK;
    for (size_t p = 0; p < len && st == G4C_OK;) {
        char *nl = memchr(buf + p, '\n', len - p);
        if (!nl) break; /* torn: the process died while writing it */
        line++;
        const size_t e = (size_t)(nl - buf);
        cJSON *r = cJSON_ParseWithLength(buf + p, e - p);
        const int i = cJSON_IsObject(r) ? rec_sample(set, r) : -3;
        if (i == -3) st = G4C_FAIL(err, G4C_E_FORMAT, "%s: line %d is not a JSON object (a damaged file?)", path, line);
        else if (i < 0) st = G4C_FAIL(err, G4C_E_FORMAT, "%s: line %d names a sample that is not in this run", path, line);
        else if (recs[i]) st = G4C_FAIL(err, G4C_E_FORMAT, "%s: line %d repeats sample %s", path, line, set->s[i].key);
        if (st != G4C_OK) { cJSON_Delete(r); break; }
        recs[i] = r;
        (*n_done)++;
        p = e + 1;
        good = p;
    }
    free(buf);
    if (st == G4C_OK && good < len) {
        if (truncate(path, (off_t)good) != 0)
            return G4C_FAIL(err, G4C_E_IO, "cannot cut the torn last line of %s: %s", path, strerror(errno));
        g4c_log(G4C_LOG_INFO, "%s: dropped a torn last line (%zu bytes)", path, len - good);
    }
    return st;
}

static g4c_status check_run_json(const char *dir, const cJSON *want, int resume, int has_results, g4c_err *err) {
    char path[4096];
    G4C_TRY(g4c_path_join(path, sizeof path, dir, "run.json", err));
    if (access(path, F_OK) == 0) {
        if (!resume && has_results)
            return G4C_FAIL(err, G4C_E_ARG, "%s already holds results: pass --resume to continue it, or choose "
                                            "another --out", dir);
        cJSON *have = NULL;
        G4C_TRY(eval_json_read(&have, path, err));
        const char *keys[] = {"task", "samples_hash", "n_samples", "backend"};
        for (int k = 0; k < 4; k++) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(have, keys[k]);
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(want, keys[k]);
            if (!cJSON_Compare(a, b, 1)) {
                cJSON_Delete(have);
                return G4C_FAIL(err, G4C_E_ARG, "%s was made by another run (its %s differs): use the same data, "
                                                "--n, --seed and model, or another --out", dir, keys[k]);
            }
        }
        cJSON_Delete(have);
        return G4C_OK;
    }
    if (has_results)
        return G4C_FAIL(err, G4C_E_ARG, "%s holds results.jsonl but no run.json: choose another --out", dir);
    return write_json_atomic(dir, "run.json", want, err);
}

g4c_status eval_run(eval_set *set, const eval_run_opts *o, g4c_err *err) {
    G4C_TRY(eval_set_index(set, err));
    G4C_TRY(mkdir_p(o->out_dir, err));
    char path[4096];
    G4C_TRY(g4c_path_join(path, sizeof path, o->out_dir, "results.jsonl", err));
    unsigned long long h = 0xcbf29ce484222325ull;
    for (int i = 0; i < set->n; i++) h = fnv1a(h, set->s[i].key);
    char hs[24];
    snprintf(hs, sizeof hs, "%016llx", h);
    cJSON *want = cJSON_CreateObject();
    if (!want) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    cJSON_AddStringToObject(want, "task", set->task == EVAL_VQA ? "vqa" : "coco");
    cJSON_AddNumberToObject(want, "n_samples", set->n);
    cJSON_AddStringToObject(want, "samples_hash", hs);
    cJSON_AddStringToObject(want, "backend", o->backend_name ? o->backend_name : "");
    struct stat sb;
    const int has_results = stat(path, &sb) == 0 && sb.st_size > 0;
    g4c_status st = check_run_json(o->out_dir, want, o->resume, has_results, err);
    cJSON_Delete(want);
    if (st != G4C_OK) return st;
    cJSON **recs = calloc((size_t)(set->n ? set->n : 1), sizeof *recs);
    if (!recs) return G4C_FAIL(err, G4C_E_NOMEM, "out of memory");
    int n_done = 0;
    st = load_results(set, path, recs, &n_done, err);
    const int show = o->progress < 0 ? isatty(2) : o->progress;
    scores sc;
    memset(&sc, 0, sizeof sc);
    for (int i = 0; i < set->n && st == G4C_OK; i++)
        if (recs[i]) st = score_one(set, i, recs[i], &sc, NULL, err);
    int fd = -1;
    if (st == G4C_OK) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0) st = G4C_FAIL(err, G4C_E_IO, "cannot open %s: %s", path, strerror(errno));
    }
    const double t0 = g4c_time_ms();
    int n_new = 0;
    if (show && st == G4C_OK) progress(set->task, n_done, set->n, 0, t0, &sc);
    for (int i = 0; i < set->n && st == G4C_OK; i++) {
        if (recs[i]) continue;
        if (o->cancel && *o->cancel) {
            st = G4C_FAIL(err, G4C_E_IO, "interrupted after %d of %d samples (--resume continues)", n_done, set->n);
            break;
        }
        eval_sample *s = &set->s[i];
        char *prompt = eval_prompt(set->task, s);
        eval_answer ans = {0};
        if (!prompt) { st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); break; }
        const double ts = g4c_time_ms();
        const int max_tokens = o->max_tokens > 0 ? o->max_tokens
                               : set->task == EVAL_VQA ? EVAL_VQA_MAX_TOKENS : EVAL_COCO_MAX_TOKENS;
        st = o->backend(o->ctx, s, prompt, max_tokens, &ans, err);
        free(prompt);
        if (st != G4C_OK) { free(ans.text); break; }
        if (ans.ms <= 0) ans.ms = g4c_time_ms() - ts;
        cJSON *r = cJSON_CreateObject();
        if (!r) { free(ans.text); st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); break; }
        cJSON_AddStringToObject(r, "key", s->key);
        if (s->question_id >= 0) cJSON_AddNumberToObject(r, "question_id", (double)s->question_id);
        if (s->image_id >= 0) cJSON_AddNumberToObject(r, "image_id", (double)s->image_id);
        cJSON_AddStringToObject(r, "response", ans.text ? ans.text : "");
        cJSON_AddNumberToObject(r, "prompt_tokens", ans.n_prompt);
        cJSON_AddNumberToObject(r, "gen_tokens", ans.n_gen);
        cJSON_AddNumberToObject(r, "time_ms", round(ans.ms * 100) / 100);
        cJSON_AddNumberToObject(r, "tok_s", ans.ms > 0 ? round(ans.n_gen / (ans.ms / 1e3) * 100) / 100 : 0);
        free(ans.text);
        char *line = cJSON_PrintUnformatted(r);
        size_t ln = line ? strlen(line) : 0;
        char *l2 = line ? realloc(line, ln + 2) : NULL;
        if (!l2) { free(line); cJSON_Delete(r); st = G4C_FAIL(err, G4C_E_NOMEM, "out of memory"); break; }
        l2[ln] = '\n', l2[ln + 1] = 0;
        st = write_all(fd, l2, ln + 1, path, err); /* one write: a record is whole or torn, never interleaved */
        free(l2);
        if (st == G4C_OK && fdatasync(fd) != 0) st = G4C_FAIL(err, G4C_E_IO, "cannot sync %s: %s", path, strerror(errno));
        if (st != G4C_OK) { cJSON_Delete(r); break; }
        recs[i] = r;
        n_done++, n_new++;
        st = score_one(set, i, r, &sc, NULL, err);
        if (show) progress(set->task, n_done, set->n, n_new, t0, &sc);
    }
    if (fd >= 0) close(fd);
    if (show) fputc('\n', stderr);
    if (st == G4C_OK) st = finalize(set, recs, o->out_dir, NULL, err);
    for (int i = 0; i < set->n; i++) cJSON_Delete(recs[i]);
    free(recs);
    eval_vqa_acc_free(&sc.vqa);
    return st;
}
