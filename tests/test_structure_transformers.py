"""Transformers in depth: attention heads / head dims, embedding widths and MLP widths as groups.

Tiny configurations of torchvision's VisionTransformer, timm's ViT and Swin, and Hugging Face
BERT (random weights).  Each pruned model must run, keep its output shape and reload exactly
from its plan (safetensors + JSON plan re-applied to a freshly built original).
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from prunekit.algorithms.oneshot import prune as oneshot_prune
from prunekit.structure import PruningPlan, StructureError, analyze, apply_plan, zero_channels


def _tv_vit():
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32,
                             mlp_dim=64, num_classes=10), torch.randn(2, 3, 32, 32)


def _timm_vit():
    vt = pytest.importorskip("timm.models.vision_transformer")
    return vt.VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2,
                                num_classes=10), torch.randn(2, 3, 32, 32)


def _timm_swin():
    sw = pytest.importorskip("timm.models.swin_transformer")
    return sw.SwinTransformer(img_size=32, patch_size=4, window_size=4, embed_dim=16, depths=(1, 1),
                              num_heads=(2, 4), num_classes=10), torch.randn(2, 3, 32, 32)


def _tv_swin():
    from torchvision.models.swin_transformer import SwinTransformer

    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[2, 4], window_size=[4, 4],
                           num_classes=10), torch.randn(2, 3, 32, 32)


def _bert():
    tf = pytest.importorskip("transformers")
    cfg = tf.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=16, num_labels=3)
    return tf.BertForSequenceClassification(cfg), {"input_ids": torch.randint(0, 50, (2, 8))}


def _hf_vit():
    tf = pytest.importorskip("transformers")
    cfg = tf.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=16,
                       patch_size=4, num_channels=3, num_labels=3)
    return tf.ViTForImageClassification(cfg), torch.randn(2, 3, 16, 16)


BUILDERS = {"tv_vit": _tv_vit, "timm_vit": _timm_vit, "timm_swin": _timm_swin, "tv_swin": _tv_swin, "bert": _bert,
            "hf_vit": _hf_vit}


def build(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    model, x = BUILDERS[kind]()
    return model.eval(), x


def run(model, x) -> torch.Tensor:
    with torch.no_grad():
        out = model(**x) if isinstance(x, dict) else model(x)
    return out.logits if hasattr(out, "logits") else out


def prune_all(s, ratio: float = 0.3) -> None:
    """Remove ``ratio`` of every group (channels 1..k, so not always the first ones)."""
    for g in s.groups:
        k = s.allowed_removal(g.name, int(ratio * g.channels))
        if k:
            s.prune(g.name, list(range(1, k + 1)))


def reload(model, x, plan: dict, kind: str, tmp_path) -> torch.nn.Module:
    """Save as safetensors + JSON plan, rebuild the original, re-apply the plan, load the weights."""
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    fresh, _ = build(kind, seed=1)  # other random weights: everything must come from the file
    apply_plan(fresh, x, PruningPlan.from_dict(json.loads((tmp_path / "plan.json").read_text())))
    fresh.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    return fresh.eval()


def attention_groups(s) -> list[str]:
    return [g.name for g in s.groups if g.name.endswith((".qkv", ".query", ".q_proj"))]


@pytest.mark.parametrize("kind", ["tv_vit", "timm_vit", "bert", "hf_vit", "timm_swin", "tv_swin"])
@pytest.mark.parametrize("mode", ["head_dims", "heads"])
def test_prune_heads_embedding_and_mlp(kind, mode, tmp_path):
    model, x = build(kind)
    before = run(model, x)
    s = analyze(model, x, attention=mode)
    if kind == "timm_swin":  # its patch merging flattens 2x2 positions before the channels: stage 1's stream stays whole
        assert [w.split(":")[0] for w in s.warnings] == ["group 'patch_embed.proj'"]
    else:
        assert not s.warnings
    names = [g.name for g in s.groups]
    if kind != "tv_vit":  # nn.MultiheadAttention ties heads to the embedding: one group there
        assert attention_groups(s)
    widths = {name: s.group(name).channels for name in names}
    prune_all(s)
    after = run(model, x)
    assert after.shape == before.shape
    assert all(s.group(n).channels < widths[n] for n in names if widths[n] >= 4)  # 30% of 2 heads is 0
    assert s.plan.attention == mode
    again = reload(model, x, s.plan.to_dict(), kind, tmp_path)
    assert torch.equal(run(again, x), after)


def test_vit_embedding_width_and_hidden_dim():
    model, x = build("tv_vit")
    s = analyze(model, x)
    g = s.group("conv_proj")  # class token, position embedding, every LayerNorm, MHA and MLP output
    assert {"class_token", "encoder.pos_embedding", "heads.head"} <= {m.layer for m in g.members}
    assert g.channels == 8 and s.removable("conv_proj") == 7  # one dimension in each of the 4 heads
    s.prune("conv_proj", [0, 5])
    assert model.hidden_dim == 24 and model.conv_proj.out_channels == 24
    mha = model.encoder.layers[0].self_attention
    assert (mha.embed_dim, mha.num_heads, mha.head_dim) == (24, 4, 6)
    assert run(model, x).shape == (2, 10)


def test_vit_whole_heads():
    model, x = build("tv_vit")
    s = analyze(model, x, attention="heads")
    assert s.group("conv_proj").channels == 4
    s.prune("conv_proj", [2])
    mha = model.encoder.layers[0].self_attention
    assert (mha.embed_dim, mha.num_heads, mha.head_dim) == (24, 3, 8)
    assert model.encoder.layers[0].num_heads == 3
    assert run(model, x).shape == (2, 10)


def test_timm_head_sizes_follow():
    model, x = build("timm_vit")
    s = analyze(model, x, attention="heads")
    attn = model.blocks[0].attn
    s.prune("blocks.0.attn.qkv", [1])
    assert (attn.num_heads, attn.head_dim, attn.attn_dim, attn.qkv.out_features, attn.proj.in_features) == (3, 8, 24, 72, 24)
    s = analyze(build("timm_vit")[0], x)
    attn = s.model.blocks[0].attn
    s.prune("blocks.0.attn.qkv", [0, 3])
    assert (attn.num_heads, attn.head_dim, attn.qkv.out_features) == (4, 6, 72)
    assert run(s.model, x).shape == (2, 10)


def test_bert_head_sizes_follow():
    model, x = build("bert")
    s = analyze(model, x, attention="heads")
    s.prune("bert.encoder.layer.0.attention.self.query", [0, 2])
    sa = model.bert.encoder.layer[0].attention.self
    assert (sa.num_attention_heads, sa.attention_head_size, sa.all_head_size) == (2, 8, 16)
    assert sa.key.out_features == sa.value.out_features == 16
    assert model.bert.encoder.layer[0].attention.output.dense.in_features == 16
    assert run(model, x).shape == (2, 3)


@pytest.mark.parametrize("kind", ["timm_vit", "bert", "hf_vit", "timm_swin", "tv_swin"])
def test_removing_a_head_equals_zeroing_it(kind):
    model, x = build(kind)
    s = analyze(model, x, attention="heads")
    name = attention_groups(s)[0]
    assert s.group(name).exact
    c = copy.deepcopy(s)
    zero_channels(c, name, [1])
    want = run(c.model, x)
    s.prune(name, [1])
    assert torch.allclose(run(model, x), want, atol=1e-5, rtol=1e-4)


def test_attention_none_keeps_attention_whole():
    model, x = build("timm_vit")
    s = analyze(model, x, attention="none")
    assert not attention_groups(s) and "patch_embed.proj" in [g.name for g in s.groups]
    model, x = build("tv_vit")
    assert "conv_proj" not in [g.name for g in analyze(model, x, attention="none").groups]
    with pytest.raises(StructureError, match="attention must be one of"):
        analyze(model, x, attention="all")


def test_plan_records_attention_and_refuses_another():
    model, x = build("timm_vit")
    s = analyze(model, x, attention="heads")
    s.prune("blocks.0.attn.qkv", [0])
    plan = PruningPlan.from_dict(s.plan.to_dict())
    assert plan.attention == "heads"
    with pytest.raises(StructureError, match="attention='heads'"):
        analyze(build("timm_vit")[0], x, plan=plan, attention="head_dims")
    assert PruningPlan.from_dict({"groups": {}}).attention == "head_dims"  # plans written before


def test_oneshot_prunes_transformers():
    model, x = build("timm_vit")
    before = run(model, x)
    pruned = oneshot_prune(model, x, ratio=0.3)
    pruned = getattr(pruned, "model", pruned)
    assert run(pruned, x).shape == before.shape
    attn = pruned.blocks[0].attn
    assert attn.head_dim < 8 and pruned.patch_embed.proj.out_channels < 32


def test_netadapt_adapts_a_transformer(tmp_path):
    from prunekit import NetAdapt
    from prunekit.resources import count

    model, x = build("timm_vit")
    ref = run(model, x)

    def evaluate(m) -> float:  # closeness to the original outputs stands in for accuracy
        return -float((run(m, x) - ref).abs().mean())

    result = NetAdapt(model, x, finetune=lambda m, iters: None, evaluate=evaluate, work_dir=tmp_path / "w",
                      progress=False, log=lambda s: None, budget_ratio=0.7, short_term_iters=0,
                      min_channels_step=1, init_reduction_ratio=0.15, reduction_decay=1.0, max_iters=3, seed=0,
                      step_mode="resource").run()
    groups = {h["group"] for h in result.history}
    assert result.history and all(h["resource"] <= h["target"] for h in result.history)
    tried = {c["group"] for h in result.history for c in h["candidates"]}
    assert {"patch_embed.proj", "blocks.0.attn.qkv", "blocks.0.mlp.fc1"} <= tried and groups <= tried
    assert result.metrics["macs"] < count(model, x).macs


@pytest.mark.parametrize("kind", ["tv_vit", "timm_vit", "tv_swin"])
def test_checkpoint_of_a_pruned_transformer_reloads_exactly(kind, tmp_path):
    from prunekit.io import load_checkpoint, save_checkpoint

    model, x = build(kind)
    pruned = oneshot_prune(model, x, ratio=0.3).eval()
    save_checkpoint(tmp_path / "ck", pruned)
    fresh, _ = build(kind, seed=1)
    loaded = load_checkpoint(tmp_path / "ck", model=fresh).model
    assert torch.equal(run(loaded, x), run(pruned, x))
    assert sum(p.numel() for p in loaded.parameters()) < sum(p.numel() for p in model.parameters())
