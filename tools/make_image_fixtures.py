#!/usr/bin/env python3
"""Image fixtures for gemma4c: test images, Gemma4ImageProcessor references, and vision features + logits of the
tiny fixture models with images (spec §4, §3.10). Run on the device machine (transformers 5.17, torch,
torchvision, scikit-image), after tools/make_fixtures.py:
    python3 tools/make_image_fixtures.py tests/fixtures
Writes
    images/*.png|jpg                     inputs made from scikit-image's bundled photographs (+ awkward variants)
    ref/img/<image>.rgb.npy              uint8 [H, W, 3]: the RGB pixels transformers sees (convert_to_rgb)
    ref/img/<image>_b<budget>.json       target size, patch grid, soft-token count, first positions
    ref/img/<image>_b<budget>.resized.npy  uint8 [th, tw, 3]: the resized image (pixel_values * 255, exact)
    <model>-w128/config.json             dense/moe copies with sliding_window 128 (> any image block), weights linked
    ref/mm/<model>.json / .features.npy / .logits.npy   two-image prompt: soft tokens [N, H] and logits [T, V]
The bidirectional models get a window longer than their image blocks so the reference is unambiguous across
transformers releases (spec §3.10); the window clamp itself is unit-tested in C.
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from PIL import Image
from skimage import data as skdata
from transformers import Gemma4ForConditionalGeneration
from transformers.image_transforms import convert_to_rgb  # 5.17: PIL convert("RGB"), alpha dropped
from transformers.models.gemma4.image_processing_gemma4 import Gemma4ImageProcessor


def make_images(d):
    os.makedirs(d, exist_ok=True)
    chelsea = Image.fromarray(skdata.chelsea())        # 300x451 RGB
    coffee = Image.fromarray(skdata.coffee())          # 400x600 RGB
    astro = Image.fromarray(skdata.astronaut())        # 512x512 RGB
    camera = Image.fromarray(skdata.camera())          # 512x512 gray
    out = {}

    def save(name, im, **kw):
        p = os.path.join(d, name)
        im.save(p, **kw)
        out[name] = p

    save("chelsea.png", chelsea)
    save("coffee.jpg", coffee, quality=90)
    save("astronaut384.png", astro.resize((384, 384), Image.BICUBIC))  # a multiple of 48: budget 70 keeps it as is
    rgba = chelsea.convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, chelsea.width, dtype=np.uint8), (chelsea.height, 1))
    rgba.putalpha(Image.fromarray(alpha))
    save("chelsea_alpha.png", rgba)
    save("camera_gray.png", camera.resize((256, 256), Image.BICUBIC))
    save("chelsea_palette.png", chelsea.quantize(64))
    g16 = (np.asarray(camera.resize((200, 150), Image.BICUBIC), dtype=np.uint16) * 257)
    save("camera_16bit.png", Image.fromarray(g16, mode="I;16"))
    save("coffee_cmyk.jpg", coffee.resize((240, 160), Image.BICUBIC).convert("CMYK"), quality=92)
    save("wide.png", coffee.resize((1000, 60), Image.BICUBIC))
    save("tall.png", coffee.resize((60, 1000), Image.BICUBIC))
    save("tiny.png", chelsea.resize((40, 30), Image.BICUBIC))
    save("gray_alpha.png", camera.resize((64, 48), Image.BICUBIC).convert("LA"))
    return out


def u8_of(pixel_values, n, th, tw):
    """pixel_values [n_patches, 768] in (row-in-patch, col-in-patch, channel) order -> uint8 image [th, tw, 3]."""
    pv = pixel_values[:n].reshape(th // 16, tw // 16, 16, 16, 3).permute(0, 2, 1, 3, 4).reshape(th, tw, 3)
    u8 = torch.round(pv * 255.0)
    assert torch.allclose(u8 / 255.0, pv, atol=1e-6), "pixel values are not k/255"
    return u8.to(torch.uint8).numpy()


def preprocess_refs(out, images):
    rd = os.path.join(out, "ref", "img")
    os.makedirs(rd, exist_ok=True)
    cases = [(n, 70) for n in images] + [("chelsea.png", 140), ("chelsea.png", 280), ("coffee.jpg", 280)]
    for name, budget in cases:
        im = Image.open(images[name])
        rgb = np.asarray(convert_to_rgb(im))
        np.save(os.path.join(rd, name.rsplit(".", 1)[0] + ".rgb.npy"), rgb)
        proc = Gemma4ImageProcessor(max_soft_tokens=budget)
        try:
            r = proc(images=[im], return_tensors="pt")
        except Exception as e:  # e.g. the reference refusing an image: record it
            with open(os.path.join(rd, f"{name.rsplit('.', 1)[0]}_b{budget}.json"), "w") as f:
                json.dump({"image": name, "budget": budget, "error": str(e)}, f)
            print(name, budget, "error:", e)
            continue
        pos = r["image_position_ids"][0]
        n = int((pos[:, 0] >= 0).sum())
        pw = int(pos[:n, 0].max()) + 1
        ph = int(pos[:n, 1].max()) + 1
        th, tw = ph * 16, pw * 16
        # positions are (x, y) = (col, row), row-major over the patch grid
        want = torch.stack(torch.meshgrid(torch.arange(pw), torch.arange(ph), indexing="xy"), -1).reshape(-1, 2)
        assert torch.equal(pos[:n], want)
        u8 = u8_of(r["pixel_values"][0], n, th, tw)
        tag = f"{name.rsplit('.', 1)[0]}_b{budget}"
        np.save(os.path.join(rd, tag + ".resized.npy"), u8)
        meta = {"image": name, "budget": budget, "height": rgb.shape[0], "width": rgb.shape[1],
                "target_height": th, "target_width": tw, "n_patches": n,
                "n_soft_tokens": int(r["num_soft_tokens_per_image"][0]), "positions_head": pos[:4].tolist(),
                "transformers": transformers.__version__}
        with open(os.path.join(rd, tag + ".json"), "w") as f:
            json.dump(meta, f)
        print(tag, meta["target_height"], meta["target_width"], meta["n_soft_tokens"])


def widen(out, tag, window=128):
    """<tag>-w128: the same checkpoint with a sliding window longer than any image block."""
    d = os.path.join(out, tag + "-w128")
    os.makedirs(d, exist_ok=True)
    cfg = json.load(open(os.path.join(out, tag, "config.json")))
    cfg["text_config"]["sliding_window"] = window
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for fn in os.listdir(os.path.join(out, tag)):
        if fn.endswith(".safetensors") or fn.endswith(".index.json"):
            dst = os.path.join(d, fn)
            if not os.path.lexists(dst):
                os.symlink(os.path.join("..", tag, fn), dst)
    return d


def multimodal_refs(out, images):
    md = os.path.join(out, "ref", "mm")
    os.makedirs(md, exist_ok=True)
    budget = 70
    ims = [Image.open(images["chelsea.png"]), Image.open(images["astronaut384.png"])]
    proc = Gemma4ImageProcessor(max_soft_tokens=budget)
    r = proc(images=ims, return_tensors="pt")
    n_tok = [int(x) for x in r["num_soft_tokens_per_image"]]
    models = ["e-f32", "e-bf16", widen(out, "dense-f32"), widen(out, "dense-bf16"), widen(out, "moe-f32")]
    for m in models:
        tag = os.path.basename(m)
        model = Gemma4ForConditionalGeneration.from_pretrained(os.path.join(out, tag), dtype=torch.float32,
                                                               attn_implementation="eager",
                                                               experts_implementation="eager").eval()
        c = model.config
        ids = [2, 105, 17, 107]
        for i, n in enumerate(n_tok):
            ids += [c.boi_token_id] + [c.image_token_id] * n + [c.eoi_token_id] + [30 + i, 31 + i]
        ids += [40, 41, 42, 106, 107, 105, 43, 107]
        mm = [1 if t == c.image_token_id else 0 for t in ids]
        with torch.no_grad():
            feats = model.get_image_features(r["pixel_values"], r["image_position_ids"], return_dict=True)
            po = feats.pooler_output
            feats = torch.cat(list(po), 0) if isinstance(po, (list, tuple)) else po.reshape(-1, po.shape[-1])
            logits = model(input_ids=torch.tensor([ids]), pixel_values=r["pixel_values"],
                           image_position_ids=r["image_position_ids"], mm_token_type_ids=torch.tensor([mm]),
                           use_cache=False).logits[0]
            causal = model(input_ids=torch.tensor([ids]), pixel_values=r["pixel_values"],
                           image_position_ids=r["image_position_ids"], use_cache=False).logits[0]
        np.save(os.path.join(md, tag + ".features.npy"), feats.float().numpy())
        np.save(os.path.join(md, tag + ".logits.npy"), logits.float().numpy())
        diff = float((logits - causal).abs().max())
        with open(os.path.join(md, tag + ".json"), "w") as f:
            json.dump({"model": tag, "images": ["chelsea.png", "astronaut384.png"], "budget": budget,
                       "n_soft_tokens": n_tok, "tokens": ids, "bidirectional_vs_causal_max_abs": diff,
                       "transformers": transformers.__version__}, f)
        print(tag, "features", tuple(feats.shape), "logits", tuple(logits.shape), "bidir-vs-causal", diff)


def main():
    out = sys.argv[1]
    images = make_images(os.path.join(out, "images"))
    preprocess_refs(out, images)
    multimodal_refs(out, images)


if __name__ == "__main__":
    main()
