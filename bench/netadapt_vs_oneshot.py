"""NetAdapt against one-shot L1 pruning at the same MACs, with the same long-term fine-tuning.

Every step goes through the ``prunekit`` CLI, is cached in the output folder (a step whose
checkpoint exists is skipped; NetAdapt resumes), and the figures land in ``OUT/results.json``.

    python bench/netadapt_vs_oneshot.py --model vgg11 --dataset fashion-mnist --out runs/bench/na-vgg11-fm
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch

from prunekit.pipeline.workdir import WorkDir
from prunekit.cli.main import main as prunekit


def step(folder: Path, args: list[str]) -> float:
    """Run one prunekit command unless its checkpoint folder exists; returns the seconds it took."""
    if (folder / "metrics.json").exists():
        return 0.0
    t0 = time.perf_counter()
    code = prunekit(args)
    if code:
        raise SystemExit(f"prunekit {' '.join(args)} failed with {code}")
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="vgg11")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--out", default="runs/bench/netadapt-vs-l1")
    p.add_argument("--base-epochs", default="2")
    p.add_argument("--finetune-epochs", default="2")
    p.add_argument("--val-size", default="2000")
    p.add_argument("--budget-ratio", default="0.5")
    p.add_argument("--short-term-iters", default="50")
    p.add_argument("--init-reduction-ratio", default="0.1")
    p.add_argument("--reduction-decay", default="0.9")
    p.add_argument("--min-channels-step", default="8")
    p.add_argument("--train-subset", default=None)
    a = p.parse_args()
    out = Path(a.out)
    seconds = {}
    subset = ["--train-subset", a.train_subset] if a.train_subset else []
    seconds["base"] = step(out / "base", ["train", "--model", a.model, "--dataset", a.dataset, "--epochs", a.base_epochs,
                                          "--val-size", a.val_size, *subset, "--out", str(out / "base"), "--quiet"])
    work = out / "netadapt"
    if not (work / "metrics.json").exists():
        t0 = time.perf_counter()
        resume = ["--resume"] if (work / "config.json").exists() else []
        code = prunekit(["netadapt", "--checkpoint", str(out / "base"), "--work-dir", str(work), "--budget-ratio",
                         a.budget_ratio, "--resource", "macs", "--short-term-iters", a.short_term_iters,
                         "--init-reduction-ratio", a.init_reduction_ratio, "--reduction-decay", a.reduction_decay,
                         "--min-channels-step", a.min_channels_step, "--seed", "0", "--quiet", *resume])
        if code:
            raise SystemExit("netadapt failed")
        seconds["netadapt_search"] = time.perf_counter() - t0
    history = WorkDir(work).history()
    final_macs = history[-1]["resource"]
    step(out / "netadapt_final", ["pick", str(work), "--iter", str(len(history)), "--out", str(out / "netadapt_final")])
    seconds["l1_prune"] = step(out / "l1", ["prune", "--checkpoint", str(out / "base"), "--criterion", "l1", "--budget",
                                            str(final_macs), "--resource", "macs", "--out", str(out / "l1")])
    for name in ("netadapt", "l1"):
        src = out / ("netadapt_final" if name == "netadapt" else "l1")
        seconds[f"{name}_finetune"] = step(out / f"{name}_ft", ["finetune", "--checkpoint", str(src), "--epochs",
                                                                a.finetune_epochs, "--out", str(out / f"{name}_ft"), "--quiet"])
    read = lambda f: json.loads((out / f / "metrics.json").read_text())  # noqa: E731
    results = {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, {platform.processor() or 'cpu'}",
        "torch": torch.__version__,
        "settings": vars(a),
        "iterations": len(history),
        "seconds": seconds,
        "base": read("base"),
        "netadapt_before_finetune": read("netadapt_final"),
        "netadapt": read("netadapt_ft"),
        "l1_before_finetune": read("l1"),
        "l1": read("l1_ft"),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    rows = [("base", results["base"]), ("NetAdapt + fine-tune", results["netadapt"]), ("one-shot l1 + fine-tune", results["l1"])]
    print("| model | MACs | params | test acc |")
    print("|---|---|---|---|")
    for label, m in rows:
        print(f"| {label} | {m['macs'] / 1e6:.2f} M ({m['macs'] / results['base']['macs']:.1%}) | "
              f"{m['params'] / 1e6:.3f} M | {m['test_accuracy']:.2%} |")


if __name__ == "__main__":
    main()
