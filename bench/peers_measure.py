"""``bench/peers.py``'s measurements: each network's figures, latency measured in interleaved rounds, where
NetAdapt's search time goes, and the latency-budget run against the MACs-budget network as fast for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from common import done, read_json_or_none
from peers_jobs import Job, finetune, run_netadapt
from peers_settings import Settings
from prunekit.io import load_checkpoint, read_json, write_json
from prunekit.pipeline.workdir import WorkDir

LATENCY_PLATFORMS = ("torch-cpu", "onnxruntime-cpu")
LATENCY_BATCHES = (1, 32)
LATENCY_THREADS = 1
NETADAPT_LATENCY = "torch-cpu@1"
"""Where NetAdapt's latency budget is measured with its defaults (torch-cpu, batch 1, this process's threads)."""
FIGURES = "bench_figures.json"
"""Cache of an artefact's figures, written inside its folder."""


def latency_keys() -> list[str]:
    """``torch-cpu@1`` ... in table order."""
    return [f"{p}@{b}" for p in LATENCY_PLATFORMS for b in LATENCY_BATCHES]


def figures(folder: Path) -> dict[str, Any]:
    """An artefact's metrics (test / validation accuracy, MACs, parameters, training seconds) and conv widths."""
    path = folder / FIGURES
    if path.is_file():
        return read_json(path)
    model = load_checkpoint(folder).model
    figs = {**read_json(folder / "metrics.json"),
            "conv_widths": [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]}
    write_json(path, figs)
    return figs


def latency(model: nn.Module, shape: tuple[int, ...], keys: list[str], min_time_s: float) -> dict[str, dict]:
    """Median latency (and its spread) of ``model`` on every ``platform@batch`` of ``keys``, one thread each."""
    from prunekit.latency import measure_latency

    out = {}
    for key in keys:
        plat, batch = key.split("@")
        x = torch.randn(int(batch), *shape, generator=torch.Generator().manual_seed(0))
        out[key] = measure_latency(model, x, plat, threads=LATENCY_THREADS, min_time_s=min_time_s).to_dict()
    return out


def latency_session(folders: list[Path], s: Settings, cache: Path, keys: list[str] | None = None) -> dict[str, dict]:
    """Latency of networks measured together: ``latency_rounds`` passes over all of them, so that a burst of load on
    a shared machine hits them alike; each figure is the round with the lowest median (every round's median is kept
    in ``round_medians_ms``). Cached in ``cache`` while no other network is asked for."""
    names, keys = [str(f) for f in folders], keys or latency_keys()
    cached = read_json_or_none(cache) or {}
    if all(n in cached and all(k in cached[n] for k in keys) for n in names):
        return cached
    ckpts = {n: load_checkpoint(f) for n, f in zip(names, folders)}
    best: dict[str, dict[str, Any]] = {n: {} for n in names}
    for round_ in range(s.latency_rounds):
        print(f"latency round {round_ + 1}/{s.latency_rounds} over {len(names)} networks", flush=True)
        for n, ckpt in ckpts.items():
            for key, result in latency(ckpt.model, ckpt.input_shape, keys, s.latency_min_time).items():
                kept = best[n].get(key)
                medians = (kept["round_medians_ms"] if kept else []) + [result["median_ms"]]
                if kept is None or result["median_ms"] < kept["median_ms"]:
                    kept = result
                best[n][key] = {**kept, "round_medians_ms": medians}
    write_json(cache, best)
    return best


def netadapt_cost(work: Path, total_s: float | None) -> dict[str, Any]:
    """Where a NetAdapt search's time went, from its ``history.jsonl``: short-term fine-tuning and evaluation (of the
    candidates and of each kept network), BatchNorm re-estimation (adaptive-bn scoring), and the framework's own
    work (planning, surgery and resource counts in candidates, saving, and what ran outside the iterations).
    Fields missing from the history come back as None."""
    history = WorkDir(work).history()
    cands = [c for h in history for c in h.get("candidates", []) if c.get("status") != "skipped"]

    def total(records: list[dict], key: str) -> float | None:
        return sum(r[key] for r in records) if all(key in r for r in records) else None

    def add(*values: float | None) -> float | None:
        return None if any(v is None for v in values) else sum(values)

    iterations_s, candidates_s = total(history, "seconds"), total(cands, "seconds")
    cand_ft, cand_eval, cand_bn = total(cands, "finetune_s"), total(cands, "evaluate_s"), total(cands, "calibrate_s")
    finetune_s = add(cand_ft, total(history, "kept_finetune_s"))
    evaluate_s = add(cand_eval, total(history, "evaluate_s"))
    spent, spent_in_candidates = add(finetune_s, evaluate_s, cand_bn), add(cand_ft, cand_eval, cand_bn)
    return {
        "iterations": len(history), "candidates": len(cands), "total_s": total_s, "iterations_s": iterations_s,
        "finetune_s": finetune_s, "evaluate_s": evaluate_s, "calibrate_s": cand_bn,
        "framework_s": None if total_s is None or spent is None else total_s - spent,
        "plan_s": total(history, "plan_s"), "save_s": total(history, "save_s"),
        "surgery_s": None if candidates_s is None or spent_in_candidates is None else candidates_s - spent_in_candidates,
        "outside_s": total_s - iterations_s if total_s is not None and iterations_s is not None else None,
    }


def latency_run(job: Job, macs_budgets: list[float]) -> dict[str, Any] | None:
    """NetAdapt to ``job.budget`` of the base's latency (its defaults), fine-tuned like every method; its measured
    latency against the budget, and its accuracy against the network of the same seed's MACs-budget NetAdapt run
    that is first as fast for real (see :func:`as_fast_match`). None until the run is done."""
    outcome = run_netadapt(job)
    if outcome is None:
        return None
    record: dict[str, Any] = {"model": job.model, "budget": job.budget, "seed": job.seed, "search_s": outcome.search_s,
                              "note": outcome.note, "after": figures(outcome.final), "before": figures(outcome.pruned)}
    runs = [Job(job.model, "netadapt", b, job.seed, job.s, live=False) for b in sorted(macs_budgets)]
    macs_runs = [r for r in runs if done(r.folder / "pruned")]
    if not macs_runs or not job.s.latency:
        return record
    return {**record, **as_fast_match(job, macs_runs[0])}


def as_fast_match(job: Job, macs_job: Job) -> dict[str, Any]:
    """The base, the latency run's network and every iteration of a MACs run measured together (``macs_job``: the
    lowest MACs budget done, whose iterations reach furthest); the first iteration as fast as the latency network
    is chosen once (``match.json``) and fine-tuned alike. No match while no iteration done is as fast."""
    work = WorkDir(macs_job.folder / "search")
    iterations = [work.iteration_dir(i) for i in range(len(work.history()) + 1)]
    folders = [job.base, job.folder / "pruned", *iterations]
    measured = latency_session(folders, job.s, job.folder / "latency-match.json", [NETADAPT_LATENCY])
    ms = {f: measured[str(f)][NETADAPT_LATENCY]["median_ms"] for f in folders}
    figs = {"base_ms": ms[job.base], "budget_ms": job.budget * ms[job.base], "measured_ms": ms[job.folder / "pruned"],
            "searched": f"{len(iterations)} networks of the {macs_job.budget:.0%}-MACs run"}
    match = read_json_or_none(job.folder / "match.json")
    if match is None:
        fast = [f for f in iterations if ms[f] <= figs["measured_ms"]]
        if not fast:
            return {**figs, "match": None}
        match = {"folder": str(fast[0]), "run": str(macs_job.folder), "iteration": iterations.index(fast[0]),
                 "measured_ms": ms[fast[0]], "before": read_json(fast[0] / "metrics.json")}
        write_json(job.folder / "match.json", match)
    tuned = finetune(job, Path(match["folder"]), job.folder / f"match-finetune-{job.s.ft_tag}", job.s.finetune_epochs)
    return {**figs, "match": {**match, "after": figures(tuned) if tuned else None}}
