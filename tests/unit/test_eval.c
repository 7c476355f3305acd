/* The benchmarks' metrics on hand-computed cases (src/eval, docs/EVAL.md). */
#include <unistd.h>

#include "eval/eval.h"
#include "test.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

static int streq_free(char *got, const char *want) {
    int ok = got && !strcmp(got, want);
    if (!ok) fprintf(stderr, "  got '%s', want '%s'\n", got ? got : "(null)", want);
    free(got);
    return ok;
}

static void test_vqa_prediction(void) {
    CHECK(streq_free(eval_vqa_prediction("  Two elephants\nThere are two."), "Two elephants"));
    CHECK(streq_free(eval_vqa_prediction("\n\n  yes  \r\nno"), "yes"));
    CHECK(streq_free(eval_vqa_prediction(""), ""));
    CHECK(streq_free(eval_vqa_prediction(NULL), ""));
    CHECK(streq_free(eval_vqa_strict_norm("  YES. "), "yes"));
    CHECK(streq_free(eval_vqa_strict_norm("yes.."), "yes."));   /* one trailing '.' only */
    CHECK(streq_free(eval_vqa_strict_norm("Yes ."), "yes "));   /* strip, then the '.' */
}

static void test_vqa_strict(void) {
    CHECK(eval_vqa_strict_match("Two elephants", "2") == 0);
    CHECK(eval_vqa_strict_match("two", "2") == 0); /* strict: no number words */
    CHECK(eval_vqa_strict_match("2", "2") == 1);
    CHECK(eval_vqa_strict_match("2.", "2") == 1);
    CHECK(eval_vqa_strict_match(" Yes. ", "yes") == 1);
    CHECK(eval_vqa_strict_match("a dog", "dog") == 0);
    CHECK(eval_vqa_strict_match("", "yes") == 0);
}

static void test_vqa_normalize(void) {
    CHECK(streq_free(eval_vqa_normalize("Two"), "2"));
    CHECK(streq_free(eval_vqa_normalize("Two elephants"), "2 elephants"));
    CHECK(streq_free(eval_vqa_normalize("A dog"), "dog"));
    CHECK(streq_free(eval_vqa_normalize("the  Man\tand an apple\n"), "man and apple"));
    CHECK(streq_free(eval_vqa_normalize("dont"), "don't"));
    CHECK(streq_free(eval_vqa_normalize("Ten"), "10"));
    CHECK(streq_free(eval_vqa_normalize("none"), "0"));
    CHECK(streq_free(eval_vqa_normalize("yes."), "yes"));
    CHECK(streq_free(eval_vqa_normalize("3.5"), "3.5"));               /* a period before a digit stays */
    CHECK(streq_free(eval_vqa_normalize("hello, world"), "hello world")); /* ", " deletes the comma */
    CHECK(streq_free(eval_vqa_normalize("red,blue"), "red blue"));     /* a comma touching no space -> space */
    CHECK(streq_free(eval_vqa_normalize("3,000"), "3000"));            /* digit,digit: every mark deleted */
    CHECK(streq_free(eval_vqa_normalize("red/blue"), "red blue"));
    CHECK(streq_free(eval_vqa_normalize("(none)"), "0"));
    CHECK(streq_free(eval_vqa_normalize("it's"), "it's"));             /* ' is not punctuation there */
    CHECK(streq_free(eval_vqa_normalize("t-shirt"), "t shirt"));
    CHECK(streq_free(eval_vqa_normalize("Im"), "im"));                 /* "Im" is never reached: lowercased first */
    CHECK(streq_free(eval_vqa_normalize("U.S.A."), "usa"));
}

static void test_vqa_accuracy(void) {
    const char *twos[10] = {"2", "2", "2", "2", "2", "2", "2", "2", "2", "2"};
    CHECK(NEAR(eval_vqa_accuracy("Two elephants", twos, 10), 0));
    CHECK(NEAR(eval_vqa_accuracy("two", twos, 10), 1));
    CHECK(NEAR(eval_vqa_accuracy("2", twos, 10), 1));
    /* 2 of 10 humans said red: 2 subsets see 1 match (1/3), 8 see 2 (2/3) -> 0.6 */
    const char *rb[10] = {"red", "red", "blue", "blue", "blue", "blue", "blue", "blue", "blue", "blue"};
    CHECK(NEAR(eval_vqa_accuracy("Red", rb, 10), 0.6));
    CHECK(NEAR(eval_vqa_accuracy("blue", rb, 10), 1));
    CHECK(NEAR(eval_vqa_accuracy("green", rb, 10), 0));
    /* 3 of 10: 3 subsets see 2 (2/3), 7 see 3 (1) -> 0.9 */
    const char *r3[10] = {"red", "red", "red", "blue", "blue", "blue", "blue", "blue", "blue", "blue"};
    CHECK(NEAR(eval_vqa_accuracy("red", r3, 10), 0.9));
    /* 1 of 10: 9 subsets see 1 match -> 0.3 */
    const char *r1[10] = {"red", "blue", "blue", "blue", "blue", "blue", "blue", "blue", "blue", "blue"};
    CHECK(NEAR(eval_vqa_accuracy("red", r1, 10), 0.3));
    const char *one[1] = {"Yes"};
    CHECK(NEAR(eval_vqa_accuracy("yes", one, 1), 1));
    CHECK(NEAR(eval_vqa_accuracy("no", one, 1), 0));
    CHECK(NEAR(eval_vqa_accuracy("yes", NULL, 0), 0));
}

static void test_vqa_aggregate(void) {
    eval_vqa_acc a = {0};
    CHECK(eval_vqa_acc_add(&a, 1, 1, "what color", "other", NULL) == G4C_OK);
    CHECK(eval_vqa_acc_add(&a, 0, 0.6, "what color", "other", NULL) == G4C_OK);
    CHECK(eval_vqa_acc_add(&a, 0, 0, "how many", "number", NULL) == G4C_OK);
    cJSON *m = eval_vqa_metrics(&a);
    CHECK(NEAR(cJSON_GetObjectItem(m, "strict_accuracy")->valuedouble, 1.0 / 3));
    CHECK(NEAR(cJSON_GetObjectItem(m, "vqa_accuracy")->valuedouble, 1.6 / 3));
    CHECK(cJSON_GetObjectItem(m, "n")->valueint == 3);
    const cJSON *wc = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "per_question_type"), "what color");
    CHECK(wc && cJSON_GetObjectItem(wc, "n")->valueint == 2 && NEAR(cJSON_GetObjectItem(wc, "vqa_accuracy")->valuedouble, 0.8));
    const cJSON *nb = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "per_answer_type"), "number");
    CHECK(nb && NEAR(cJSON_GetObjectItem(nb, "strict_accuracy")->valuedouble, 0));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(m, "vqa_accuracy_ci95")) == 2);
    cJSON_Delete(m);
    eval_vqa_acc_free(&a);
    double lo, hi;
    eval_ci_wilson(5, 10, &lo, &hi); /* p = 0.5, n = 10: 0.2366 .. 0.7634 */
    CHECK(fabs(lo - 0.236593) < 1e-5 && fabs(hi - 0.763407) < 1e-5);
    eval_ci_mean(3, 3, 3, &lo, &hi); /* all ones: no spread */
    CHECK(lo == 1 && hi == 1);
    eval_ci_mean(1, 1, 2, &lo, &hi); /* values 1 and 0: mean 0.5, sd 0.7071, half-width 1.96 * 0.5 */
    CHECK(fabs(lo - 0) < 1e-12 && fabs(hi - 1) < 1e-12);
}

static void test_coco_labels(void) {
    char b[64];
    CHECK(eval_coco_label("  TV_Monitor ", b, sizeof b) == eval_coco_class("tv") && !strcmp(b, "tv"));
    CHECK(eval_coco_label("Dining-Table", b, sizeof b) == eval_coco_class("dining table"));
    CHECK(eval_coco_label("cell__-phone", b, sizeof b) == eval_coco_class("cell phone") && !strcmp(b, "cell phone"));
    CHECK(eval_coco_label("Man", b, sizeof b) == eval_coco_class("person"));
    CHECK(eval_coco_label("teddy  bear", b, sizeof b) == eval_coco_class("teddy bear"));
    CHECK(eval_coco_label("aeroplane", b, sizeof b) == eval_coco_class("airplane"));
    CHECK(eval_coco_label("glass", b, sizeof b) == eval_coco_class("wine glass"));
    CHECK(eval_coco_label("notebook", b, sizeof b) == eval_coco_class("laptop"));
    CHECK(eval_coco_label("hair drier", b, sizeof b) == 78);
    CHECK(eval_coco_label("unicorn", b, sizeof b) == -1 && !strcmp(b, "unicorn"));
    CHECK(eval_coco_label("persons", b, sizeof b) == -1);
    CHECK(eval_coco_label("", b, sizeof b) == -1);
    CHECK(eval_coco_class("toothbrush") == 79 && eval_coco_class("person") == 0);
}

static void test_coco_parse(void) {
    eval_box *b = NULL;
    /* y-first 0..1000 -> pixels of a 200 x 100 (w x h) image; fences; label/box alternatives */
    const char *r = "Here:\n```json\n[{\"label\": \"Dog\", \"box_2d\": [100, 250, 500, 750]},\n"
                    " {\"class\": \"cat\", \"bbox\": [0, 0, 1000, 1000]},\n"
                    " {\"name\": \"unicorn\", \"box\": [0, 0, 500, 500]},\n"
                    " {\"object\": \"sofa\", \"bounding_box\": [-50, -50, 2000, 400]},\n"
                    " {\"label\": \"\", \"class\": \"bird\", \"box_2d\": [\"10\", \"10\", \"900\", \"900\"]},\n"
                    " {\"label\": \"dog\", \"box_2d\": [100, 100, 105, 900]},\n"
                    " {\"label\": \"dog\", \"box_2d\": [100, 100, 900]},\n"
                    " \"text\", 5, {\"label\": 7, \"box_2d\": [0, 0, 10, 10]}]\n```";
    int n = eval_coco_parse(r, 200, 100, &b);
    CHECK(n == 4);
    if (n == 4) {
        CHECK(b[0].cls == eval_coco_class("dog") && b[0].x1 == 50 && b[0].y1 == 10 && b[0].x2 == 150 && b[0].y2 == 50);
        CHECK(b[1].cls == eval_coco_class("cat") && b[1].x2 == 200 && b[1].y2 == 100);
        CHECK(b[2].cls == eval_coco_class("couch") && b[2].x1 == 0 && b[2].y1 == 0 && b[2].x2 == 80 && b[2].y2 == 100);
        CHECK(b[3].cls == eval_coco_class("bird") && NEAR(b[3].x1, 2) && NEAR(b[3].y2, 90));
    }
    free(b);
    /* the 0.5 px tall box (y 100..105 of 100 px -> 0.5 px) was dropped; so is one exactly 1 px wide */
    n = eval_coco_parse("[{\"label\":\"cup\",\"box_2d\":[0,0,1000,10]}]", 100, 100, &b);
    CHECK(n == 0);
    free(b);
    n = eval_coco_parse("[{\"label\":\"cup\",\"box_2d\":[0,0,1000,11]}]", 100, 100, &b);
    CHECK(n == 1); /* 1.1 px wide > 1 */
    free(b);
    /* unparseable or empty -> zero predictions, never an error */
    const char *bad[] = {"", "no boxes here", "[", "]", "] [", "[{\"label\": \"dog\", \"box_2d\": [1, 2, 3",
                         "[1] and then [2]", "[]", "[null]", "{\"label\": \"dog\"}", "[[[[[[[[]]]]]]]]",
                         "[{\"label\":\"dog\",\"box_2d\":[500,500,100,100]}]" /* inverted */};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        b = (eval_box *)1;
        n = eval_coco_parse(bad[i], 640, 480, &b);
        CHECKF(n == 0 && b == NULL, "case %zu gave %d", i, n);
    }
    CHECK(eval_coco_parse(NULL, 10, 10, &b) == 0);
    /* a JSON object around the array: the first '[' .. last ']' span */
    n = eval_coco_parse("{\"objects\": [{\"label\": \"person\", \"box_2d\": [0, 0, 500, 500]}]}", 100, 100, &b);
    CHECK(n == 1 && b[0].cls == 0 && b[0].x2 == 50);
    free(b);
}

#define BOX(c, a, b_, cc, d) ((eval_box){eval_coco_class(c), a, b_, cc, d})

static void test_coco_statuses(void) {
    const eval_box gt[2] = {BOX("dog", 0, 0, 100, 100), BOX("cat", 200, 0, 300, 100)};
    const eval_box pr[4] = {
        BOX("dog", 0, 0, 100, 100),     /* tp: IoU 1 */
        BOX("dog", 0, 0, 100, 40),      /* near: IoU 0.4 with the dog, which is taken */
        BOX("dog", 200, 0, 300, 100),   /* class: IoU 1 with the cat */
        BOX("dog", 500, 500, 600, 600), /* fp */
    };
    int st[4], sg[4];
    double iou[4];
    eval_coco_image r;
    CHECK(eval_coco_score(pr, 4, gt, 2, &r, st, sg, iou) == G4C_OK);
    CHECK(st[0] == EVAL_ST_TP && st[1] == EVAL_ST_NEAR && st[2] == EVAL_ST_CLASS && st[3] == EVAL_ST_FP);
    CHECK(sg[0] == 0 && sg[1] == -1 && NEAR(iou[1], 0.4) && NEAR(iou[2], 0));
    CHECK(r.tp == 1 && r.tp_strict == 1 && r.n_pred == 4 && r.n_gt == 2);
    CHECK(NEAR(r.precision, 0.25) && NEAR(r.recall, 0.5) && NEAR(r.f1, 1.0 / 3) && NEAR(r.mean_tp_iou, 1));
    CHECK(r.st[EVAL_ST_TP] == 1 && r.st[EVAL_ST_NEAR] == 1 && r.st[EVAL_ST_CLASS] == 1 && r.st[EVAL_ST_FP] == 1);
    /* a class mismatch needs IoU >= 0.5 with another class; 0.4 is a false positive */
    const eval_box p2[1] = {BOX("dog", 200, 0, 300, 40)};
    CHECK(eval_coco_score(p2, 1, gt, 2, &r, st, NULL, NULL) == G4C_OK && st[0] == EVAL_ST_FP);
    /* coarse but not strict: IoU 0.4 counts at 0.3 only */
    const eval_box p3[1] = {BOX("cat", 200, 0, 300, 40)};
    CHECK(eval_coco_score(p3, 1, gt, 2, &r, st, NULL, NULL) == G4C_OK && st[0] == EVAL_ST_NEAR && r.tp == 1 &&
          r.tp_strict == 0 && NEAR(r.mean_tp_iou, 0) && NEAR(r.recall, 0.5) && NEAR(r.strict_recall, 0));
}

static void test_coco_greedy(void) {
    int m[3];
    double iou[3];
    /* ties: two predictions with IoU 0.5 to one GT -> the lower prediction index wins */
    const eval_box g1[1] = {BOX("dog", 0, 0, 100, 100)};
    const eval_box p1[2] = {BOX("dog", 0, 0, 100, 50), BOX("dog", 0, 50, 100, 100)};
    CHECK(eval_coco_match(p1, 2, g1, 1, 0.5, m, iou) == 1 && m[0] == 0 && m[1] == -1 && NEAR(iou[0], 0.5));
    /* two identical GTs: the lower GT index is taken */
    const eval_box g2[2] = {BOX("dog", 0, 0, 100, 100), BOX("dog", 0, 0, 100, 100)};
    CHECK(eval_coco_match(g1, 1, g2, 2, 0.5, m, NULL) == 1 && m[0] == 0);
    /* by descending IoU: p1 (IoU 1 with g0) goes first, then p0 takes g1 although it tied g0 */
    const eval_box g3[2] = {BOX("dog", 0, 0, 100, 100), BOX("dog", 60, 0, 160, 100)};
    const eval_box p3[2] = {BOX("dog", 30, 0, 130, 100), BOX("dog", 0, 0, 100, 100)};
    CHECK(eval_coco_match(p3, 2, g3, 2, 0.5, m, iou) == 2 && m[0] == 1 && m[1] == 0 && NEAR(iou[0], 70.0 / 130));
    /* another class never matches */
    const eval_box p4[1] = {BOX("cat", 0, 0, 100, 100)};
    CHECK(eval_coco_match(p4, 1, g1, 1, 0.3, m, NULL) == 0 && m[0] == -1);
    /* empty predictions / ground truth */
    eval_coco_image r;
    CHECK(eval_coco_score(NULL, 0, g3, 2, &r, NULL, NULL, NULL) == G4C_OK && r.tp == 0 && r.precision == 0 &&
          r.recall == 0 && r.f1 == 0 && r.n_gt == 2);
    CHECK(eval_coco_score(p3, 2, NULL, 0, &r, m, NULL, NULL) == G4C_OK && r.tp == 0 && m[0] == EVAL_ST_FP &&
          r.st[EVAL_ST_FP] == 2);
    CHECK(eval_coco_score(NULL, 0, NULL, 0, &r, NULL, NULL, NULL) == G4C_OK && r.f1 == 0);
}

static void test_coco_ar(void) {
    /* IoU 0.72: matched at 0.50 .. 0.70 (5 of 10 thresholds) */
    const eval_box g[2] = {BOX("cup", 0, 0, 100, 100), BOX("spoon", 200, 200, 300, 300)};
    const eval_box p[1] = {BOX("cup", 0, 0, 100, 72)};
    eval_coco_image r;
    CHECK(eval_coco_score(p, 1, g, 2, &r, NULL, NULL, NULL) == G4C_OK);
    for (int k = 0; k < EVAL_N_AR; k++) CHECKF(r.tp_at[k] == (k < 5), "threshold %d", k);
    eval_coco_acc a;
    memset(&a, 0, sizeof a);
    eval_coco_acc_add(&a, &r);
    cJSON *m = eval_coco_metrics(&a);
    CHECK(NEAR(cJSON_GetObjectItem(m, "ar")->valuedouble, 0.25)); /* recall 0.5 at 5 thresholds, 0 at 5 */
    const cJSON *cup = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "per_class"), "cup");
    CHECK(cup && NEAR(cJSON_GetObjectItem(cup, "ar")->valuedouble, 0.5) &&
          NEAR(cJSON_GetObjectItem(cup, "recall")->valuedouble, 1));
    const cJSON *spoon = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "per_class"), "spoon");
    CHECK(spoon && NEAR(cJSON_GetObjectItem(spoon, "recall")->valuedouble, 0));
    CHECK(NEAR(cJSON_GetObjectItem(m, "ar_class_mean")->valuedouble, 0.25));
    CHECK(NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "recall_at_iou"), "0.70")->valuedouble, 0.5));
    CHECK(NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "recall_at_iou"), "0.75")->valuedouble, 0));
    const char *keys[] = {"precision", "recall", "f1", "strict_precision", "strict_recall", "strict_f1",
                          "mean_tp_iou", "total_tp", "total_pred", "total_gt", "status_counts", "n_images"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) CHECKF(cJSON_GetObjectItem(m, keys[i]), "%s", keys[i]);
    cJSON_Delete(m);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static void test_datasets(void) {
    char dir[] = "/tmp/g4c_test_eval_XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0); return; }
    char p[256], q[256];
    /* COCO: area from bbox w x h (not "area"), categories outside the 80 dropped, >= 2 objects to be eligible */
    snprintf(p, sizeof p, "%s/inst.json", dir);
    write_file(p, "{\"images\": [{\"id\": 7, \"file_name\": \"a.jpg\", \"width\": 640, \"height\": 480},"
                  " {\"id\": 3, \"file_name\": \"b.jpg\", \"width\": 100, \"height\": 100}],"
                  " \"categories\": [{\"id\": 1, \"name\": \"person\"}, {\"id\": 99, \"name\": \"saucer\"}],"
                  " \"annotations\": ["
                  "  {\"image_id\": 7, \"category_id\": 1, \"bbox\": [10, 20, 32, 32], \"area\": 5},"
                  "  {\"image_id\": 7, \"category_id\": 1, \"bbox\": [0, 0, 31.9, 32], \"area\": 5000},"
                  "  {\"image_id\": 7, \"category_id\": 99, \"bbox\": [0, 0, 100, 100]},"
                  "  {\"image_id\": 7, \"category_id\": 1, \"bbox\": [100, 100, 50, 40]},"
                  "  {\"image_id\": 3, \"category_id\": 1, \"bbox\": [0, 0, 50, 50]}]}");
    eval_set s;
    g4c_err err = {0};
    CHECKF(eval_load_coco(&s, p, "/img", &err) == G4C_OK, "%s", err.msg);
    CHECK(s.n == 2 && !strcmp(s.s[0].key, "3") && !strcmp(s.s[1].key, "7"));
    if (s.n == 2) {
        CHECK(s.s[1].n_gt == 2 && s.s[1].width == 640 && !strcmp(s.s[1].image, "/img/a.jpg"));
        CHECK(s.s[1].gt[0].x1 == 10 && s.s[1].gt[0].y2 == 52 && s.s[1].gt[1].x2 == 150);
        eval_set_keep_eligible(&s);
        CHECK(s.n == 1 && s.s[0].image_id == 7);
    }
    eval_set_free(&s);
    /* a manifest; sampling is a function of the seed */
    snprintf(q, sizeof q, "%s/m.jsonl", dir);
    write_file(q, "{\"image\": \"x.jpg\", \"question\": \"q1\", \"answers\": [\"a\", \"b\", \"b\"]}\n\n"
                  "{\"id\": \"k2\", \"image\": \"/abs/y.jpg\", \"question\": \"q2\", \"answers\": [{\"answer\": \"z\"}], \"answer\": \"Z\"}\n"
                  "{\"question_id\": 9, \"image\": \"x.jpg\", \"question\": \"q3\", \"answers\": [\"c\"]}\n"
                  "{\"image\": \"x.jpg\", \"question\": \"q4\", \"answers\": [\"d\"]}\n"
                  "{\"image\": \"x.jpg\", \"question\": \"q5\", \"answers\": [\"e\"]}\n");
    CHECKF(eval_load_manifest(&s, EVAL_VQA, q, &err) == G4C_OK, "%s", err.msg);
    CHECK(s.n == 5);
    if (s.n == 5) {
        CHECK(!strcmp(s.s[0].key, "1") && !strcmp(s.s[0].mc_answer, "b") && s.s[0].n_answers == 3);
        CHECK(!strcmp(s.s[1].key, "k2") && !strcmp(s.s[1].mc_answer, "Z") && !strcmp(s.s[1].image, "/abs/y.jpg"));
        CHECK(!strcmp(s.s[2].key, "9") && s.s[2].question_id == 9);
        char want[300];
        snprintf(want, sizeof want, "%s/x.jpg", dir);
        CHECK(!strcmp(s.s[0].image, want));
    }
    CHECK(eval_set_sample(&s, 3, 7, NULL) == G4C_OK && s.n == 3);
    char first[3][8];
    for (int i = 0; i < 3 && i < s.n; i++) snprintf(first[i], 8, "%s", s.s[i].key);
    eval_set_free(&s);
    CHECK(eval_load_manifest(&s, EVAL_VQA, q, &err) == G4C_OK && eval_set_sample(&s, 3, 7, NULL) == G4C_OK);
    for (int i = 0; i < 3 && i < s.n; i++) CHECK(!strcmp(first[i], s.s[i].key));
    CHECK(eval_set_index(&s, &err) == G4C_OK && s.n == 3 && eval_set_find(&s, s.s[2].key) == 2 &&
          eval_set_find(&s, "nope") == -1);
    eval_set_free(&s);
    /* errors name the line */
    write_file(q, "{\"image\": \"x.jpg\", \"answers\": []}\n");
    CHECK(eval_load_manifest(&s, EVAL_VQA, q, &err) != G4C_OK && strstr(err.msg, "line 1") && strstr(err.msg, "question"));
    write_file(q, "{\"image\": \"x.jpg\", \"boxes\": [{\"label\": \"saucer\", \"bbox\": [0, 0, 50, 50]}]}\n");
    CHECK(eval_load_manifest(&s, EVAL_COCO, q, &err) != G4C_OK && strstr(err.msg, "saucer"));
    write_file(q, "{\"id\": 1, \"image\": \"x.jpg\", \"question\": \"q\", \"answers\": []}\n"
                  "{\"id\": 1, \"image\": \"x.jpg\", \"question\": \"q\", \"answers\": []}\n");
    CHECK(eval_load_manifest(&s, EVAL_VQA, q, &err) == G4C_OK && eval_set_index(&s, &err) != G4C_OK);
    eval_set_free(&s);
    unlink(p);
    unlink(q);
    rmdir(dir);
}

static void test_base64(void) {
    char *s = eval_base64((const unsigned char *)"Man", 3);
    CHECK(streq_free(s, "TWFu"));
    CHECK(streq_free(eval_base64((const unsigned char *)"Ma", 2), "TWE="));
    CHECK(streq_free(eval_base64((const unsigned char *)"M", 1), "TQ=="));
    CHECK(streq_free(eval_base64((const unsigned char *)"", 0), ""));
}

static void test_prompts(void) {
    eval_sample s = {0};
    s.question = "How many dogs?";
    char *p = eval_prompt(EVAL_VQA, &s);
    CHECK(streq_free(p, "Answer this question about the image with a single short answer (1-3 words max).\n"
                        "Question: How many dogs?\nAnswer:"));
    p = eval_prompt(EVAL_COCO, &s);
    CHECK(p && strstr(p, "Return ONLY a JSON array \xe2\x80\x94 no explanation") && strstr(p, "[y_min, x_min, y_max, x_max]"));
    free(p);
}

int main(void) {
    RUN(test_vqa_prediction);
    RUN(test_vqa_strict);
    RUN(test_vqa_normalize);
    RUN(test_vqa_accuracy);
    RUN(test_vqa_aggregate);
    RUN(test_coco_labels);
    RUN(test_coco_parse);
    RUN(test_coco_statuses);
    RUN(test_coco_greedy);
    RUN(test_coco_ar);
    RUN(test_datasets);
    RUN(test_base64);
    RUN(test_prompts);
    return TEST_REPORT();
}
