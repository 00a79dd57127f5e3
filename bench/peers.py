"""NetAdapt against its peers on zoo models at the same MACs budgets: at equal fine-tuning and at equal compute.

Each base model (one fixed recipe, seed 0) is pruned to each budget (a share of its MACs) by:

    netadapt      prunekit netadapt with its default options (only --budget-ratio, --resource, --seed)
    l1-local      prunekit prune --criterion l1 --scope local   (one uniform ratio per layer)
    l1-global     prunekit prune --criterion l1 --scope global  (filters ranked across layers)
    slimming      a second base trained with --sparsity (L1 on BN scales), then
                  prunekit prune --criterion bn_scale --scope global (Liu et al. 2017)
    tp-magnitude  Torch-Pruning's MagnitudePruner, MagnitudeImportance(p=2), global ranking
    tp-taylor     the same with TaylorImportance (gradients of a few training batches per step)
    rethinking    NetAdapt's final architecture re-initialised and trained from scratch for
                  base + fine-tune epochs (Liu et al. 2019)

Every pruned network then gets the same long-term fine-tuning (``prunekit finetune --epochs E --lr LR
--seed S``: equal fine-tuning). Equal compute: every one-shot method and Torch-Pruning pruner is also
fine-tuned for E + X epochs, X = (NetAdapt's search wall seconds - the method's own pruning seconds) /
the method's seconds per epoch of its equal fine-tuning (same base, budget and seed). Where a profile
gives latency budgets (full: mobilenet_v2 at 50 %), NetAdapt also runs with ``--resource latency``, and
its network is compared with the MACs-budget network of the same seed that is first as fast for real.

Usage (CPU-heavy: one thread, low priority, in the background on a shared machine)::

    OMP_NUM_THREADS=1 nice -n 10 python bench/peers.py --profile quick      # the quick check
    OMP_NUM_THREADS=1 nice -n 10 python bench/peers.py --profile medium

The full profile runs for days on 2 cores: run it cell by cell, in priority order, one process per
core (``--models --budgets --seeds --methods`` choose what runs now; the report always covers
everything in the cache; two processes never work on the same job: each holds a lock on it)::

    OMP_NUM_THREADS=1 nohup nice -n 10 python bench/peers.py --profile full --models resnet20 \
        --budgets 0.3 --seeds 0 --no-latency >> runs/bench/peers/full-resnet20.log 2>&1 &
    ...                                            # other cells; --no-equal-compute leaves those for later
    OMP_NUM_THREADS=1 nice -n 10 python bench/peers.py --profile full --report-only   # latency, the report

Every step is cached under ``--out`` (default ``runs/bench/peers/<profile>``, from the current folder): a
step whose folder holds its ``metrics.json`` is skipped, NetAdapt continues with ``--resume`` and
training resumes from its last epoch, so a run killed (Ctrl-C or ``kill``) picks up where it stopped.
Bases trained outside (same folder, same flags) are used as they are, once their recorded data settings
and recipe are checked. Outputs: ``OUT/results.json``, ``bench/results/peers-<profile>.md`` and one PNG
per model in ``docs/bench/``. A report or plot that exists but was not written from this cache (e.g. the
committed one, made from another machine's cache) is never replaced: the run stops before any work unless
``--overwrite`` is given; write elsewhere with ``--report`` and ``--plots-dir``.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    command_line, done, exclusive, log_invocation, machine, read_json_or_none, record_outputs, refuse_foreign_outputs,
)
from peers_jobs import METHODS, Job, Outcome, model_root, train_base  # noqa: E402
from peers_measure import figures, latency_run, latency_session, netadapt_cost  # noqa: E402
from peers_report import plot, report  # noqa: E402
from peers_settings import (  # noqa: E402
    METHODS_ORDER, PROFILES, Settings, check_cache, parse_args, resolve_settings, with_available_dataset,
)
from prunekit.io import atomic_write, write_json  # noqa: E402


def union(profile: list, chosen: list) -> list:
    """The profile's items and the chosen ones, in order, once each."""
    return list(dict.fromkeys([*profile, *chosen]))


def cells(s: Settings) -> tuple[list[str], list[float], list[int], list[str]]:
    """Models, budgets, seeds and methods the report covers: the profile's and this run's."""
    p = PROFILES[s.profile]
    methods = union(p["methods"], s.methods)
    return (union(p["models"], s.models), union(p["budgets"], s.budgets), union(p["seeds"], s.seeds),
            [m for m in METHODS_ORDER if m in methods])


def run_model(s: Settings, model: str) -> None:
    """Every chosen method at every chosen budget and seed (NetAdapt first: the peers' equal compute needs its
    search), then the latency-budget runs."""
    with exclusive(model_root(s, model), wait=True):  # another lane may be training them
        train_base(s, model, slim=False)
        if "slimming" in s.methods:
            train_base(s, model, slim=True)
    jobs = [Job(model, method, budget, seed, s) for budget in s.budgets for seed in s.seeds
            for method in METHODS_ORDER if method in s.methods]
    if "netadapt" in s.methods:
        jobs += [Job(model, "netadapt", budget, seed, s, resource="latency")
                 for budget in s.latency_budgets_of(model) for seed in s.seeds]
    for job in jobs:
        print(f"== {time.strftime('%H:%M:%S')} {model} {job.resource} budget {job.budget:g} seed {job.seed}: "
              f"{job.method}", flush=True)
        with exclusive(job.folder) as mine:
            if not mine:
                print("another process is running this job: skipped", flush=True)
            elif job.resource == "latency":
                latency_run(job, cells(s)[1])
            else:
                METHODS[job.method](job)


def record(job: Job, outcome: Outcome) -> dict[str, Any]:
    """One finished job's figures as a results.json record."""
    r = {"model": job.model, "budget": job.budget, "seed": job.seed, "method": job.method,
         "search_s": outcome.search_s, "note": outcome.note, "folder": str(job.folder), "final": str(outcome.final),
         "before": figures(outcome.pruned) if outcome.pruned else None, "after": figures(outcome.final),
         "compute": figures(outcome.compute) if outcome.compute and done(outcome.compute) else None,
         "compute_plan": outcome.compute_plan}
    if job.method == "netadapt":
        r["cost"] = netadapt_cost(job.folder / "search", outcome.search_s)
    return r


def collect_model(s: Settings, model: str) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """Read back (never run) one base model's cached cells: its bases, every finished job and latency run."""
    _, budgets, seeds, methods = cells(s)
    root = model_root(s, model)
    bases: dict[str, Any] = {"base": figures(root / "base")}
    if done(root / "base-slimming"):
        bases["slim"] = figures(root / "base-slimming")
    runs = []
    for budget in budgets:
        for seed in seeds:
            for method in methods:
                job = Job(model, method, budget, seed, s, live=False)
                if (outcome := METHODS[method](job)) is not None:
                    runs.append(record(job, outcome))
    lat_runs = [r for b in s.latency_budgets_of(model) for seed in seeds
                if (r := latency_run(Job(model, "netadapt", b, seed, s, resource="latency", live=False), budgets))]
    return bases, runs, lat_runs


def measure_latency(s: Settings, model: str, bases: dict[str, Any], runs: list[dict]) -> None:
    """Every network of one model's tables measured together (cached while the set is unchanged); with
    ``--no-latency``, what an earlier session measured."""
    root = model_root(s, model)
    named = [(root / "base", bases["base"]), *([(root / "base-slimming", bases["slim"])] if "slim" in bases else []),
             *((Path(r["final"]), r["after"]) for r in runs)]
    cache = root / "latency.json"
    measured = latency_session([f for f, _ in named], s, cache) if s.latency else read_json_or_none(cache) or {}
    for folder, figs in named:
        if str(folder) in measured:
            figs["latency"] = measured[str(folder)]


def netadapt_options(s: Settings) -> list[tuple[str, int]]:
    """The distinct NetAdapt option sets the cached searches recorded (less budget, resource and seed)."""
    counts: dict[str, int] = {}
    for path in sorted(s.out.glob("*/*/seed-*/netadapt/search/config.json")):
        options = dict(json.loads(path.read_text()).get("netadapt", {}))
        for key in ("budget", "budget_ratio", "resource", "seed"):
            options.pop(key, None)
        key = json.dumps(options, sort_keys=True)
        counts[key] = counts.get(key, 0) + 1
    return list(counts.items())


def plot_path(s: Settings, model: str) -> Path:
    """Where ``model``'s plot goes."""
    return s.plots_dir / f"peers-{model}-{s.dataset}-{s.profile}.png"


def output_paths(s: Settings) -> list[Path]:
    """The report and every plot this invocation may write."""
    return [s.report, *(plot_path(s, model) for model in cells(s)[0])]


def collect(s: Settings) -> dict[str, Any]:
    """Every cached figure of the profile's cells, latency measured where asked, a plot per model."""
    results: dict[str, Any] = {"bases": {}, "runs": [], "latency_runs": []}
    for model in cells(s)[0]:
        if not done(model_root(s, model) / "base"):
            continue
        bases, runs, lat_runs = collect_model(s, model)
        measure_latency(s, model, bases, runs)
        bases["plot"] = str(plot_path(s, model))
        plot(bases["base"], runs, model, f"{s.model_label(model)} on {s.dataset} ({s.profile} profile)",
             Path(bases["plot"]))
        results["bases"][model] = bases
        results["runs"] += runs
        results["latency_runs"] += lat_runs
    results["netadapt_options"] = netadapt_options(s)
    return results


def interrupt(signum: int, frame: Any) -> None:
    """``kill`` stops the bench like Ctrl-C: the running step's time so far is still recorded."""
    raise KeyboardInterrupt


def invocation(t0: float, status: str) -> dict[str, Any]:
    """This invocation's record for ``invocations.jsonl``."""
    return {"date": datetime.now().isoformat(timespec="seconds"), "command": command_line(),
            "wall_s": time.perf_counter() - t0, "status": status}


def write_outputs(s: Settings, t0: float) -> None:
    """results.json, the report and the plots, from every cached figure; this invocation logged."""
    results = {"date": datetime.now().isoformat(timespec="seconds"), "machine": machine(), "command": command_line(),
               "settings": s.to_dict(), **collect(s)}
    results["wall_s"] = time.perf_counter() - t0
    results["invocations"] = log_invocation(s.out, invocation(t0, "done"))
    write_json(s.out / "results.json", results)
    models, budgets, seeds, methods = cells(s)
    expected = [(m, b, meth) for m in models if m in results["bases"] for b in budgets for meth in methods]
    text = report(s, results, expected, len(seeds))
    atomic_write(s.report, lambda tmp: Path(tmp).write_text(text))
    record_outputs(s.out, [s.report, *(Path(b["plot"]) for b in results["bases"].values())])
    print(f"results: {s.out / 'results.json'}; report: {s.report}; wall time {results['wall_s']:.0f} s")


def main(argv: list[str] | None = None) -> None:
    """Run the chosen cells (cached), then write results.json, the report and the plots from the whole cache."""
    t0 = time.perf_counter()
    signal.signal(signal.SIGTERM, interrupt)
    s = resolve_settings(parse_args(argv, __doc__))
    if s.threads:
        torch.set_num_threads(s.threads)
    s = with_available_dataset(s)
    refuse_foreign_outputs(s.out, output_paths(s), s.overwrite)
    s.out.mkdir(parents=True, exist_ok=True)
    check_cache(s)
    try:
        for model in [] if s.report_only else s.models:
            run_model(s, model)
    except BaseException:  # a stopped invocation's time counts too
        log_invocation(s.out, invocation(t0, "stopped"))
        raise
    write_outputs(s, t0)


if __name__ == "__main__":
    main()
