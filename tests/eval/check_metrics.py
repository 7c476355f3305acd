"""Compare a metrics.json with a hand-computed expectation: every key of the expectation must be present with the
same value (integers and strings exactly, reals within 1e-12, or 1e-4 for keys ending in _ci95); objects listed
in EXACT_KEYS must also have no extra keys. usage: check_metrics.py GOT.json WANT.json"""
import json
import sys

EXACT_KEYS = {"per_class", "status_counts", "recall_at_iou", "per_question_type", "per_answer_type"}


def cmp(got, want, path, tol, errs):
    if isinstance(want, dict):
        if not isinstance(got, dict):
            errs.append(f"{path}: want an object, got {got!r}")
            return
        if path.split(".")[-1] in EXACT_KEYS and set(got) != set(want):
            errs.append(f"{path}: keys {sorted(got)} != {sorted(want)}")
        for k, v in want.items():
            if k not in got:
                errs.append(f"{path}.{k}: missing")
            else:
                cmp(got[k], v, f"{path}.{k}", 1e-4 if k.endswith("_ci95") else tol, errs)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            errs.append(f"{path}: want {want!r}, got {got!r}")
            return
        for i, (g, w) in enumerate(zip(got, want)):
            cmp(g, w, f"{path}[{i}]", tol, errs)
    elif isinstance(want, (int, float)) and not isinstance(want, bool):
        if not isinstance(got, (int, float)) or abs(got - want) > tol:
            errs.append(f"{path}: want {want!r}, got {got!r}")
    elif got != want:
        errs.append(f"{path}: want {want!r}, got {got!r}")


got = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2]))
errs = []
cmp(got, want, "$", 1e-12, errs)
for e in errs:
    print("  " + e)
sys.exit(1 if errs else 0)
