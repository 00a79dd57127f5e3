"""NetAdapt against one-shot L1 pruning at the same MACs, with the same long-term fine-tuning.

Every step goes through the ``prunekit`` CLI, is cached in the output folder (a step whose
checkpoint exists is skipped; NetAdapt resumes), and the figures land in ``OUT/results.json``.

    python bench/netadapt_vs_oneshot.py --model vgg11 --dataset fashion-mnist --out runs/bench/na-vgg11-fm
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from prunekit.pipeline.workdir import WorkDir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cached_cli, cli, machine, md_table, seconds_in, timed  # noqa: E402


def parse_args() -> argparse.Namespace:
    """The command line (this comparison's NetAdapt options are its own, written out)."""
    p = argparse.ArgumentParser(description=__doc__)
    for flag, default in (("--model", "vgg11"), ("--dataset", "fashion-mnist"), ("--out", "runs/bench/netadapt-vs-l1"),
                          ("--base-epochs", "2"), ("--finetune-epochs", "2"), ("--val-size", "2000"),
                          ("--budget-ratio", "0.5"), ("--short-term-iters", "50"), ("--init-reduction-ratio", "0.1"),
                          ("--reduction-decay", "0.9"), ("--min-channels-step", "8"), ("--train-subset", None)):
        p.add_argument(flag, default=default)
    return p.parse_args()


def search(a: argparse.Namespace, out: Path) -> float | None:
    """NetAdapt (resumed when interrupted; its time summed over the parts) and its last iteration picked."""
    work = out / "netadapt"
    if not (work / "metrics.json").exists():
        resume = ["--resume"] if (work / "config.json").exists() else []
        with timed(out / "netadapt_search.json"):
            cli(["netadapt", "--checkpoint", str(out / "base"), "--work-dir", str(work), "--budget-ratio",
                 a.budget_ratio, "--resource", "macs", "--short-term-iters", a.short_term_iters,
                 "--init-reduction-ratio", a.init_reduction_ratio, "--reduction-decay", a.reduction_decay,
                 "--min-channels-step", a.min_channels_step, "--seed", "0", "--quiet", *resume])
    history = WorkDir(work).history()
    cached_cli(out / "netadapt_final", ["pick", str(work), "--iter", str(len(history)), "--out",
                                        str(out / "netadapt_final")])
    return seconds_in(out / "netadapt_search.json")


def main() -> None:
    """Base, NetAdapt, one-shot L1 at NetAdapt's final MACs, both fine-tuned alike; results.json and a table."""
    a = parse_args()
    out = Path(a.out)
    subset = ["--train-subset", a.train_subset] if a.train_subset else []
    seconds = {"base": cached_cli(out / "base", [
        "train", "--model", a.model, "--dataset", a.dataset, "--epochs", a.base_epochs, "--val-size", a.val_size,
        *subset, "--out", str(out / "base"), "--quiet"])}
    seconds["netadapt_search"] = search(a, out)
    history = WorkDir(out / "netadapt").history()
    seconds["l1_prune"] = cached_cli(out / "l1", ["prune", "--checkpoint", str(out / "base"), "--criterion", "l1",
                                                  "--budget", str(history[-1]["resource"]), "--resource", "macs",
                                                  "--out", str(out / "l1")])
    for name, src in (("netadapt", "netadapt_final"), ("l1", "l1")):
        seconds[f"{name}_finetune"] = cached_cli(out / f"{name}_ft", [
            "finetune", "--checkpoint", str(out / src), "--epochs", a.finetune_epochs, "--out", str(out / f"{name}_ft"),
            "--quiet"])
    read = lambda f: json.loads((out / f / "metrics.json").read_text())  # noqa: E731
    results = {"date": str(date.today()), "machine": machine(), "settings": vars(a), "iterations": len(history),
               "seconds": seconds, "base": read("base"), "netadapt_before_finetune": read("netadapt_final"),
               "netadapt": read("netadapt_ft"), "l1_before_finetune": read("l1"), "l1": read("l1_ft")}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    rows = [[label, f"{m['macs'] / 1e6:.2f} M ({m['macs'] / results['base']['macs']:.1%})",
             f"{m['params'] / 1e6:.3f} M", f"{m['test_accuracy']:.2%}"]
            for label, m in (("base", results["base"]), ("NetAdapt + fine-tune", results["netadapt"]),
                             ("one-shot l1 + fine-tune", results["l1"]))]
    print(md_table(["model", "MACs", "params", "test acc"], rows))


if __name__ == "__main__":
    main()
