# The weight bytes one decoded token reads, computed independently of gemma4c from a checkpoint's safetensors
# headers (test_cli.sh checks `gemma4c info`'s "decode reads" line against it): every 2-D text weight, the tied
# embedding in full (the head) plus the token's row, one per-layer-embedding row, experts at top_k / num_experts.
# usage: token_bytes.py CHECKPOINT_DIR
import json, struct, sys, os, glob
d = sys.argv[1]
c = json.load(open(os.path.join(d, "config.json"))); t = c.get("text_config", c)
E, K = t.get("num_experts") or 0, t.get("top_k_experts") or 0
size = {"F32": 4, "BF16": 2, "F16": 2}
total = 0
for p in glob.glob(os.path.join(d, "*.safetensors")):
    f = open(p, "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
    for k, v in h.items():
        if k == "__metadata__" or "language_model" not in k or len(v["shape"]) < 2: continue
        b = size[v["dtype"]]
        for s in v["shape"]: b *= s
        if k.endswith("embed_tokens.weight"): b += b // v["shape"][0]  # the tied head in full + the token's row
        elif k.endswith("embed_tokens_per_layer.weight"): b //= v["shape"][0]  # one row
        elif "experts" in k: b = b // E * K
        total += b
print(total)
