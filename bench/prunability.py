"""Prunability of every torchvision classifier: prunekit one-shot vs Torch-Pruning called directly.

For each model of ``torchvision.models.list_models(module=torchvision.models)`` (built with
``weights=None, num_classes=10``; googlenet/inception_v3 with ``aux_logits=False,
init_weights=True``), both tools remove 30 % of the channels with an L1 criterion, and three
things are checked: the pruning runs, the pruned model's output shape is the original's, and its
MACs (``prunekit.measure`` for both tools, so the figures compare) are strictly lower.

* prunekit: ``prunekit.prune(model, x, ratio=0.3, criterion="l1")``.
* Torch-Pruning (TP) as its README teaches: ``tp.importance.MagnitudeImportance(p=1)``, every
  ``nn.Linear``/``nn.Conv2d`` with 10 outputs (the classifier) in ``ignored_layers`` (in
  efficientnet_b0/b1/b3/b5/b6 this also keeps 2-7 ten-channel squeeze-excitation convs whole),
  ``tp.pruner.BasePruner(model, x, importance=imp, pruning_ratio=0.3, ignored_layers=...)``
  (``MagnitudePruner`` is the same class in TP 1.6.1), ``pruner.step()``.  For a
  ``VisionTransformer`` only, the two lines TP's own torchvision example adds: ``round_to`` =
  the number of heads, and ``model.hidden_dim = model.conv_proj.out_channels`` after the step
  (without them the pruned ViT's forward fails: ``RuntimeError: shape '[1, 768, 4]' is invalid``).

Inputs are 1x3x64x64, except inception_v3 (96; 75 is its minimum) and maxvit_t (224: its 7x7
partitions need it); ViTs are built with ``image_size=64`` (vit_h_14: 70, a multiple of its
14-pixel patches); swin_* run at 64 too (they pad to their windows).  Models whose published parameter count (torchvision's weights metadata,
ImageNet head) is over ``--max-params-m`` million (default 500: vit_h_14 and regnet_y_128gf,
~640 M each, i.e. 2.5 GB of weights per copy, and both tools hold several copies) are skipped.

Every (model, tool) runs in its own subprocess with ``--timeout`` seconds and ``--mem-gb``
GiB of resident memory (polled; the process is killed past it); its result is cached in
``OUT/MODEL/TOOL.json``, so a re-run skips what is done (``--force`` redoes it).  The report
goes to ``--md``.

    OMP_NUM_THREADS=1 nice -n 19 python bench/prunability.py --quick      # 10 models, ~1-2 minutes
    OMP_NUM_THREADS=1 nice -n 19 python bench/prunability.py              # all ~80 models
    OMP_NUM_THREADS=1 nice -n 19 python bench/prunability.py --models resnet18 vit_b_32 --force

``--suite sources`` checks models from prunekit's other model sources instead (``SOURCE_MODELS``:
26 timm models, 4 Hugging Face classifiers built from their default configs -- bert = bert-base,
vit = vit-base-patch16, convnext = convnext-tiny, resnet = resnet-50 --, and 3 Ultralytics YOLO
yamls), each built by ``prunekit.create_model(name, 10, 3, 64)`` (random weights, nothing
downloaded; efficientformer_l1 at 224, its minimum; bert on 64 token ids).  Torch-Pruning gets,
on top of the README recipe, the head settings its own timm and Hugging Face examples use
(``num_heads`` of every timm ``Attention.qkv`` / HF ``query, key, value``, then the heads' sizes
written back to the attention modules after the step) and, as its YOLOv8 example does, the whole
Ultralytics ``Detect`` head in ``ignored_layers``; prunekit gets the same one-line call as above.

    OMP_NUM_THREADS=1 nice -n 10 python bench/prunability.py --suite sources     # ~66 (model, tool) runs
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import traceback
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torchvision
from torch import nn
from torchvision import models

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import rss_gb  # noqa: E402

RATIO = 0.3
NUM_CLASSES = 10
TOOLS = ("prunekit", "tp")
TOOL_TITLES = {"prunekit": "prunekit", "tp": "Torch-Pruning direct"}
QUICK = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "densenet121", "squeezenet1_1",
         "shufflenet_v2_x0_5", "regnet_x_400mf", "convnext_tiny", "vit_b_32"]
DEFAULT_OUT = "runs/bench/prunability"
SUITE_TITLES = {"torchvision": "torchvision classifiers", "sources": "timm, Hugging Face and Ultralytics models"}
REASON_CHARS = 100


# ---------------------------------------------------------------------------------------- models
def classification_models() -> list[str]:
    """The names of torchvision's classification models (the top-level ``torchvision.models`` module)."""
    return models.list_models(module=models)


def build_kwargs(name: str) -> dict[str, Any]:
    """Constructor arguments for ``name`` besides the weights."""
    kwargs: dict[str, Any] = {"weights": None, "num_classes": NUM_CLASSES}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=True)
    if name.startswith("vit_"):
        kwargs["image_size"] = input_size(name)
    return kwargs


def input_size(name: str) -> int:
    """Side of the square example image used for ``name``."""
    if name == "inception_v3":
        return 96
    if name.startswith("maxvit"):
        return 224
    if name == "vit_h_14":
        return 70
    return 64


def published_params(name: str) -> int | None:
    """Parameter count torchvision publishes for ``name``'s default weights (ImageNet head), if any."""
    if ":" in name:  # a model from another source
        return None
    try:
        return int(models.get_model_weights(name).DEFAULT.meta["num_params"])
    except (ValueError, KeyError, AttributeError):
        return None


def build(name: str) -> tuple[nn.Module, torch.Tensor]:
    """The model in eval mode (seeded, random weights) and its example input."""
    if ":" in name:
        return build_source(name)
    torch.manual_seed(0)
    model = models.get_model(name, **build_kwargs(name)).eval()
    side = input_size(name)
    return model, torch.randn(1, 3, side, side)


# ------------------------------------------------------------ models from timm, Hugging Face, Ultralytics
TIMM = ["resnet18", "resnet50", "efficientnet_b0", "mobilenetv3_large_100", "convnext_tiny", "regnety_016",
        "densenet121", "ghostnet_100", "mixnet_s", "rexnet_100", "resnest14d", "cspdarknet53", "repvgg_a0", "dla34",
        "poolformer_s12", "convmixer_768_32", "edgenext_small", "fastvit_t8", "vit_tiny_patch16_224",
        "deit_small_patch16_224", "swin_tiny_patch4_window7_224", "levit_128", "mobilevit_s", "efficientformer_l1",
        "coatnet_0_rw_224", "maxvit_tiny_rw_224"]
HF = ["bert", "vit", "convnext", "resnet"]
YOLO = ["yolov8n.yaml", "yolo11n.yaml", "yolov5n.yaml"]
SOURCE_MODELS = [f"timm:{n}" for n in TIMM] + [f"hf:{n}" for n in HF] + [f"ultralytics:{n}" for n in YOLO]
SOURCE_SIDE = {"timm:efficientformer_l1": 224}
TEXT_LENGTH = 64


def build_source(name: str) -> tuple[nn.Module, torch.Tensor]:
    """A model of another source, by ``prunekit.create_model`` (random weights), and its example input."""
    import prunekit

    torch.manual_seed(0)
    if name == "hf:bert":
        model = prunekit.create_model(name, NUM_CLASSES).eval()
        return model, torch.randint(0, model.model.config.vocab_size, (1, TEXT_LENGTH))
    side = SOURCE_SIDE.get(name, 64)
    return prunekit.create_model(name, NUM_CLASSES, 3, side).eval(), torch.randn(1, 3, side, side)


ATTENTION_LAYERS = (("qkv",), ("query", "key", "value"), ("q_proj", "k_proj", "v_proj"))
"""Projection layers of timm's Attention, HF's BERT-style self-attention, and HF's newer ViT attention."""


def tp_head_settings(model: nn.Module) -> tuple[dict[nn.Module, int], Callable[[Any], None]]:
    """Torch-Pruning's documented head settings (its timm and Hugging Face examples): ``num_heads`` of every
    attention's projection layers, and a function writing the pruned heads' sizes back to the attention
    modules (every size attribute the installed timm / transformers versions read in ``forward``)."""
    num_heads: dict[nn.Module, int] = {}
    found: list[tuple[nn.Module, nn.Linear, int]] = []
    if not any(type(m).__module__.startswith(("timm.", "transformers.")) for m in model.modules()):
        return num_heads, lambda pruner: None  # torchvision models: the README recipe as before
    for m in model.modules():
        heads = getattr(m, "num_heads", getattr(m, "num_attention_heads", None))
        for names in ATTENTION_LAYERS:
            layers = [getattr(m, n, None) for n in names]
            if isinstance(heads, int) and all(isinstance(layer, nn.Linear) for layer in layers):
                num_heads.update({layer: heads for layer in layers})
                found.append((m, layers[0], len(names)))

    def write_back(pruner: Any) -> None:
        for m, first, parts in found:
            heads = pruner.num_heads[first]
            width = first.out_features // 3 if parts == 1 else first.out_features  # a fused qkv is 3 widths
            for attr, value in (("num_heads", heads), ("num_attention_heads", heads), ("head_dim", width // heads),
                                ("attention_head_size", width // heads), ("attn_dim", width),
                                ("all_head_size", width)):
                if hasattr(m, attr):
                    setattr(m, attr, value)

    return num_heads, write_back


def yolo_heads(model: nn.Module) -> list[nn.Module]:
    """Ultralytics detection heads (TP's YOLOv8 example keeps the whole ``Detect`` module whole)."""
    return [m for m in model.modules() if type(m).__name__ in ("Detect", "Segment", "Pose", "OBB", "v10Detect")]


# ------------------------------------------------------------------------------------ one check
def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs of one forward pass, counted by prunekit for both tools."""
    import prunekit

    return prunekit.count(model, x).macs


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def output_shape(model: nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    """Shape of ``model(x)`` in eval mode without gradients."""
    model.eval()
    with torch.no_grad():
        return tuple(model(x).shape)


def short_reason(exc: BaseException, stage: str = "") -> str:
    """``Type: first line of the message`` (prefixed by the stage that failed), at most REASON_CHARS long."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    if stage:
        text = f"{stage}: {text}"
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def key_line(exc: BaseException) -> str:
    """``file:line in function`` of the innermost traceback frame (where the exception was raised)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    f = frames[-1]
    return f"{f.filename}:{f.lineno} in {f.name}: {f.line}"


@contextlib.contextmanager
def captured_structure() -> Iterator[dict[str, Any]]:
    """Record the ``ModelStructure`` that ``prunekit.prune`` analyses (for its warnings and group count).

    ``prune`` returns only the pruned model, so the bench wraps ``oneshot.analyze`` for the call.
    """
    from prunekit.algorithms import oneshot

    seen: dict[str, Any] = {}
    original = oneshot.analyze

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen["structure"] = original(*args, **kwargs)
        return seen["structure"]

    oneshot.analyze = recording
    try:
        yield seen
    finally:
        oneshot.analyze = original


def prune_prunekit(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, dict[str, Any]]:
    """prunekit one-shot L1 pruning at RATIO; returns the pruned copy and extra figures."""
    import prunekit

    with captured_structure() as seen:
        pruned = prunekit.prune(model, x, ratio=RATIO, criterion="l1")
    s = seen.get("structure")
    extra = {"groups": len(s.groups), "structure_warnings": list(s.warnings)} if s is not None else {}
    return pruned, extra


def classifier_layers(model: nn.Module) -> list[nn.Module]:
    """TP's usual advice: ignore every Linear/Conv2d whose output width is the number of classes."""
    return [m for m in model.modules()
            if (isinstance(m, nn.Linear) and m.out_features == NUM_CLASSES)
            or (isinstance(m, nn.Conv2d) and m.out_channels == NUM_CLASSES)]


def prune_tp(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, dict[str, Any]]:
    """Torch-Pruning's README recipe (plus its examples' ViT, attention-head and YOLO lines), in place on ``model``."""
    import torch_pruning as tp
    from torchvision.models.vision_transformer import VisionTransformer

    ignored = classifier_layers(model) + yolo_heads(model)
    round_to = model.encoder.layers[0].num_heads if isinstance(model, VisionTransformer) else None
    num_heads, write_back = tp_head_settings(model)
    pruner = tp.pruner.BasePruner(model, x, importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=RATIO, ignored_layers=ignored, round_to=round_to, num_heads=num_heads)
    pruner.step()
    write_back(pruner)
    if isinstance(model, VisionTransformer):
        model.hidden_dim = model.conv_proj.out_channels
    return model, {"ignored_layers": len(ignored), "attention_layers": len(num_heads)}


PRUNERS: dict[str, Callable[[nn.Module, torch.Tensor], tuple[nn.Module, dict[str, Any]]]] = {
    "prunekit": prune_prunekit, "tp": prune_tp,
}


def check(name: str, tool: str) -> dict[str, Any]:
    """Build ``name``, prune it with ``tool`` and check: runs, keeps the output shape, lowers the MACs."""
    t_start = time.perf_counter()
    model, x = build(name)
    rec: dict[str, Any] = {"model": name, "tool": tool, "input": list(x.shape), "params_before": count_params(model),
                           "macs_before": count_macs(model, x), "runs": False, "same_shape": False,
                           "lower_macs": False, "reason": None}
    shape = output_shape(model, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        try:
            pruned, extra = PRUNERS[tool](model, x)
        except Exception as exc:  # noqa: BLE001 - every failure is a result
            rec.update(reason=short_reason(exc, "prune"), traceback_line=key_line(exc))
            pruned = None
        rec["prune_seconds"] = round(time.perf_counter() - t0, 2)
    rec["python_warnings"] = len(caught)
    if pruned is not None:
        rec.update(extra)
        rec.update(evaluate_pruned(pruned, x, shape, rec["macs_before"]))
    rec["seconds"] = round(time.perf_counter() - t_start, 2)
    return rec


def evaluate_pruned(pruned: nn.Module, x: torch.Tensor, shape: tuple[int, ...], macs_before: int) -> dict[str, Any]:
    """The three checks on a pruned model, with its MACs and parameters."""
    try:
        new_shape = output_shape(pruned, x)
    except Exception as exc:  # noqa: BLE001
        return {"reason": short_reason(exc, "forward after pruning"), "traceback_line": key_line(exc)}
    out: dict[str, Any] = {"runs": True, "shape_after": list(new_shape), "same_shape": new_shape == shape,
                           "params_after": count_params(pruned)}
    out["macs_after"] = count_macs(pruned, x)
    out["lower_macs"] = out["macs_after"] < macs_before
    if not out["same_shape"]:
        out["reason"] = f"output shape {list(new_shape)} != {list(shape)}"
    elif not out["lower_macs"]:
        out["reason"] = f"MACs not lower ({out['macs_after']} vs {macs_before})"
    return out


# ---------------------------------------------------------------------------------- the driver
def run_child(name: str, tool: str, out: Path, timeout: float, mem_gb: float) -> dict[str, Any]:
    """Run one (model, tool) check in a subprocess under a time and resident-memory limit."""
    target = out / name / f"{tool}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    log = out / name / f"{tool}.log"
    cmd = [sys.executable, __file__, "--one", name, "--tool", tool, "--json-out", str(target)]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        why = watch(proc, timeout, mem_gb)
    wall = round(time.perf_counter() - t0, 2)
    if why is None and proc.returncode == 0 and target.exists():
        rec = json.loads(target.read_text())
    else:
        why = why or f"process died (exit {proc.returncode}): {last_line(log)}"
        rec = {"model": name, "tool": tool, "runs": False, "same_shape": False, "lower_macs": False,
               "reason": why[:REASON_CHARS]}
    rec["wall_seconds"] = wall
    target.write_text(json.dumps(rec, indent=1))
    return rec


def watch(proc: subprocess.Popen, timeout: float, mem_gb: float) -> str | None:
    """Wait for ``proc``; kill it past ``timeout`` seconds or ``mem_gb`` GiB resident. Returns why it was killed."""
    start, peak = time.monotonic(), 0.0
    while proc.poll() is None:
        peak = max(peak, rss_gb(proc.pid))
        if peak > mem_gb:
            proc.kill()
            proc.wait()
            return f"killed: resident memory over {mem_gb:g} GiB"
        if time.monotonic() - start > timeout:
            proc.kill()
            proc.wait()
            return f"timeout: over {timeout:g} s"
        time.sleep(0.25)
    return None



def last_line(path: Path) -> str:
    """The last non-empty line of a log file."""
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def skip_reason(name: str, max_params_m: float) -> str | None:
    """Why ``name`` is skipped (published parameter count over the limit), or None."""
    n = published_params(name)
    if n is not None and n > max_params_m * 1e6:
        return f"skipped: too large ({n / 1e6:.0f} M params)"
    return None


def cached(out: Path, name: str, tool: str) -> dict[str, Any] | None:
    """The stored result of (model, tool), if any."""
    path = out / name / f"{tool}.json"
    return json.loads(path.read_text()) if path.exists() else None


def status_text(rec: dict[str, Any]) -> str:
    """``ok x0.52`` (MACs after/before) or the failure reason."""
    if ok(rec):
        return f"ok x{rec['macs_after'] / rec['macs_before']:.2f}"
    return rec.get("reason") or "failed"


def ok(rec: dict[str, Any]) -> bool:
    """All three checks passed."""
    return bool(rec.get("runs") and rec.get("same_shape") and rec.get("lower_macs"))


def run_all(names: list[str], tools: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Check every model with every tool (cached results reused unless --force); returns results per model."""
    out = Path(args.out)
    results: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names, 1):
        skip = skip_reason(name, args.max_params_m)
        if skip:
            results[name] = {"skipped": skip, "params": published_params(name)}
            print(f"[{i}/{len(names)}] {name}: {skip}", flush=True)
            continue
        results[name] = {}
        for tool in tools:
            rec = None if args.force else cached(out, name, tool)
            fresh = rec is None
            if fresh:
                rec = run_child(name, tool, out, args.timeout, args.mem_gb)
            results[name][tool] = rec
            took = f"{rec.get('wall_seconds', 0):.1f} s" if fresh else "cached"
            print(f"[{i}/{len(names)}] {name} {tool}: {status_text(rec)} ({took})", flush=True)
    return results


# ---------------------------------------------------------------------------------- the report
def machine_line() -> str:
    """CPU model, core count and library versions (torch_pruning's from its package metadata)."""
    from prunekit.latency import cpu_name

    extra = ""
    for package in ("timm", "transformers", "ultralytics"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            extra += f", {package} {importlib.metadata.version(package)}"
    return (f"{cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, torchvision {torchvision.__version__}, "
            f"torch_pruning {importlib.metadata.version('torch-pruning')}{extra}")


def summary_rows(results: dict[str, dict[str, Any]], tools: list[str]) -> list[str]:
    """The summary table: how many models pass each check, per tool."""
    tried = [r for r in results.values() if "skipped" not in r]
    skipped = len(results) - len(tried)
    checks = [("runs", lambda r: r.get("runs")), ("keeps output shape", lambda r: r.get("same_shape")),
              ("lowers MACs", lambda r: r.get("lower_macs")), ("all three", ok)]
    lines = ["| check | " + " | ".join(TOOL_TITLES[t] for t in tools) + " |", "|---|" + "---|" * len(tools)]
    for label, test in checks:
        cells = [f"{sum(bool(test(r[t])) for r in tried if t in r)} / {len(tried)}" for t in tools]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(f"\n{len(tried)} models tried, {skipped} skipped.")
    return lines


def model_rows(results: dict[str, dict[str, Any]], tools: list[str]) -> list[str]:
    """The per-model table: parameters, input, and each tool's MACs ratio or failure reason."""
    head = "| model | params | input | " + " | ".join(TOOL_TITLES[t] for t in tools) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(tools)]
    for name, r in results.items():
        if "skipped" in r:
            params = f"{r['params'] / 1e6:.1f} M" if r.get("params") else "?"
            lines.append(f"| {name} | {params} | - | " + " | ".join(r["skipped"] for _ in tools) + " |")
            continue
        first = next((r[t] for t in tools if r.get(t, {}).get("params_before")), {})
        params = f"{first['params_before'] / 1e6:.1f} M" if first else "?"
        size = f"{first['input'][-1]}" if first.get("input") else "?"
        cells = [cell(r.get(t, {})) for t in tools]
        lines.append(f"| {name} | {params} | {size} | " + " | ".join(cells) + " |")
    return lines


def cell(rec: dict[str, Any]) -> str:
    """One tool's table cell: ``ok, MACs x0.52, 1.3 s`` or ``FAIL: reason``."""
    if ok(rec):
        warn = len(rec.get("structure_warnings", []))
        extra = f", {warn} warning{'s' if warn > 1 else ''}" if warn else ""
        return f"ok, MACs x{rec['macs_after'] / rec['macs_before']:.2f}, {rec['prune_seconds']:.1f} s{extra}"
    return "FAIL: " + (rec.get("reason") or "?").replace("|", "\\|")


def failure_rows(results: dict[str, dict[str, Any]], tools: list[str]) -> list[str]:
    """Every failure with the line that raised it (paths shortened to the package)."""
    lines = ["| model | tool | reason | raised at |", "|---|---|---|---|"]
    for name, r in results.items():
        for t in tools:
            rec = r.get(t)
            if rec and not ok(rec):
                where = rec.get("traceback_line", "").split("site-packages/")[-1].replace("|", "\\|")
                lines.append(f"| {name} | {TOOL_TITLES[t]} | {cell(rec)[6:]} | `{where}` |" if where
                             else f"| {name} | {TOOL_TITLES[t]} | {cell(rec)[6:]} | |")
    return lines if len(lines) > 2 else ["None."]


def write_report(path: Path, results: dict[str, dict[str, Any]], tools: list[str], command: str,
                 args: argparse.Namespace) -> None:
    """Write the markdown report."""
    total = sum(rec.get("wall_seconds", 0) for r in results.values() for t, rec in r.items() if t in tools)
    lines = [
        f"Run {datetime.now():%Y-%m-%d %H:%M}; {machine_line()}; command: `{command}`",
        "",
        f"# Prunability of {SUITE_TITLES[args.suite]}: prunekit vs Torch-Pruning",
        "",
        f"One-shot pruning of 30 % of the channels, L1 criterion, `num_classes={NUM_CLASSES}`, random weights; "
        "checks: pruning runs, the pruned model's output shape is the original's, its MACs "
        "(`prunekit.measure` for both tools) are strictly lower.  How each tool is called, the inputs "
        "and the skip rule: see the docstring of `bench/prunability.py`.  Limits per model and tool: "
        f"{args.timeout:g} s, {args.mem_gb:g} GiB resident; skipped above {args.max_params_m:g} M published "
        f"parameters.  Sum of the per-(model, tool) process wall times: {total / 60:.1f} min.",
        "",
        "## Summary",
        "",
        *summary_rows(results, tools),
        "",
        "## Per model",
        "",
        "`ok, MACs xR, T s` = all three checks pass, MACs after/before = R, pruning took T s "
        "(prunekit: `N warnings` = groups kept whole or in part, from its structure analysis).",
        "",
        *model_rows(results, tools),
        "",
        "## Failures",
        "",
        *failure_rows(results, tools),
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


# ------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=tuple(SUITE_TITLES), default="torchvision",
                   help="torchvision classifiers, or models of the other sources (timm:, hf:, ultralytics:)")
    p.add_argument("--quick", action="store_true", help="a fixed subset of 10 models")
    p.add_argument("--models", nargs="+", help="these models only")
    p.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    p.add_argument("--out", default=DEFAULT_OUT, help="folder of the per-(model, tool) results")
    p.add_argument("--md", help="report path (default bench/results/prunability.md, or prunability-quick.md)")
    p.add_argument("--force", action="store_true", help="redo models already done")
    p.add_argument("--timeout", type=float, default=600, help="seconds per model and tool")
    p.add_argument("--mem-gb", type=float, default=10, help="resident-memory limit per model and tool, GiB")
    p.add_argument("--max-params-m", type=float, default=500, help="skip models with more published params (M)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in each model's process")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--tool", choices=TOOLS, help=argparse.SUPPRESS)
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child_main(args: argparse.Namespace) -> None:
    """One (model, tool) check in this process; the result goes to ``--json-out``."""
    torch.set_num_threads(args.threads)
    rec = check(args.one, args.tool)
    Path(args.json_out).write_text(json.dumps(rec, indent=1))


def main(argv: list[str] | None = None) -> None:
    """Run the checks (or one of them with --one) and write the report."""
    args = parse_args(argv)
    if args.one:
        child_main(args)
        return
    everything = SOURCE_MODELS if args.suite == "sources" else classification_models()
    names = QUICK if args.quick else (args.models or everything)
    default_md = {"sources": "prunability-sources.md", "torchvision": "prunability.md"}[args.suite]
    md = Path(args.md or ("bench/results/" + ("prunability-quick.md" if args.quick else default_md)))
    t0 = time.perf_counter()
    results = run_all(names, args.tools, args)
    command = "python " + " ".join([str(Path(sys.argv[0])), *sys.argv[1:]])
    write_report(md, results, args.tools, command, args)
    print(f"wrote {md} ({(time.perf_counter() - t0) / 60:.1f} min)")


if __name__ == "__main__":
    main()
