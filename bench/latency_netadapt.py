"""Platform-aware NetAdapt on this CPU: lookup-table accuracy, and a latency budget against a MACs budget.

Phases (each cached in ``--out``; re-running skips what exists, NetAdapt resumes):

1. ``lut-b1``: a latency table for the base checkpoint at batch 1 (build time, then a second build
   that reuses the saved table); predicted vs measured latency of the base and of a one-shot
   pruned copy the table never saw (ratio 0.4, round_to 8), on torch-cpu, with onnxruntime-cpu
   measured beside it.
2. ``lut-b8``: the same table at the NetAdapt batch.
3. NetAdapt to ``--budget-ratio`` of the base *latency* (through the batch table) and NetAdapt to
   ``--macs-ratio`` of the base *MACs* (same schedule and fine-tuning), run side by side.
4. Every network of both runs measured for real (torch-cpu, batch 8 and 1) and predicted by the
   tables: the tables' error. The latency run's final network against the first iteration of the
   MACs run that is as fast for real, and against the iteration at 50 % MACs; each long-term
   fine-tuned (``--finetune-epochs``) and tested.

    python bench/latency_netadapt.py --base runs/bench/latency/mbv2-base --out runs/bench/latency
    python bench/latency_netadapt.py --quick --out runs/bench/latency-quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch

import prunekit
from prunekit.pipeline.workdir import WorkDir
from prunekit.io import load_checkpoint, read_json, write_json
from prunekit.latency import LatencyTable, build_lut, measure_latency

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cached_cli, machine as machine_record, machine_line  # noqa: E402


def lut_phase(model: torch.nn.Module, sample_shape: tuple[int, ...], out: Path, batch: int, threads: int, step: int,
              pruned_ratios: tuple[float, ...] = (0.4,)) -> dict:
    """Build (then rebuild from the file) a table at ``batch``; predicted vs measured latency of the model and
    of one-shot pruned copies the table never saw (l1, round_to ``step``), with onnxruntime-cpu beside torch-cpu."""
    path = out / f"lut-b{batch}.json"
    result_path = out / f"lut-b{batch}.result.json"
    if result_path.exists():
        return read_json(result_path)
    x = torch.zeros(batch, *sample_shape)
    t0 = time.perf_counter()
    table = build_lut(model, x, "torch-cpu", min_channels_step=step, threads=threads)
    table.save(path)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = build_lut(model, x, "torch-cpu", min_channels_step=step, threads=threads,
                      table=LatencyTable.load(path), progress=False)
    rebuild_s = time.perf_counter() - t0
    networks = [("base", model)] + [
        (f"pruned-{r}", prunekit.prune(model, x[:1], ratio=r, criterion="l1", round_to=step)) for r in pruned_ratios]
    rows = {}
    for name, net in networks:
        real = measure_latency(net, x, "torch-cpu", threads=threads, min_time_s=1.0)
        ort = measure_latency(net, x, "onnxruntime-cpu", threads=threads, min_time_s=1.0)
        predicted = again.predict(net, x)
        rows[name] = {"predicted_ms": predicted, "torch_cpu_ms": real.median_ms, "torch_cpu_noise": real.noise,
                      "onnxruntime_cpu_ms": ort.median_ms, "onnxruntime_cpu_noise": ort.noise,
                      "error": predicted / real.median_ms - 1, "macs": prunekit.count(net, x[:1]).macs}
    result = {"entries": len(table.entries), "build_s": build_s, "rebuild_s": rebuild_s,
              "calibration": table.calibration, "networks": rows}
    write_json(result_path, result)
    return result


def quick(a: argparse.Namespace) -> None:
    """The quick profile: a table (step 16) for an untrained half-width zoo mobilenet_v2 (latency does not depend on the
    weights) and its error on one-shot pruned copies; no training, no NetAdapt run."""
    model = prunekit.create_model("mobilenet_v2", 10, 3, 32, width_mult=0.5).eval()
    result = lut_phase(model, (3, 32, 32), a.out, 1, a.threads, 16, pruned_ratios=(0.2, 0.4, 0.6))
    write_json(a.out / "results.json", {"date": str(date.today()), "machine": machine(), "quick": result})
    print(f"# Latency table, quick profile ({date.today()}, {machine()}, one thread)\n")
    print("`python bench/latency_netadapt.py --quick`: zoo mobilenet_v2 (width 0.5, untrained), 32x32, batch 1, "
          "table step 16; pruned copies by l1 at the given ratio. Noise = IQR / median of the measurement; "
          "other jobs on the machine inflate it, and then the error too.\n")
    print("| network | MACs | predicted ms | torch-cpu ms (noise) | error | onnxruntime-cpu ms |")
    print("|---|---|---|---|---|---|")
    for name, r in result["networks"].items():
        print(f"| {name} | {r['macs'] / 1e6:.1f} M | {r['predicted_ms']:.3f} | {r['torch_cpu_ms']:.3f} "
              f"({r['torch_cpu_noise']:.0%}) | {r['error']:+.1%} | {r['onnxruntime_cpu_ms']:.3f} |")
    print(f"table: {result['entries']} entries built in {result['build_s']:.0f} s; rebuilt from file in "
          f"{result['rebuild_s']:.1f} s")


def machine() -> str:
    """This machine, as one line."""
    return machine_line(machine_record())


def netadapt_args(base: Path, work: Path, resource: str, ratio: float, a: argparse.Namespace) -> list[str]:
    """The prunekit netadapt command of one run (both runs share everything but the resource)."""
    args = ["netadapt", "--checkpoint", str(base), "--work-dir", str(work), "--resource", resource,
            "--budget-ratio", str(ratio), "--short-term-iters", str(a.short_term_iters), "--batch-size", "32",
            "--init-reduction-ratio", str(a.init_reduction_ratio), "--reduction-decay", str(a.reduction_decay),
            "--min-channels-step", str(a.step), "--seed", "0", "--quiet"]
    if resource == "latency":
        args += ["--lut", str(a.out / f"lut-b{a.batch}.json"), "--latency-batch", str(a.batch), "--threads",
                 str(a.threads)]
    if WorkDir(work).exists():
        args.append("--resume")
    return args


def run_searches(base: Path, a: argparse.Namespace) -> dict[str, float]:
    """Both NetAdapt runs, side by side in two processes (one thread each); wall seconds of each."""
    runs = {"latency": (a.out / "na-latency", a.budget_ratio), "macs": (a.out / "na-macs", a.macs_ratio)}
    procs, started = {}, {}
    for name, (work, ratio) in runs.items():
        if (work / "metrics.json").exists():
            continue
        cmd = [sys.executable, "-m", "prunekit.cli.main", *netadapt_args(base, work, name, ratio, a)]
        log = open(a.out / f"na-{name}.log", "a")
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        started[name] = time.perf_counter()
    seconds = {}
    for name, proc in procs.items():
        if proc.wait():
            raise SystemExit(f"NetAdapt ({name}) failed: see {a.out / f'na-{name}.log'}")
        seconds[name] = time.perf_counter() - started[name]
    return seconds


def measure_runs(a: argparse.Namespace) -> dict:
    """Every network of both runs: measured (batch 8 and 1) and predicted (the tables)."""
    path = a.out / "networks.json"
    if path.exists():
        return read_json(path)
    tables = {b: LatencyTable.load(a.out / f"lut-b{b}.json") for b in (1, a.batch)}
    rows = []
    for run in ("latency", "macs"):
        work = WorkDir(a.out / f"na-{run}")
        for it in range(len(work.history()) + 1):
            ckpt = load_checkpoint(work.iteration_dir(it))
            row = {"run": run, "iteration": it, "macs": read_json(work.iteration_dir(it) / "metrics.json")["macs"]}
            for b, table in tables.items():
                x = ckpt.example_inputs(b)
                real = measure_latency(ckpt.model, x, "torch-cpu", threads=a.threads, min_time_s=0.5)
                row[f"b{b}_measured_ms"], row[f"b{b}_noise"] = real.median_ms, real.noise
                row[f"b{b}_predicted_ms"] = table.predict(ckpt.model, x)
            rows.append(row)
            print(f"{run} {it}: {row}", flush=True)
    write_json(path, rows)
    return rows


def error_summary(rows: list[dict], batch: int) -> dict:
    """Median |error| and share of predictions within 10 % of the measurement."""
    errors = [r[f"b{batch}_predicted_ms"] / r[f"b{batch}_measured_ms"] - 1 for r in rows]
    return {"networks": len(errors), "median_abs_error": statistics.median(abs(e) for e in errors),
            "within_10pct": sum(abs(e) <= 0.10 for e in errors) / len(errors),
            "max_abs_error": max(abs(e) for e in errors)}


def finetune_and_test(src: Path, dest: Path, epochs: str) -> dict:
    """Long-term fine-tuning of one picked network; its metrics."""
    cached_cli(dest, ["finetune", "--checkpoint", str(src), "--out", str(dest), "--epochs", epochs, "--seed", "0",
                      "--quiet"])
    return read_json(dest / "metrics.json")


def compare(a: argparse.Namespace, rows: list[dict]) -> dict:
    """The latency run's final network against MACs-run networks: as fast for real, and at 50 % MACs."""
    key = f"b{a.batch}_measured_ms"
    lat = [r for r in rows if r["run"] == "latency"]
    macs = [r for r in rows if r["run"] == "macs"]
    base_ms, base_macs = lat[0][key], lat[0]["macs"]
    final = lat[-1]
    same_speed = next((r for r in macs if r[key] <= final[key]), macs[-1])
    half_macs = next((r for r in macs if r["macs"] <= 0.5 * base_macs), macs[-1])
    picks = {"latency-budget final": ("latency", final), "MACs run, as fast for real": ("macs", same_speed),
             "MACs run, 50 % MACs": ("macs", half_macs)}
    out = {}
    for label, (run, r) in picks.items():
        src = WorkDir(a.out / f"na-{run}").iteration_dir(r["iteration"])
        ft = finetune_and_test(src, a.out / f"ft-{run}-{r['iteration']}", str(a.finetune_epochs))
        out[label] = {**r, "latency_ratio": r[key] / base_ms, "macs_ratio": r["macs"] / base_macs,
                      "test_accuracy_before_ft": read_json(src / "metrics.json").get("test_accuracy"),
                      "test_accuracy": ft["test_accuracy"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, help="trained base checkpoint (e.g. zoo mobilenet_v2, 32x32)")
    p.add_argument("--quick", action="store_true", help="the quick profile: table accuracy only, an untrained model")
    p.add_argument("--out", type=Path, default=Path("runs/bench/latency"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=8, help="batch of the latency budget")
    p.add_argument("--step", type=int, default=8, help="min channels step")
    p.add_argument("--budget-ratio", type=float, default=0.5, help="latency budget, share of the base latency")
    p.add_argument("--macs-ratio", type=float, default=0.25, help="MACs budget of the comparison run")
    p.add_argument("--short-term-iters", type=int, default=10)
    p.add_argument("--init-reduction-ratio", type=float, default=0.05)
    p.add_argument("--reduction-decay", type=float, default=1.0)
    p.add_argument("--finetune-epochs", type=float, default=1)
    p.add_argument("--phase", choices=("all", "lut", "search", "measure"), default="all")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(a.threads)
    results = {"date": str(date.today()), "machine": machine(), "settings": {k: str(v) for k, v in vars(a).items()}}
    if a.quick:
        return quick(a)
    if a.base is None:
        raise SystemExit("--base CHECKPOINT is needed (except with --quick)")
    base = load_checkpoint(a.base)
    shape = tuple(base.example_inputs(1).shape[1:])
    results["lut_b1"] = lut_phase(base.model, shape, a.out, 1, a.threads, a.step)
    results[f"lut_b{a.batch}"] = lut_phase(base.model, shape, a.out, a.batch, a.threads, a.step)
    print(json.dumps({k: results[k] for k in results if k.startswith("lut")}, indent=1, default=str), flush=True)
    if a.phase == "lut":
        return
    results["search_seconds"] = run_searches(a.base, a)
    if a.phase == "search":
        return
    rows = measure_runs(a)
    results["table_error"] = {f"batch {b}": error_summary(rows, b) for b in (1, a.batch)}
    results["metrics"] = {run: read_json(a.out / f"na-{run}" / "metrics.json") for run in ("latency", "macs")}
    results["comparison"] = compare(a, rows)
    write_json(a.out / "results.json", results)
    print(json.dumps({k: results[k] for k in ("table_error", "comparison")}, indent=1, default=str))


if __name__ == "__main__":
    main()
