#!/usr/bin/env python3
"""Build tiny random-weight Gemma 4 checkpoints and Hugging Face reference outputs for gemma4c's tests.

Run on a machine with transformers 5.17 + torch (the device machine):
    python3 tools/make_fixtures.py OUTDIR               # checkpoints + references
    python3 tools/make_fixtures.py OUTDIR --refs-only   # references for the checkpoints already in OUTDIR
It writes, per variant (dense = 31B-style, moe = 26B-A4B-style, e = E2B/E4B-style) and dtype (f32, bf16):
    OUTDIR/<variant>-<dtype>/{config.json, model.safetensors[.index.json + shards]}
    OUTDIR/ref/<variant>-<dtype>.json          prompt ids, greedy continuation (full recompute, argmax)
    OUTDIR/ref/<variant>-<dtype>.logits.npy    float32 [n_prompt, vocab], every position, softcapped
    OUTDIR/ref/<variant>-<dtype>.logits64.npy  the same computed in float64 (stored as float32)
    OUTDIR/ref/<variant>-<dtype>.hidden.npy    float32 [L+1, n_prompt, H] (HF output_hidden_states; for debugging)
plus dense-f32/config_legacy.json (global_head_dim / num_global_key_value_heads instead of per_layer_config) and
dense-text-f32/ (bare gemma4_text checkpoint, Gemma4ForCausalLM layout, same weights as dense-f32).

Every parameter and persistent buffer is randomized (norm weights, layer_scalar, router scales...) so no term is
trivially 1 or 0. References are computed on the CPU in float32 with eager attention; a bf16 checkpoint is reloaded
and upcast to float32 (float32 arithmetic on bf16-rounded weights). Spec: docs/gemma4-spec.md §9.
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from transformers import Gemma4Config, Gemma4ForCausalLM, Gemma4ForConditionalGeneration

VOCAB = 512
WINDOW = 8
PROMPT_LEN = 40
N_GREEDY = 12
# Multimodal ids remapped into the tiny vocabulary (real ids are >= 255999, spec §5).
MM_IDS = dict(boi_token_id=500, eoi_token_id=501, image_token_id=502, video_token_id=503,
              boa_token_id=504, eoa_token_index=505, audio_token_id=506)

S, F = "sliding_attention", "full_attention"


def text_cfg(variant):
    base = dict(vocab_size=VOCAB, hidden_size=64, num_attention_heads=4, head_dim=32, global_head_dim=64,
                sliding_window=WINDOW, final_logit_softcapping=30.0, rms_norm_eps=1e-6,
                max_position_embeddings=4096, pad_token_id=0, bos_token_id=2, eos_token_id=1,
                tie_word_embeddings=True,
                rope_parameters={S: {"rope_type": "default", "rope_theta": 10000.0},
                                 F: {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                     "rope_theta": 1000000.0}})
    if variant == "dense":  # 31B-style: k_eq_v, fewer global kv heads, bidirectional vision mask
        base.update(num_hidden_layers=6, layer_types=[S, S, F, S, S, F], num_key_value_heads=2,
                    num_global_key_value_heads=1, attention_k_eq_v=True, intermediate_size=128,
                    hidden_size_per_layer_input=0, use_bidirectional_attention="vision")
    elif variant == "moe":  # 26B-A4B-style: every layer MoE + dense shared MLP
        base.update(num_hidden_layers=4, layer_types=[S, S, S, F], num_key_value_heads=2,
                    num_global_key_value_heads=1, attention_k_eq_v=True, intermediate_size=48,
                    hidden_size_per_layer_input=0, use_bidirectional_attention="vision",
                    enable_moe_block=True, num_experts=8, top_k_experts=2, moe_intermediate_size=32)
    elif variant == "e":  # E2B-style: PLE, KV sharing, double-wide MLP on shared layers, MQA
        base.update(num_hidden_layers=8, layer_types=[S, S, S, F, S, S, S, F], num_key_value_heads=1,
                    attention_k_eq_v=False, intermediate_size=96, hidden_size_per_layer_input=16,
                    vocab_size_per_layer_input=VOCAB, num_kv_shared_layers=4, use_double_wide_mlp=True,
                    use_bidirectional_attention=None)
    else:
        raise ValueError(variant)
    return base


def vision_cfg(variant):
    large = variant != "e"
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=2, head_dim=16, patch_size=16, pooling_kernel_size=3,
                position_embedding_size=64, use_clipped_linears=not large, standardize=large, rms_norm_eps=1e-6)


def randomize(model, seed):
    """Fill every parameter and persistent buffer with seeded values that exercise every term."""
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    seen = set()
    for name in sorted(sd):
        t = sd[name]
        if t.data_ptr() in seen:  # tied lm_head
            continue
        seen.add(t.data_ptr())
        shape = t.shape
        leaf = name.split(".")[-1]
        if "norm" in name and leaf == "weight" or leaf in ("layer_scalar", "scale", "per_expert_scale",
                                                            "std_scale"):
            v = 0.5 + torch.rand(shape, generator=g)
        elif leaf == "std_bias":
            v = 0.1 * torch.randn(shape, generator=g)
        elif leaf in ("input_min", "output_min"):
            v = -(1.0 + 2.0 * torch.rand(shape, generator=g))
        elif leaf in ("input_max", "output_max"):
            v = 1.0 + 2.0 * torch.rand(shape, generator=g)
        elif "embed_tokens" in name or "position_embedding_table" in name:
            v = torch.randn(shape, generator=g)
        elif len(shape) >= 2:
            v = torch.randn(shape, generator=g) / math.sqrt(shape[-1])
        else:
            v = torch.randn(shape, generator=g)
        with torch.no_grad():
            t.copy_(v.to(t.dtype))


def forward_logits(model, ids):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True, use_cache=False)
    hs = out.hidden_states
    return out.logits[0].float().numpy(), torch.stack([h[0] for h in hs]).float().numpy()


def greedy(model, ids, n):
    seq = list(ids)
    for _ in range(n):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1]
        seq.append(int(torch.argmax(logits)))
    return seq[len(ids):]


def load(path, cls=Gemma4ForConditionalGeneration):
    # eager attention and eager (per-expert loop) MoE: the plainest reference, and the only one that runs in f64
    try:
        return cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager",
                                   experts_implementation="eager").eval()
    except (TypeError, ValueError) as e:
        print("experts_implementation not accepted:", e)
        m = cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
        for c in (m.config, m.config.get_text_config()):
            c._experts_implementation = "eager"
        return m


def rel_l2_rows(a, b):
    return np.sqrt(((a - b) ** 2).sum(-1) / (b ** 2).sum(-1))


def write_ref(out, tag, model, ids):
    """Reference outputs in float32 (the model as loaded) and float64 (the same weights, exact arithmetic).
    Two f32 implementations differ by their rounding noise (~1e-5 relative on these logits); the f64 logits are
    the exact function, so gemma4c's f32 error is measured against them (tests/unit/test_model.c)."""
    logits, hidden = forward_logits(model, ids)
    cont = greedy(model, ids, N_GREEDY)
    model64 = model.to(torch.float64)
    logits64, _ = forward_logits(model64, ids)
    cont64 = greedy(model64, ids, N_GREEDY)
    model.to(torch.float32)
    hf_err = float(rel_l2_rows(logits.astype(np.float64), logits64).max())
    np.save(os.path.join(out, "ref", tag + ".logits.npy"), logits.astype(np.float32))
    np.save(os.path.join(out, "ref", tag + ".logits64.npy"), logits64.astype(np.float32))
    np.save(os.path.join(out, "ref", tag + ".hidden.npy"), hidden.astype(np.float32))
    with open(os.path.join(out, "ref", tag + ".json"), "w") as f:
        json.dump({"prompt": ids, "greedy": cont, "greedy_f64": cont64, "hf_f32_vs_f64_worst_rel_l2": hf_err,
                   "transformers": transformers.__version__, "torch": torch.__version__}, f)
    print(tag, "greedy", cont, "f64", cont64, "hf f32 vs f64 worst rel L2 %.3g" % hf_err,
          "logit range", float(logits.min()), float(logits.max()))
    return logits


def refs_only(out):
    """Recompute reference outputs for the checkpoints already in OUT (prompts from the existing ref/*.json)."""
    for tag in ["dense-f32", "dense-bf16", "moe-f32", "moe-bf16", "e-f32", "e-bf16", "dense-text-f32"]:
        d = os.path.join(out, tag)
        arch = json.load(open(os.path.join(d, "config.json")))["architectures"][0]
        cls = Gemma4ForCausalLM if arch == "Gemma4ForCausalLM" else Gemma4ForConditionalGeneration
        ids = json.load(open(os.path.join(out, "ref", tag + ".json")))["prompt"]
        write_ref(out, tag, load(d, cls), ids)


def main():
    out = sys.argv[1]
    if "--refs-only" in sys.argv:
        return refs_only(out)
    os.makedirs(os.path.join(out, "ref"), exist_ok=True)
    torch.manual_seed(0)
    for vi, variant in enumerate(["dense", "moe", "e"]):
        cfg = Gemma4Config(text_config=text_cfg(variant), vision_config=vision_cfg(variant), audio_config=None,
                           **MM_IDS)
        model = Gemma4ForConditionalGeneration(cfg).eval()
        randomize(model, 1000 + vi)
        rng = np.random.default_rng(7 + vi)
        ids = [2] + [int(x) for x in rng.integers(3, 490, PROMPT_LEN - 1)]
        for dtype, tdt in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            d = os.path.join(out, f"{variant}-{dtype}")
            # moe-f32 is written sharded to exercise model.safetensors.index.json.
            shard = "40KB" if (variant, dtype) == ("moe", "f32") else "2GB"
            model.to(tdt).save_pretrained(d, safe_serialization=True, max_shard_size=shard)
            ref_model = load(d)
            write_ref(out, f"{variant}-{dtype}", ref_model, ids)
            print(open(os.path.join(d, "config.json")).read())
        model.to(torch.float32)
        if variant == "dense":
            # Legacy config style (checkpoints published before per_layer_config existed).
            cj = json.load(open(os.path.join(out, "dense-f32", "config.json")))
            tc = cj["text_config"]
            tc.pop("per_layer_config", None)
            tc["global_head_dim"] = 64
            tc["num_global_key_value_heads"] = 1
            with open(os.path.join(out, "dense-f32", "config_legacy.json"), "w") as f:
                json.dump(cj, f, indent=2)
            a = Gemma4Config.from_pretrained(os.path.join(out, "dense-f32")).text_config
            tmp = os.path.join(out, "_legacy")
            os.makedirs(tmp, exist_ok=True)
            shutil.copy(os.path.join(out, "dense-f32", "config_legacy.json"), os.path.join(tmp, "config.json"))
            b = Gemma4Config.from_pretrained(tmp).text_config
            print("per_layer_config current:", a.per_layer_config)
            print("per_layer_config legacy :", b.per_layer_config)
            shutil.rmtree(tmp)
            # Bare gemma4_text checkpoint (Gemma4ForCausalLM key layout). The model was just saved as bf16, so its
            # weights are bf16-rounded here: dense-text-f32 holds dense-bf16's values in f32 storage.
            tmodel = Gemma4ForCausalLM(cfg.text_config).eval()
            lm_sd = {k[len("model.language_model."):]: v for k, v in model.state_dict().items()
                     if k.startswith("model.language_model.")}
            missing = tmodel.model.load_state_dict(lm_sd, strict=False)
            print("text-only load:", missing)
            d = os.path.join(out, "dense-text-f32")
            tmodel.save_pretrained(d, safe_serialization=True)
            lt = write_ref(out, "dense-text-f32", load(d, Gemma4ForCausalLM), ids)
            lf = np.load(os.path.join(out, "ref", "dense-bf16.logits.npy"))
            print("text-only vs multimodal (dense-bf16) max|diff|:", float(np.abs(lt - lf).max()))
            print(open(os.path.join(d, "config.json")).read())


if __name__ == "__main__":
    main()
