#!/usr/bin/env python3
"""MLX-quantized fixtures for gemma4c (issue 5, spec §8.3): the tiny HF fixtures converted the way mlx-vlm converts
Gemma 4 (`mlx_vlm.convert --quantize`), without MLX itself (it does not install here), plus transformers references.

Run on the device machine (transformers 5.17, torch, numpy, PIL), after tools/make_fixtures.py and
tools/make_image_fixtures.py:
    python3 tools/make_mlx_fixtures.py tests/fixtures OUTDIR
Writes, for each (tag, source, bits, group) in VARIANTS:
    OUTDIR/<tag>/config.json                 the source config + "quantization" and "quantization_config"
    OUTDIR/<tag>/model.safetensors           mlx-vlm key names; quantized modules as X.weight (U32 codes),
                                             X.scales, X.biases (the model dtype); __metadata__ {"format": "mlx"}
    OUTDIR/<tag>/model.safetensors.index.json  as mlx's save_weights writes it
    OUTDIR/ref/<tag>.logits.npy              float32 [n_prompt, vocab]: transformers (f32, eager attention, eager
                                             experts) on the source model with every quantized weight replaced by
                                             its dequantization scale·q + bias (computed in f32), on the prompt of
                                             ref/<source>.json
    OUTDIR/ref/<tag>.json                    prompt, quantized module count, how far the logits moved from the
                                             unquantized model, transformers' f32-vs-f64 error
    OUTDIR/ref/<tag>.features.npy            (variants whose embed_vision is quantized) vision soft tokens
                                             [n, H] of images/astronaut384.png at the 70-token budget

What mlx-vlm does, and what is reproduced here (mlx-vlm main, mlx_vlm/models/gemma4/{gemma4,language}.py,
mlx_vlm/utils.py + quant_utils.py):
  * sanitize: drop rotary buffers, the clip scalars outside the towers (and inside vision_tower when
    use_clipped_linears is false), audio weights when there is no audio tower; strip the leading "model.",
    language_model.X -> language_model.model.X; experts.gate_up_proj [E, 2I, H] -> experts.switch_glu.gate_proj.weight
    (rows [0, I)) and up_proj.weight (rows [I, 2I)); experts.down_proj -> experts.switch_glu.down_proj.weight;
    KV-shared layers lose self_attn.{k_proj, v_proj, k_norm, v_norm}.
  * quantize_model: every module with to_quantized (Linear, Embedding, SwitchLinear — here: every 2-D/3-D ".weight")
    outside vision_tower/audio_tower (skip_multimodal_module) whose last dimension the group size divides; gemma4's
    quant_predicate gives any path containing "router" {"group_size": 64, "bits": 8}, recorded in config.json under
    the module path. config["quantization"] = {"group_size", "bits", "mode": "affine", <overrides>} and
    config["quantization_config"] = the same. Keys sorted (save_config).
  * mx.quantize(w, group_size, bits) "affine", per group of `group` consecutive input columns: the Metal kernel's
    formulas (mlx/backend/metal/kernels/quantized.h affine_quantize — mlx-community conversions are made on Apple
    GPUs), all in float32:
        w_min = min(w), w_max = max(0, max(w))           (the Metal kernel starts w_max at 0)
        scale = max((w_max - w_min) / (2^bits - 1), 1e-7)
        side = |w_min| > |w_max|; scale = side ? scale : -scale; edge = side ? w_min : w_max
        q0 = round(edge / scale); if q0 != 0: scale = edge / q0, bias = edge; else bias = 0
        q = min(round((w - bias) / scale), 2^bits - 1)     (round = half away from zero)
    scales/biases are stored in the model dtype (T(scale)); codes come from the float32 scale. The CPU kernel
    (mlx/backend/cpu/quantized.cpp quantize) differs only in starting w_max at -inf and rounding half to even
    (std::rint); QUANTIZER = "cpu" selects it. Metal's fast-math division may differ from IEEE in the last ulp,
    which could move a code sitting exactly at a rounding tie: irrelevant here, since the reference is computed
    from the codes we store, whatever they are.
  * Packing: a row's codes as one little-endian bit stream, code c at bits [bits·c, bits·(c+1)), stored as u32
    [..., cols·bits/32] (for 2/4/8 bits: code n of word k at bits [bits·n, bits·(n+1)); 3/5/6 bits are MLX's byte
    packing, which is the same stream).
The reference dequantizes as MLX's affine_dequantize does (scale · q + bias) but in float32 from the stored scales and
biases; MLX running a bf16 model would round the dequantized weight to bf16 — gemma4c, like this reference, does not.
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import load_file
from transformers import Gemma4ForConditionalGeneration

# (tag, source fixture, bits, group_size). mlx-moe-8bit uses group 32 so that the MoE down_proj experts
# ([E, H, 32]) and embed_vision ([H, 32]) are quantized too (with group 64, mlx skips them: 32 % 64 != 0), and its
# source is the bf16 fixture so scales and biases are bf16 as in published checkpoints.
VARIANTS = [
    ("mlx-dense-4bit", "dense-f32", 4, 64),
    ("mlx-moe-4bit", "moe-f32", 4, 64),
    ("mlx-e-4bit", "e-f32", 4, 64),
    ("mlx-moe-8bit", "moe-bf16", 8, 32),
]
QUANTIZER = "metal"
MULTIMODAL = ("vision_model", "vision_tower", "audio_model", "audio_tower")  # mlx_vlm.utils.skip_multimodal_module


# ---- source checkpoint ---------------------------------------------------------------------------------------

def load_source(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    sd = {}
    for f in files:
        sd.update(load_file(os.path.join(d, f)))
    return sd


def sanitize(sd, cfg):
    """mlx-vlm Model.sanitize + LanguageModel.sanitize (gemma4)."""
    use_clipped = (cfg.get("vision_config") or {}).get("use_clipped_linears", False)
    tc = cfg["text_config"]
    first_shared = tc["num_hidden_layers"] - (tc.get("num_kv_shared_layers") or 0)
    out = {}
    for k, v in sd.items():
        if any(s in k for s in ("input_max", "input_min", "output_max", "output_min")):
            if "vision_tower" in k and not use_clipped:
                continue
            if "vision_tower" not in k and "audio_tower" not in k:
                continue
        if "rotary_emb" in k:
            continue
        if cfg.get("audio_config") is None and ("audio_tower" in k or "embed_audio" in k):
            continue
        nk = k[len("model."):] if k.startswith("model.") else k
        if nk.startswith("language_model.") and not nk.startswith("language_model.model."):
            nk = "language_model.model." + nk[len("language_model."):]
        if nk.endswith(".experts.down_proj"):
            nk = nk.replace(".experts.down_proj", ".experts.switch_glu.down_proj.weight")
        if nk.endswith(".experts.gate_up_proj"):
            mid = v.shape[-2] // 2
            out[nk.replace(".experts.gate_up_proj", ".experts.switch_glu.gate_proj.weight")] = v[..., :mid, :].contiguous()
            out[nk.replace(".experts.gate_up_proj", ".experts.switch_glu.up_proj.weight")] = v[..., mid:, :].contiguous()
            continue
        pre = "language_model.model.layers."
        if nk.startswith(pre):
            parts = nk[len(pre):].split(".")
            if (len(parts) >= 4 and parts[1] == "self_attn" and int(parts[0]) >= first_shared > 0
                    and parts[2] in ("k_proj", "v_proj", "k_norm", "v_norm")):
                continue
        assert not nk.startswith("lm_head"), "tied checkpoints only"
        out[nk] = v
    return out


def quant_params(name, v, group, bits):
    """(group, bits) mlx-vlm quantizes the module of weight `name` with, or None."""
    if not name.endswith(".weight") or v.ndim < 2:  # norms, scalars, router scales: not quantizable modules
        return None
    path = name[:-len(".weight")]
    if any(s in path for s in MULTIMODAL):
        return None
    if v.shape[-1] % group:  # quantize_model's wrapped_predicate
        return None
    if "router" in path:  # gemma4 LanguageModel.quant_predicate
        return 64, 8
    return group, bits


# ---- MLX affine quantization in numpy (see the module docstring) --------------------------------------------

def round_half_away(x):
    t = np.trunc(x)
    return (t + np.where(np.abs(x - t) >= np.float32(0.5), np.sign(x), np.float32(0))).astype(np.float32)


def affine_quantize(w, group, bits):
    """w float32 [..., cols] -> codes uint8 [..., cols], scale/bias float32 [..., cols/group] (not yet rounded to T)."""
    shp = w.shape
    g = w.reshape(-1, group).astype(np.float32)
    n_bins = np.float32(2 ** bits - 1)
    eps = np.float32(1e-7)
    w_min = g.min(1)
    w_max = g.max(1)
    if QUANTIZER == "metal":
        w_max = np.maximum(w_max, np.float32(0))
        rnd = round_half_away
    else:
        rnd = np.rint
    scale = np.maximum((w_max - w_min) / n_bins, eps)
    side = np.abs(w_min) > np.abs(w_max)
    scale = np.where(side, scale, -scale).astype(np.float32)
    edge = np.where(side, w_min, w_max).astype(np.float32)
    q0 = rnd(edge / scale)
    at_zero = q0 == 0
    scale = np.where(at_zero, scale, edge / np.where(at_zero, np.float32(1), q0)).astype(np.float32)
    bias = np.where(at_zero, np.float32(0), edge).astype(np.float32)
    q = rnd((g - bias[:, None]) / scale[:, None])
    q = np.clip(q, 0, n_bins).astype(np.uint8)
    return q.reshape(shp), scale.reshape(shp[:-1] + (-1,)), bias.reshape(shp[:-1] + (-1,))


def pack(q, bits):
    """codes uint8 [..., cols] -> uint32 [..., cols·bits/32]: one little-endian bit stream per row."""
    shp = q.shape
    cols = shp[-1]
    assert cols * bits % 32 == 0
    rows = q.reshape(-1, cols)
    bitarr = ((rows[:, :, None] >> np.arange(bits, dtype=np.uint8)) & 1).astype(np.uint8).reshape(rows.shape[0], -1)
    by = np.packbits(bitarr, axis=1, bitorder="little")
    words = np.ascontiguousarray(by).view("<u4").reshape(shp[:-1] + (cols * bits // 32,))
    if bits in (2, 4, 8):  # cross-check against MLX's word formula
        per = 32 // bits
        r = rows.astype(np.uint64).reshape(rows.shape[0], -1, per)
        want = (r << (np.arange(per, dtype=np.uint64) * bits)).sum(-1).astype(np.uint32)
        assert np.array_equal(want.reshape(words.shape), words)
    return words


def unpack(words, bits, cols):
    shp = words.shape
    by = np.ascontiguousarray(words.reshape(-1, shp[-1]).astype("<u4")).view(np.uint8)
    bitarr = np.unpackbits(by, axis=1, bitorder="little").reshape(by.shape[0], cols, bits).astype(np.uint32)
    q = (bitarr << np.arange(bits, dtype=np.uint32)).sum(-1)
    return q.reshape(shp[:-1] + (cols,))


def to_model_dtype(a, tdt):
    return torch.from_numpy(np.ascontiguousarray(a)).to(tdt)


def dequant(words, scales, biases, bits, group, cols):
    """MLX affine_dequantize in float32 from the stored scales/biases: w = scale · q + bias."""
    q = unpack(words, bits, cols).astype(np.float32)
    s = scales.float().numpy()
    b = biases.float().numpy()
    qg = q.reshape(q.shape[:-1] + (cols // group, group))
    w = s[..., None] * qg + b[..., None]
    return w.reshape(q.shape).astype(np.float32)


# ---- writing ---------------------------------------------------------------------------------------------------

def tensor_bytes(t):
    if isinstance(t, np.ndarray):
        assert t.dtype == np.uint32
        return "U32", list(t.shape), np.ascontiguousarray(t).astype("<u4").tobytes()
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return "BF16", list(t.shape), t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.float32:
        return "F32", list(t.shape), t.numpy().astype("<f4").tobytes()
    raise ValueError(t.dtype)


def save_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name in sorted(tensors):
        dt, shape, raw = tensor_bytes(tensors[name])
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    return off


# ---- reference -------------------------------------------------------------------------------------------------

def hf_name(mlx_name):
    """mlx-vlm name -> transformers state_dict name (inverse of sanitize, experts handled by the caller)."""
    if mlx_name.startswith("language_model.model."):
        return "model.language_model." + mlx_name[len("language_model.model."):]
    return "model." + mlx_name


def load_hf(d):
    return Gemma4ForConditionalGeneration.from_pretrained(d, dtype=torch.float32, attn_implementation="eager",
                                                          experts_implementation="eager").eval()


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].double().numpy()


def rel_l2_rows(a, b):
    return np.sqrt(((a - b) ** 2).sum(-1) / (b ** 2).sum(-1))


def vision_features(model, image_path):
    from PIL import Image
    from transformers.models.gemma4.image_processing_gemma4 import Gemma4ImageProcessor
    r = Gemma4ImageProcessor(max_soft_tokens=70)(images=[Image.open(image_path)], return_tensors="pt")
    with torch.no_grad():
        po = model.get_image_features(r["pixel_values"], r["image_position_ids"], return_dict=True).pooler_output
    po = torch.cat(list(po), 0) if isinstance(po, (list, tuple)) else po.reshape(-1, po.shape[-1])
    return po.float().numpy()


def convert(src_root, out_root, tag, source, bits, group):
    src = os.path.join(src_root, source)
    cfg = json.load(open(os.path.join(src, "config.json")))
    sd = sanitize(load_source(src), cfg)
    out, qinfo, overrides = {}, {}, {}
    for name, v in sd.items():
        qp = quant_params(name, v, group, bits)
        if qp is None:
            out[name] = v
            continue
        g, b = qp
        path = name[:-len(".weight")]
        if (g, b) != (group, bits):
            overrides[path] = {"group_size": g, "bits": b}
        q, s, bi = affine_quantize(v.float().numpy(), g, b)
        words = pack(q, b)
        assert np.array_equal(unpack(words, b, v.shape[-1]), q)
        out[path + ".weight"] = words
        out[path + ".scales"] = to_model_dtype(s, v.dtype)
        out[path + ".biases"] = to_model_dtype(bi, v.dtype)
        deq = dequant(words, out[path + ".scales"], out[path + ".biases"], b, g, v.shape[-1])
        err = np.abs(deq - v.float().numpy()).max() / max(np.abs(v.float().numpy()).max(), 1e-30)
        qinfo[path] = {"group": g, "bits": b, "shape": list(v.shape), "max_rel_err": float(err)}
        sd[name] = torch.from_numpy(deq)  # what the reference model gets
    d = os.path.join(out_root, tag)
    os.makedirs(d, exist_ok=True)
    total = save_safetensors(os.path.join(d, "model.safetensors"), out, {"format": "mlx"})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": {k: "model.safetensors" for k in sorted(out)}}, f, indent=4)
    quant = {"group_size": group, "bits": bits, "mode": "affine", **overrides}
    cfg["quantization"] = quant
    cfg["quantization_config"] = quant
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(sorted(cfg.items())), f, indent=4)
    print(tag, "from", source, f"{bits}-bit group {group}:", len(qinfo), "quantized modules,", len(out), "tensors")
    for p, i in sorted(qinfo.items()):
        print("   ", p, i)

    # the reference: the source model with the dequantized weights
    model = load_hf(src)
    ids = json.load(open(os.path.join(src_root, "ref", source + ".json")))["prompt"]
    base = logits_of(model, ids)
    new = {}
    for path in qinfo:
        name = path + ".weight"
        w = sd[name]
        if ".experts.switch_glu.gate_proj" in name or ".experts.switch_glu.up_proj" in name:
            continue
        if ".experts.switch_glu.down_proj" in name:
            new[hf_name(path.replace(".experts.switch_glu.down_proj", ".experts.down_proj"))] = w
        else:
            new[hf_name(name)] = w
    for path in qinfo:
        if path.endswith(".experts.switch_glu.gate_proj"):
            up = path.replace("gate_proj", "up_proj")
            assert up in qinfo
            fused = torch.cat([sd[path + ".weight"], sd[up + ".weight"]], dim=-2)
            new[hf_name(path.replace(".experts.switch_glu.gate_proj", ".experts.gate_up_proj"))] = fused
    msd = model.state_dict()
    for k, v in new.items():
        assert k in msd and tuple(msd[k].shape) == tuple(v.shape), (k, v.shape)
    res = model.load_state_dict(new, strict=False)
    assert not res.unexpected_keys, res.unexpected_keys
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    for k, v in new.items():
        assert torch.equal(model.state_dict()[k], v.to(torch.float32)), k
    logits = logits_of(model, ids)
    logits64 = logits_of(model.to(torch.float64), ids)
    model.to(torch.float32)
    rd = os.path.join(out_root, "ref")
    os.makedirs(rd, exist_ok=True)
    np.save(os.path.join(rd, tag + ".logits.npy"), logits.astype(np.float32))
    info = {"prompt": ids, "source": source, "bits": bits, "group_size": group, "quantizer": QUANTIZER,
            "n_quantized_modules": len(qinfo), "overrides": overrides,
            "hf_f32_vs_f64_worst_rel_l2": float(rel_l2_rows(logits, logits64).max()),
            "vs_unquantized_worst_rel_l2": float(rel_l2_rows(logits, base).max()),
            "vs_unquantized_mean_rel_l2": float(rel_l2_rows(logits, base).mean()),
            "top1_agreement_with_unquantized": float((logits.argmax(-1) == base.argmax(-1)).mean()),
            "transformers": transformers.__version__, "torch": torch.__version__}
    if any(p.startswith("embed_vision.") for p in qinfo):
        feats = vision_features(model, os.path.join(src_root, "images", "astronaut384.png"))
        np.save(os.path.join(rd, tag + ".features.npy"), feats)
        info["features"] = {"image": "astronaut384.png", "budget": 70, "shape": list(feats.shape)}
    with open(os.path.join(rd, tag + ".json"), "w") as f:
        json.dump(info, f)
    print(tag, {k: v for k, v in info.items() if k != "prompt"})


def main():
    src_root, out_root = sys.argv[1], sys.argv[2]
    # self-checks of the bit stream: 3- and 6-bit packing as MLX's extract_bits reads it
    q = np.tile(np.arange(8, dtype=np.uint8), 4)[None]
    by = pack(q, 3).view(np.uint8)[0][:3]
    assert list(by) == [0x88, 0xC6, 0xFA], [hex(x) for x in by]
    assert np.array_equal(unpack(pack(np.array([[1, 2, 3, 63, 0, 5, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17]],
                                                dtype=np.uint8), 6), 6, 16)[0],
                          [1, 2, 3, 63, 0, 5, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17])
    for v in VARIANTS:
        convert(src_root, out_root, *v)


if __name__ == "__main__":
    main()
