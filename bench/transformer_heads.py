"""Transformers at ratio 0.3: prunekit against Torch-Pruning with its documented head settings.

Models (random weights, 224x224 input, ``num_classes=10``): torchvision ``vit_b_16`` and
``swin_t``, timm ``deit_small_patch16_224`` and ``swin_tiny_patch4_window7_224``.

* prunekit: ``prunekit.prune(model, x, ratio=0.3, criterion="l1")`` (default
  ``attention="head_dims"``: the embedding width, every head's dimension and every MLP width
  lose 30 %); its plan is saved as JSON with the weights as safetensors, re-applied to a freshly
  built original (other random weights) and the weights loaded: the column "save/load" is the
  largest absolute output difference to the pruned model (0 means exact).
* prunekit with Torch-Pruning's rounding ("pk-ceil"): the same groups and L1 scores through the
  structure API, removing ceil(0.3 n) units per group where ``prunekit.prune`` removes
  floor(0.3 n): TP keeps floor(0.7 n) channels, which is the whole difference at equal groups.
* Torch-Pruning 1.6.1 as its own examples do it, L1 magnitude, ``pruning_ratio=0.3``, the
  classifier ignored:
  torchvision ViT as in ``examples/torchvision_models/torchvision_pruning.py``
  (``channel_groups={mha: num_heads}``, then ``model.hidden_dim = conv_proj.out_channels``);
  timm models as in ``examples/transformers/prune_timm_vit.py`` (its replacement forward for
  timm's ``Attention``, ``num_heads={qkv: heads}``, ``prune_head_dims=True``,
  ``prune_num_heads=False``, ``round_to=1``, then ``num_heads``/``head_dim`` set from the pruner);
  torchvision Swin has no Torch-Pruning example ("TODO: support Swin ops"): the README call.

MACs and parameters are counted with ``prunekit.measure`` for both tools.  Each (model, tool)
runs in its own process (``--timeout`` s, ``--mem-gb`` GiB resident, polled); results are cached
in ``runs/bench/transformers/MODEL/TOOL.json`` (``--force`` redoes them).  The markdown table goes
to stdout and to ``bench/results/transformers.md``.

    OMP_NUM_THREADS=1 nice -n 10 python bench/transformer_heads.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import rss_gb  # noqa: E402

RATIO = 0.3
NUM_CLASSES = 10
MODELS = ["vit_b_16", "deit_small_patch16_224", "swin_t", "swin_tiny_patch4_window7_224"]
TOOLS = ("prunekit", "prunekit_ceil", "tp")
OUT = Path("runs/bench/transformers")
REPORT = Path("bench/results/transformers.md")


def build(name: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """The model with random weights (nothing downloaded) and a 1x3x224x224 input."""
    torch.manual_seed(seed)
    if name in ("vit_b_16", "swin_t"):
        import torchvision

        model = torchvision.models.get_model(name, weights=None, num_classes=NUM_CLASSES)
    else:
        import timm

        model = timm.create_model(name, pretrained=False, num_classes=NUM_CLASSES)
    torch.manual_seed(1234)
    return model.eval(), torch.randn(1, 3, 224, 224)


def counts(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    from prunekit import measure

    r = measure(model, x)
    return r.macs, r.params


def prune_prunekit(model: nn.Module, x: torch.Tensor, name: str) -> tuple[nn.Module, dict[str, Any]]:
    import prunekit
    from prunekit.io.checkpoint import plan_of

    pruned = prunekit.prune(model, x, ratio=RATIO, criterion="l1")
    return pruned, {"plan": plan_of(pruned)}


def prune_prunekit_ceil(model: nn.Module, x: torch.Tensor, name: str) -> tuple[nn.Module, dict[str, Any]]:
    """prunekit's structure API with Torch-Pruning's rounding: ceil(0.3 n) units removed per group
    (``prunekit.prune`` removes floor(0.3 n)); same L1 scores, same groups."""
    import copy
    import math

    from prunekit.algorithms.oneshot import score_groups
    from prunekit.algorithms.selection import lowest
    from prunekit.structure import analyze

    pruned = copy.deepcopy(model)
    s = analyze(pruned, x)
    scores = score_groups(s, "l1")
    for g in s.groups:
        k = s.allowed_removal(g.name, math.ceil(RATIO * g.channels))
        if k:
            s.prune(g.name, lowest(scores[g.name], k))
    return pruned, {"plan": s.plan.to_dict()}


def _timm_forward(self, x, attn_mask=None, is_causal=False, **kwargs):
    """Torch-Pruning's replacement forward for timm's Attention (examples/transformers/prune_timm_vit.py)."""
    import torch.nn.functional as F

    B, N, C = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = self.q_norm(q), self.k_norm(k)
    x = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0)
    x = x.transpose(1, 2).reshape(B, N, -1)
    return self.proj_drop(self.proj(x))


def prune_tp(model: nn.Module, x: torch.Tensor, name: str) -> tuple[nn.Module, dict[str, Any]]:
    import torch_pruning as tp
    from torchvision.models.vision_transformer import VisionTransformer

    ignored = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == NUM_CLASSES]
    kwargs: dict[str, Any] = {}
    attns = []
    if isinstance(model, VisionTransformer):
        kwargs["channel_groups"] = {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    elif name == "deit_small_patch16_224":
        from timm.layers.attention import Attention

        attns = [m for m in model.modules() if isinstance(m, Attention)]
        for m in attns:
            m.forward = _timm_forward.__get__(m, Attention)
        kwargs.update(num_heads={m.qkv: m.num_heads for m in attns}, prune_head_dims=True, prune_num_heads=False,
                      round_to=1)
    elif name == "swin_tiny_patch4_window7_224":  # no example: its num_heads setting
        from timm.models.swin_transformer import WindowAttention

        kwargs["num_heads"] = {m.qkv: m.num_heads for m in model.modules() if isinstance(m, WindowAttention)}
    pruner = tp.pruner.BasePruner(model, x, importance=tp.importance.GroupMagnitudeImportance(p=1),
                                  pruning_ratio=RATIO, ignored_layers=ignored, **kwargs)
    pruner.step()
    if isinstance(model, VisionTransformer):
        model.hidden_dim = model.conv_proj.out_channels
    for m in attns:
        m.num_heads = pruner.num_heads[m.qkv]
        m.head_dim = m.qkv.out_features // (3 * m.num_heads)
    return model, {}


def save_load_diff(name: str, pruned: nn.Module, plan: dict, x: torch.Tensor) -> float:
    """Largest |output difference| after safetensors + JSON plan -> fresh original -> apply_plan -> load."""
    from safetensors.torch import load_file, save_file

    from prunekit.structure import PruningPlan, apply_plan

    with tempfile.TemporaryDirectory() as tmp:
        save_file({k: v.contiguous() for k, v in pruned.state_dict().items()}, f"{tmp}/w.safetensors")
        Path(f"{tmp}/plan.json").write_text(json.dumps(plan))
        fresh, _ = build(name, seed=7)
        apply_plan(fresh, x, PruningPlan.from_dict(json.loads(Path(f"{tmp}/plan.json").read_text())))
        fresh.load_state_dict(load_file(f"{tmp}/w.safetensors"))
    with torch.no_grad():
        return float((fresh.eval()(x) - pruned(x)).abs().max())


def child(name: str, tool: str, out: Path) -> None:
    """Prune one model with one tool; write the record as JSON."""
    torch.set_num_threads(1)
    model, x = build(name)
    rec: dict[str, Any] = {"model": name, "tool": tool}
    rec["macs_before"], rec["params_before"] = counts(model, x)
    with torch.no_grad():
        shape = tuple(model(x).shape)
    t0 = time.perf_counter()
    pruned, extra = {"prunekit": prune_prunekit, "prunekit_ceil": prune_prunekit_ceil, "tp": prune_tp}[tool](model, x, name)
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    pruned.eval()
    with torch.no_grad():
        rec["same_shape"] = tuple(pruned(x).shape) == shape
    rec["macs_after"], rec["params_after"] = counts(pruned, x)
    if tool != "tp":
        rec["save_load_diff"] = save_load_diff(name, pruned, extra["plan"], x)
    out.write_text(json.dumps(rec, indent=1))


def run_one(name: str, tool: str, timeout: int, mem_gb: float, force: bool) -> dict[str, Any]:
    """The cached record, or a fresh one from a child process (killed past the limits)."""
    path = OUT / name / f"{tool}.json"
    if path.exists() and not force:
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    err = path.with_suffix(".err")
    with err.open("w") as log:
        proc = subprocess.Popen([sys.executable, __file__, "--child", name, tool, str(path)], stderr=log)
        t0, why = time.time(), None
        while proc.poll() is None:
            time.sleep(1)
            rss = rss_gb(proc.pid)
            if time.time() - t0 > timeout or rss > mem_gb:
                why = f"killed after {time.time() - t0:.0f} s" if rss <= mem_gb else f"killed: over {mem_gb:g} GiB"
                proc.kill()
                proc.wait()
    if proc.returncode == 0 and path.exists():
        return json.loads(path.read_text())
    last = [line for line in err.read_text().splitlines() if line.strip()][-1:] or ["no output"]
    rec = {"model": name, "tool": tool, "error": why or last[0][:160]}
    path.write_text(json.dumps(rec, indent=1))
    return rec



def table(rows: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The markdown table: one line per model."""
    lines = ["| model | prunekit MACs | prunekit, TP's rounding: MACs | TP MACs | params (pk / pk-ceil / TP) "
             "| output shape kept (pk / pk-ceil / TP) | save/load max abs diff (pk / pk-ceil) "
             "| prune time (pk / pk-ceil / TP) |", "|---|---|---|---|---|---|---|---|"]

    def ratio(r: dict, key: str) -> str:
        return f"x{r[key + '_after'] / r[key + '_before']:.3f}" if "error" not in r else f"fail: {r['error']}"

    def diff(r: dict) -> str:
        return "-" if "error" in r else f"{r['save_load_diff']:.1e}" if r["save_load_diff"] else "0 (exact)"

    for name, by_tool in rows.items():
        rs = [by_tool[t] for t in TOOLS]
        shape = " / ".join("-" if "error" in r else ("yes" if r["same_shape"] else "NO") for r in rs)
        secs = " / ".join("-" if "error" in r else f"{r['seconds']:.1f} s" for r in rs)
        params = " / ".join("-" if "error" in r else ratio(r, "params") for r in rs)
        lines.append(f"| {name} | {ratio(rs[0], 'macs')} | {ratio(rs[1], 'macs')} | {ratio(rs[2], 'macs')} | "
                     f"{params} | {shape} | {diff(rs[0])} / {diff(rs[1])} | {secs} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=MODELS)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--mem-gb", type=float, default=10.0)
    p.add_argument("--force", action="store_true")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]))
        return
    rows = {m: {t: run_one(m, t, args.timeout, args.mem_gb, args.force) for t in TOOLS} for m in args.models}
    from importlib.metadata import version

    head = (f"Command: `OMP_NUM_THREADS=1 python bench/transformer_heads.py`, {date.today()}, "
            f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__.split('+')[0]}, "
            f"Torch-Pruning {version('torch-pruning')}; ratio {RATIO}, input 1x3x224x224, random weights.")
    text = head + "\n\n" + table(rows) + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
