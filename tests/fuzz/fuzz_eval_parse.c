/* libFuzzer target for the parsers of model output (any text is legal input):
 *  - COCO detections (src/eval/metrics.c eval_coco_parse: box_2d arrays and their variants): zero or more, never an
 *    error, every box inside the image, with a COCO class and more than 1 px on each side; the detections through
 *    the scorer;
 *  - the same text through the VQA normalizations;
 *  - segmentation polygons (src/report/segment.c rp_parse_polygons): zero polygons with a reason, or polygons of
 *    at least 3 points inside the image.
 * metrics.c is compiled in (this target links g4c_report, not g4c_eval). */
#include "eval/metrics.c"
#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 200000) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    const int w = 1 + (size ? data[0] : 0) * 7, h = 1 + (size > 1 ? data[1] : 0) * 5;
    eval_box *b = NULL;
    const int n = eval_coco_parse(text, w, h, &b);
    if (n < 0) __builtin_trap(); /* only when memory runs out */
    for (int i = 0; i < n; i++)
        if (b[i].cls < 0 || b[i].cls >= EVAL_COCO_N_CLASSES || b[i].x1 < 0 || b[i].y1 < 0 || b[i].x2 > w ||
            b[i].y2 > h || b[i].x2 <= b[i].x1 + 1 || b[i].y2 <= b[i].y1 + 1)
            __builtin_trap();
    /* score the detections against themselves: every one is a true positive */
    eval_coco_image r;
    int *st = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (st && n <= 2000 && eval_coco_score(b, n, b, n, &r, st, NULL, NULL) == G4C_OK) {
        if (r.tp_strict > n || r.tp < r.tp_strict || r.precision > 1 || r.recall > 1) __builtin_trap();
        if (n && r.tp_strict == 0) __builtin_trap();
    }
    free(st);
    free(b);
    /* VQA: answers are a few words; the normalizations cost words x 150 string compares, so they see the first
     * 160 bytes */
    if (size > 160) text[160] = 0;
    char *p = eval_vqa_prediction(text), *s = eval_vqa_normalize(text);
    const char *answers[2] = {p ? p : "", s ? s : ""};
    const double acc = eval_vqa_accuracy(text, answers, 2);
    if (acc < 0 || acc > 1) __builtin_trap();
    char lab[64];
    (void)eval_coco_label(text, lab, sizeof lab);
    if (size > 160) text[160] = (char)data[160]; /* the polygons see it all again */
    rp_polygon *pg = NULL;
    char why[160];
    const int npg = rp_parse_polygons(text, w, h, &pg, why, sizeof why);
    if (npg < 0 || (npg == 0 && (pg || !why[0]))) __builtin_trap(); /* < 0 only when memory runs out */
    for (int k = 0; k < npg; k++) {
        if (pg[k].n < 3 || !pg[k].xy) __builtin_trap();
        for (int i = 0; i < pg[k].n; i++)
            if (!(pg[k].xy[2 * i] >= 0 && pg[k].xy[2 * i] <= w && pg[k].xy[2 * i + 1] >= 0 &&
                  pg[k].xy[2 * i + 1] <= h))
                __builtin_trap();
    }
    rp_polygons_free(pg, npg);
    free(p);
    free(s);
    free(text);
    return 0;
}
