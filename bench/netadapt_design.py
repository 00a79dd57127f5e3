"""Design experiments for NetAdapt's defaults: each variant's search cost and its network's test
accuracy after the same long-term fine-tuning, beside one-shot global L1 given the same fine-tuning
and given NetAdapt's search time as extra fine-tuning epochs.

Usage (cached and resumable; every step is a ``prunekit`` command run in this process)::

    OMP_NUM_THREADS=1 python bench/netadapt_design.py --out runs/bench/design --budget 0.3 \\
        --variant old "--scoring finetune --short-term-iters 20" --variant abn "--scoring adaptive-bn"

Each variant is a name and the ``prunekit netadapt`` flags it adds to the common ones. Results go to
``OUT/results.json`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_seconds, cli, done, epoch_seconds, read_json_or_none, seconds_in  # noqa: E402

BASE_FLAGS = ["--model", "resnet20", "--dataset", "fashion-mnist", "--train-subset", "12000", "--val-size", "2000",
              "--test-subset", "5000", "--augment", "--epochs", "8", "--batch-size", "128", "--lr", "0.1"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/bench/design")
    p.add_argument("--base-flags", default=" ".join(BASE_FLAGS), help="prunekit train flags of the base")
    p.add_argument("--base", type=Path, help="an existing base checkpoint folder (e.g. bench/peers.py's "
                   "runs/bench/peers/full/resnet20/base) instead of training one with --base-flags")
    p.add_argument("--budget", type=float, default=0.3, help="MACs budget as a share of the base")
    p.add_argument("--finetune-epochs", type=float, default=3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variant", nargs=2, action="append", default=[], metavar=("NAME", "FLAGS"))
    p.add_argument("--oneshot", nargs="+", default=["l1:global"], help="criterion:scope baselines")
    p.add_argument("--teacher", action="store_true", help="long-term fine-tuning distils from the base (all methods)")
    return p.parse_args(argv)


def finetune(src: Path, out: Path, epochs: float, seed: int, teacher: Path | None) -> dict[str, Any]:
    """``prunekit finetune`` (cached); its metrics."""
    if not done(out):
        extra = ["--teacher", str(teacher)] if teacher else []
        cli(["finetune", "--checkpoint", str(src), "--out", str(out), "--epochs", f"{epochs:g}", "--seed", str(seed),
             "--quiet", *extra])
    return json.loads((out / "metrics.json").read_text())


def base_epoch_seconds(base: Path) -> float:
    """Seconds of one training epoch of the base (from its log): shown beside the results."""
    log = [json.loads(line) for line in (base / "train_log.jsonl").read_text().splitlines() if line.strip()]
    return statistics.median(r["seconds"] for r in log)


def run_variant(a: argparse.Namespace, base: Path, name: str, flags: str, seed: int) -> dict[str, Any]:
    """One NetAdapt variant: search (timed, resumable), then the long-term fine-tuning."""
    root = Path(a.out) / f"budget-{a.budget:g}" / f"seed-{seed}" / name
    work, pruned = root / "search", root / "pruned"
    timing = root / "search_seconds.json"
    if not done(pruned):
        t0, c0 = time.perf_counter(), time.process_time()
        resume = ["--resume"] if (work / "config.json").exists() else []
        try:
            cli(["netadapt", "--checkpoint", str(base), "--work-dir", str(work), "--out", str(pruned),
                 "--budget-ratio", str(a.budget), "--seed", str(seed), "--quiet", *shlex.split(flags), *resume])
        finally:  # wall time, and this process's CPU time (steadier when other jobs share the cores)
            prior = read_json_or_none(timing) or {}
            root.mkdir(parents=True, exist_ok=True)
            timing.write_text(json.dumps({"seconds": prior.get("seconds", 0.0) + time.perf_counter() - t0,
                                          "cpu_seconds": prior.get("cpu_seconds", 0.0) + time.process_time() - c0}))
    search_s = json.loads(timing.read_text())["seconds"]
    search_cpu = json.loads(timing.read_text()).get("cpu_seconds")
    metrics = json.loads((pruned / "metrics.json").read_text())
    final = finetune(pruned, root / "finetuned", a.finetune_epochs, seed, base if a.teacher else None)
    return {"method": name, "seed": seed, "search_s": search_s, "search_cpu_s": search_cpu, "macs": metrics["macs"],
            "val_before_ft": metrics["val_accuracy"], "test_before_ft": metrics["test_accuracy"],
            "test": final["test_accuracy"], "iterations": metrics.get("iteration")}


def run_oneshot(a: argparse.Namespace, base: Path, spec: str, seed: int, search_s: dict[str, float]) -> list[dict]:
    """A one-shot baseline to the same budget: equal fine-tuning, and plus each variant's search time as extra
    epochs, priced as bench/peers.py does: (search s - own pruning s) / seconds per epoch of its own equal
    fine-tuning."""
    criterion, scope = spec.split(":")
    root = Path(a.out) / f"budget-{a.budget:g}" / f"seed-{seed}" / f"{criterion}-{scope}"
    pruned, timing = root / "pruned", root / "prune_seconds.json"
    if not done(pruned):
        add_seconds(timing, cli(["prune", "--checkpoint", str(base), "--out", str(pruned), "--criterion", criterion,
                                 "--scope", scope, "--budget-ratio", str(a.budget), "--seed", str(seed)]))
    own_s = seconds_in(timing) or 0.0
    teacher = base if a.teacher else None
    rows = [{"method": f"{criterion}-{scope}", "seed": seed, "test": finetune(pruned, root / "ft", a.finetune_epochs,
                                                                                   seed, teacher)["test_accuracy"]}]
    per_epoch = epoch_seconds(root / "ft")
    for name, seconds in search_s.items():
        extra = max(0.0, (seconds - own_s) / per_epoch)
        epochs = a.finetune_epochs + extra
        m = finetune(pruned, root / f"ft-{epochs:.2f}", epochs, seed, teacher)
        rows.append({"method": f"{criterion}-{scope} +{extra:.2f} ep ({name}'s search)", "seed": seed,
                     "test": m["test_accuracy"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    """Base, variants, baselines; results.json and a table."""
    a = parse_args(argv)
    out = Path(a.out)
    base = a.base or out / "base"
    if not done(base):
        if a.base:
            raise SystemExit(f"--base {a.base}: not a finished checkpoint folder (no metrics.json)")
        cli(["train", *shlex.split(a.base_flags), "--out", str(base), "--quiet"])
    per_epoch = base_epoch_seconds(base)
    rows = []
    for seed in a.seeds:
        variants = [run_variant(a, base, name, flags, seed) for name, flags in a.variant]
        rows += variants
        search_s = {v["method"]: v["search_s"] for v in variants}
        for spec in a.oneshot:
            rows += run_oneshot(a, base, spec, seed, search_s)
    (out / "results.json").write_text(json.dumps({"budget": a.budget, "epoch_s": per_epoch, "rows": rows}, indent=2))
    print(f"| method | seed | search s (CPU s) | test acc before FT | test acc after {a.finetune_epochs:g} FT epochs |")
    print("|---|---|---|---|---|")
    for r in rows:
        s = f"{r['search_s']:.0f} ({r.get('search_cpu_s') or 0:.0f})" if "search_s" in r else "-"
        before = f"{r['test_before_ft']:.2%}" if "test_before_ft" in r else "-"
        print(f"| {r['method']} | {r['seed']} | {s} | {before} | {r['test']:.2%} |")


if __name__ == "__main__":
    main()
