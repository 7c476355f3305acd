/* eval: the notebook's two benchmarks as a library (issue 6, docs/EVAL.md).
 *   VQA  — VQAv2 questions: strict exact match against multiple_choice_answer (the notebook) and the official VQA
 *          accuracy (the VQA evaluation code's answer normalization, min(#humans/3, 1) over the 10 leave-one-out
 *          subsets), per question type and answer type, with 95% confidence intervals.
 *   COCO — class-aware localization: the model returns a JSON array of {"label", "box_2d": [y0, x0, y1, x1]}
 *          (0..1000), matched greedily by IoU within a class at 0.3 (coarse) and 0.5 (strict); each prediction is
 *          tp / near / class / fp; recall at IoU 0.50:0.05:0.95 and per class.
 * metrics.c: parsing and scoring (pure functions, no I/O); datasets.c: VQAv2 / COCO / JSONL manifests and
 * deterministic sampling; runner.c: the crash-safe loop and the reports; endpoint.c: an OpenAI chat-completions
 * client over plain HTTP. The model itself is reached through a callback (eval_backend), so this library does not
 * depend on the runtime. */
#ifndef G4C_EVAL_EVAL_H
#define G4C_EVAL_EVAL_H

#include <stdio.h>

#include "formats/formats.h"

/* ---- the notebook's prompts ---- */
#define EVAL_VQA_PROMPT_FMT                                                                                   \
    "Answer this question about the image with a single short answer (1-3 words max).\nQuestion: %s\nAnswer:"
#define EVAL_VQA_MAX_TOKENS 20
#define EVAL_COCO_PROMPT                                                                                      \
    "Detect the clearly visible medium-to-large objects in this image and return bounding boxes.\n"           \
    "Return ONLY a JSON array \xe2\x80\x94 no explanation, no markdown.\n"                                    \
    "Each element: {\"label\": \"<coco_class>\", \"box_2d\": [y_min, x_min, y_max, x_max]}\n"                  \
    "Coordinates are integers in [0, 1000] (normalized to image size).\n"                                     \
    "Use only standard COCO class names.\n"                                                                   \
    "Skip tiny distant instances; focus on objects with clear boundaries."
#define EVAL_COCO_MAX_TOKENS 1024

#define EVAL_COCO_N_CLASSES 80
#define EVAL_COCO_MIN_AREA (32.0 * 32.0) /* ground truth kept when bbox w x h >= 32^2 */
#define EVAL_COCO_MIN_OBJECTS 2          /* eval samples images with at least this many kept objects */
#define EVAL_IOU_COARSE 0.3
#define EVAL_IOU_STRICT 0.5
#define EVAL_N_AR 10                     /* IoU 0.50, 0.55, ..., 0.95 */
#define EVAL_JSON_MAX ((size_t)2 << 30)  /* annotation files (VQAv2 train annotations are ~ 350 MB) */
#define EVAL_MAX_RESPONSE ((size_t)1 << 20) /* a model response longer than this is cut (never an error) */

typedef enum { EVAL_VQA = 0, EVAL_COCO = 1 } eval_task;

/* ---- metrics.c: VQA ---- */
/* The notebook's prediction: the response stripped, its first line, stripped. malloc'd. */
char *eval_vqa_prediction(const char *response);
/* The notebook's strict normalization: lowercase (ASCII), strip whitespace, drop one trailing '.'. malloc'd. */
char *eval_vqa_strict_norm(const char *s);
/* 1 when strict_norm(pred) equals the ground truth lowercased and stripped. */
int eval_vqa_strict_match(const char *pred, const char *mc_answer);
/* The VQA evaluation code's normalization (GT-Vision-Lab/VQA vqaEval.py): newlines/tabs -> space, strip,
 * processPunctuation, processDigitArticle (lowercase, number words -> digits, drop articles, contractions).
 * malloc'd. */
char *eval_vqa_normalize(const char *s);
/* Official accuracy of one prediction against the human answers: both sides normalized, then for each answer i
 * min(1, #(other answers equal to the prediction) / 3), averaged over i. One answer only: normalized exact match.
 * No answers: 0. */
double eval_vqa_accuracy(const char *pred, const char *const *answers, int n_answers);

typedef struct {
    char *name;
    int n;
    double strict, vqa; /* sums */
} eval_group;

typedef struct {
    int n;
    double strict, vqa, vqa_sq; /* sums */
    eval_group *qtype, *atype;
    int n_qtype, n_atype;
} eval_vqa_acc;

g4c_status eval_vqa_acc_add(eval_vqa_acc *a, double strict, double vqa, const char *qtype, const char *atype,
                            g4c_err *err);
void eval_vqa_acc_free(eval_vqa_acc *a);
/* metrics.json for VQA: strict_accuracy, vqa_accuracy, n, CIs, per_question_type, per_answer_type. */
cJSON *eval_vqa_metrics(const eval_vqa_acc *a);

/* ---- metrics.c: COCO ---- */
extern const char *const eval_coco_names[EVAL_COCO_N_CLASSES];
/* Index of an exact COCO class name, or -1. */
int eval_coco_class(const char *name);
/* The notebook's label normalization: strip, lowercase, runs of '_'/'-' -> one space, collapse whitespace, then
 * the alias table. Writes the normalized label to out (cut to size) and returns its class index, or -1 when it
 * is not one of the 80 COCO names. */
int eval_coco_label(const char *label, char *out, size_t size);

typedef struct {
    int cls;               /* 0..79 */
    double x1, y1, x2, y2; /* pixels */
} eval_box;

/* Parse a model response: strip code fences, take the span from the first '[' to the last ']', JSON-parse it;
 * each element's label (label/class/name/object) and box (box_2d/box/bbox/bounding_box: 4 numbers, y first,
 * 0..1000) scaled to width x height pixels, clipped, boxes <= 1 px wide or tall dropped, labels normalized and
 * non-COCO labels dropped. Any text gives zero or more boxes: never an error. *out is malloc'd (NULL when 0).
 * Returns the count, or -1 only when memory runs out. */
int eval_coco_parse(const char *response, int width, int height, eval_box **out);

double eval_iou(const eval_box *a, const eval_box *b);

enum { EVAL_ST_TP = 0, EVAL_ST_NEAR, EVAL_ST_CLASS, EVAL_ST_FP, EVAL_N_ST };
extern const char *const eval_status_names[EVAL_N_ST];

/* Greedy class-aware matching at IoU >= thr: same-class pairs only, by descending IoU (ties: lower prediction
 * index, then lower ground-truth index), each used once. match_pred[i] = matched gt index or -1 (may be NULL);
 * match_iou[i] = its IoU (may be NULL). Returns the number of matches. */
int eval_coco_match(const eval_box *pred, int np, const eval_box *gt, int ng, double thr, int *match_pred,
                    double *match_iou);

typedef struct {
    int n_pred, n_gt;
    int tp, tp_strict;
    double precision, recall, f1, strict_precision, strict_recall, strict_f1, mean_tp_iou;
    int tp_at[EVAL_N_AR];
    int st[EVAL_N_ST];
    int cls_gt[EVAL_COCO_N_CLASSES], cls_pred[EVAL_COCO_N_CLASSES];
    int cls_tp[EVAL_COCO_N_CLASSES], cls_tp_strict[EVAL_COCO_N_CLASSES];
    int cls_tp_at[EVAL_COCO_N_CLASSES][EVAL_N_AR];
} eval_coco_image;

/* Score one image. status[i] (may be NULL) gets EVAL_ST_* per prediction, strict_gt[i] (may be NULL) the strictly
 * matched gt index or -1, best_iou[i] (may be NULL) the best same-class IoU. Returns G4C_E_NOMEM or G4C_OK. */
g4c_status eval_coco_score(const eval_box *pred, int np, const eval_box *gt, int ng, eval_coco_image *r,
                           int *status, int *strict_gt, double *best_iou);

typedef struct {
    int n;
    double s[7], sq[7]; /* sums / sums of squares of precision, recall, f1, strict p/r/f1, mean_tp_iou */
    long tp, tp_strict, n_pred, n_gt, st[EVAL_N_ST], tp_at[EVAL_N_AR];
    long cls_gt[EVAL_COCO_N_CLASSES], cls_pred[EVAL_COCO_N_CLASSES];
    long cls_tp[EVAL_COCO_N_CLASSES], cls_tp_strict[EVAL_COCO_N_CLASSES];
    long cls_tp_at[EVAL_COCO_N_CLASSES][EVAL_N_AR];
} eval_coco_acc;

void eval_coco_acc_add(eval_coco_acc *a, const eval_coco_image *r);
/* metrics.json for COCO: precision, recall, f1, strict_*, mean_tp_iou, total_tp, total_pred, total_gt,
 * status_counts, n_images, recall at IoU 0.50:0.05:0.95, ar, per_class, CIs. */
cJSON *eval_coco_metrics(const eval_coco_acc *a);

/* 95% confidence intervals: Wilson for a proportion (k of n), normal approximation for a mean (sum, sum of
 * squares, n), both clipped to [0, 1]. */
void eval_ci_wilson(double k, int n, double *lo, double *hi);
void eval_ci_mean(double sum, double sumsq, int n, double *lo, double *hi);

/* ---- datasets.c ---- */
typedef struct {
    char *key;             /* unique id as text: the question_id (VQA) or image_id (COCO) */
    char *image;           /* image path */
    long long image_id;    /* -1 when unknown */
    long long question_id; /* VQA; -1 when unknown */
    /* VQA */
    char *question, *mc_answer, *qtype, *atype;
    char **answers;
    int n_answers;
    /* COCO */
    int width, height;     /* 0 when unknown (read from the image when needed) */
    eval_box *gt;
    int n_gt;
} eval_sample;

typedef struct {
    eval_task task;
    eval_sample *s;
    int n;
    int *by_key; /* indices sorted by key (eval_set_index) */
} eval_set;

/* VQAv2: the official questions + annotations JSON; images are DIR/COCO_<data_subtype>_<image_id:012>.jpg. */
g4c_status eval_load_vqa(eval_set *out, const char *questions, const char *annotations, const char *images_dir,
                         g4c_err *err);
/* COCO instances_*.json; images are DIR/<file_name>. Ground truth: bbox [x, y, w, h] -> xyxy, kept when w x h >=
 * 32^2 and the category is one of the 80 names. */
g4c_status eval_load_coco(eval_set *out, const char *instances, const char *images_dir, g4c_err *err);
/* A JSONL manifest, one sample per line: VQA {"image", "question", "answers": [...], optional "id"/"question_id",
 * "answer" (else the most frequent answer), "question_type", "answer_type", "image_id"}; COCO {"image", "boxes":
 * [{"label", "bbox": [x, y, w, h]}...], optional "id"/"image_id", "width", "height"}. Image paths are relative
 * to the manifest's folder. */
g4c_status eval_load_manifest(eval_set *out, eval_task task, const char *path, g4c_err *err);
/* COCO: keep the images with at least EVAL_COCO_MIN_OBJECTS ground-truth objects. */
void eval_set_keep_eligible(eval_set *s);
/* Keep n samples chosen by a seeded shuffle (splitmix64 Fisher-Yates), in their original order; n <= 0 or
 * n >= count keeps all. */
g4c_status eval_set_sample(eval_set *s, int n, unsigned long long seed, g4c_err *err);
/* Build the key index; fails on duplicate keys. */
g4c_status eval_set_index(eval_set *s, g4c_err *err);
/* Index of the sample with this key, or -1 (after eval_set_index). */
int eval_set_find(const eval_set *s, const char *key);
void eval_set_free(eval_set *s);
/* Fill width/height from the image file when unknown. */
g4c_status eval_sample_size(eval_sample *s, g4c_err *err);
/* The built-in sample set's folder (G4C_SAMPLES overrides the compiled-in path). */
const char *eval_samples_dir(void);
/* Read a JSON file of any size up to EVAL_JSON_MAX. */
g4c_status eval_json_read(cJSON **out, const char *path, g4c_err *err);

/* ---- runner.c ---- */
typedef struct {
    char *text;        /* malloc'd response */
    int n_prompt, n_gen;
    double ms;
} eval_answer;

/* Answer one prompt about one image (a model or an endpoint). */
typedef g4c_status (*eval_backend_fn)(void *ctx, const eval_sample *s, const char *prompt, int max_tokens,
                                      eval_answer *ans, g4c_err *err);

typedef struct {
    const char *out_dir;
    int resume;
    eval_backend_fn backend;
    void *ctx;
    const char *backend_name; /* model path or endpoint + model name, recorded in run.json */
    int progress;             /* -1 auto (a terminal on stderr), 0 off, 1 on */
    volatile int *cancel;     /* stop after the current sample (Ctrl-C) */
    int max_tokens;           /* 0: the benchmark's (EVAL_VQA_MAX_TOKENS / EVAL_COCO_MAX_TOKENS) */
} eval_run_opts;

/* The prompt for a sample (malloc'd). */
char *eval_prompt(eval_task task, const eval_sample *s);
/* Run every sample not already in out_dir/results.jsonl, appending and fsyncing each, then write the reports.
 * Returns G4C_OK, or the first error (the finished samples stay on disk for --resume). */
g4c_status eval_run(eval_set *set, const eval_run_opts *o, g4c_err *err);
/* Score saved responses: each line {"question_id"|"image_id"|"id"|"key": ..., "response": "..."} (or a JSON
 * array of such objects; VQA also takes "answer"). Only listed samples are scored. */
g4c_status eval_score_file(eval_set *set, const char *predictions, const char *out_dir, g4c_err *err);

/* ---- endpoint.c ---- */
typedef struct {
    const char *url;        /* http://host[:port][/path]; /v1/chat/completions is appended unless present */
    const char *api_key;    /* Authorization: Bearer ...; may be NULL */
    const char *model_name; /* "model" field; may be NULL */
    int timeout_s;          /* per request (connect + response) */
    int retries;            /* extra attempts on connection errors and 5xx */
} eval_endpoint;

/* eval_backend_fn over an eval_endpoint (ctx). */
g4c_status eval_endpoint_answer(void *ctx, const eval_sample *s, const char *prompt, int max_tokens,
                                eval_answer *ans, g4c_err *err);
/* One HTTP/1.1 POST (plain http). *body_out is malloc'd. */
g4c_status eval_http_post(const char *url, const char *const *headers, int n_headers, const char *body,
                          size_t body_len, int timeout_s, int *status_out, char **body_out, size_t *len_out,
                          g4c_err *err);
/* Base64 (standard alphabet, padded); malloc'd, NUL-terminated. */
char *eval_base64(const unsigned char *data, size_t n);

#endif
