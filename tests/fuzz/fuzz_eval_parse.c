/* libFuzzer target: any model output -> zero or more COCO detections, never an error (src/eval/metrics.c
 * eval_coco_parse), every box inside the image, with a COCO class and more than 1 px on each side; the same text
 * through the VQA normalizations, and the detections through the scorer. metrics.c is compiled in (the fuzz
 * targets link g4c_model, g4c_image and g4c_tokenizer only). */
#include "eval/metrics.c"

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
    char *p = eval_vqa_prediction(text), *s = eval_vqa_normalize(text);
    const char *answers[3] = {text, p ? p : "", s ? s : ""};
    const double acc = eval_vqa_accuracy(text, answers, 3);
    if (acc < 0 || acc > 1) __builtin_trap();
    char lab[64];
    (void)eval_coco_label(text, lab, sizeof lab);
    free(p);
    free(s);
    free(text);
    return 0;
}
