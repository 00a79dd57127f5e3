"""``bench/peers.py``'s cached steps: the bases, every method's pruning, the long-term fine-tuning at equal
fine-tuning and at equal compute. Every artefact is a prunekit checkpoint folder, made by a ``prunekit``
command run in this process or by the library function that command calls."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from common import add_seconds, cached_cli, cli, done, epoch_seconds, read_json_or_none, seconds_in, timed
from peers_settings import Settings, check_base, load_data
from peers_tp import save_tp_network
from prunekit.io import load_checkpoint, read_description, write_json
from prunekit.models.layers import init_weights
from prunekit.pipeline.steps import fit_and_save
from prunekit.pipeline.workdir import WorkDir
from prunekit.training import TrainConfig, seed_everything

BASE, SLIM_BASE = "base", "base-slimming"
MISSED_BUDGET = 3
"""``prunekit netadapt``'s exit status when its network ends above the budget: recorded, not fatal."""


@dataclass(frozen=True)
class Job:
    """One method on one base model at one budget (of the MACs, or of the latency) and seed. ``live``: its
    missing steps may run; otherwise only what is cached is read."""

    model: str
    method: str
    budget: float
    seed: int
    s: Settings
    resource: str = "macs"
    live: bool = True

    @property
    def root(self) -> Path:
        """The base model's folder (see :func:`model_root`)."""
        return model_root(self.s, self.model)

    @property
    def base(self) -> Path:
        """The base checkpoint (the slimming method's is :attr:`slim_base`)."""
        return self.root / BASE

    @property
    def slim_base(self) -> Path:
        """The base trained with the sparsity penalty, for network slimming."""
        return self.root / SLIM_BASE

    @property
    def folder(self) -> Path:
        """``ROOT/budget-0.5/seed-0/METHOD`` (``latency-0.5`` for a latency budget)."""
        kind = "budget" if self.resource == "macs" else self.resource
        return self.root / f"{kind}-{self.budget:g}" / f"seed-{self.seed}" / self.method

    def sibling(self, method: str) -> "Job":
        """The same base, budget and seed with another method."""
        return replace(self, method=method)


@dataclass
class Outcome:
    """What a method produced: its network before long-term fine-tuning, after the equal fine-tuning, and after
    the equal-compute fine-tuning (with how its epochs were set) where there is one."""

    pruned: Path | None
    final: Path
    search_s: float | None
    compute: Path | None = None
    compute_plan: dict[str, Any] | None = None
    note: str = ""


def model_root(s: Settings, model: str) -> Path:
    """``OUT/vgg11-width_mult=0.25``: the model arguments are part of the name."""
    return s.out / "-".join([model, *s.model_kwargs(model)])


def step(job: Job, folder: Path, work: Callable[[], Any]) -> Path | None:
    """``folder`` once complete: ``work`` makes it when it is missing and ``job`` is live; None otherwise."""
    if not done(folder):
        if not job.live:
            return None
        work()
    return folder


# -- bases and fine-tuning ----------------------------------------------------------------------


def train_base(s: Settings, model: str, slim: bool) -> Path:
    """Train (once) the base, or the slimming base, with the profile's one recipe (seed 0); check a cached one."""
    out, sparsity = model_root(s, model) / (SLIM_BASE if slim else BASE), (s.sparsity if slim else 0.0)
    margs = [x for kw in s.model_kwargs(model) for x in ("--model-arg", kw)]
    extra = ["--sparsity", f"{sparsity:g}"] if slim else []
    cached_cli(out, ["train", "--model", model, *margs, *s.data_flags(model), *s.base_flags(), "--quiet", *extra,
                     "--out", str(out)])
    check_base(s, model, out, sparsity)
    return out


def finetune(job: Job, source: Path, out: Path, epochs: float) -> Path | None:
    """``prunekit finetune`` with the profile's epochs and learning rate and the job's seed; the rest of the recipe
    is the base's, as the command builds it (cached; an interrupted run resumes from its last epoch)."""
    return step(job, out, lambda: cli(["finetune", "--checkpoint", str(source), "--out", str(out), "--epochs",
                                       f"{epochs:.10g}", "--lr", f"{job.s.finetune_lr:g}", "--seed", str(job.seed),
                                       "--quiet"]))


def equal_finetune(job: Job, pruned: Path) -> Path | None:
    """The long-term fine-tuning every method gets alike."""
    return finetune(job, pruned, job.folder / f"finetune-{job.s.ft_tag}", job.s.finetune_epochs)


def compute_plan(job: Job, equal_ft: Path) -> dict[str, Any] | None:
    """How many fine-tuning epochs NetAdapt's search time buys this method (fixed once, in ``compute-TAG.json``):
    extra = (NetAdapt's search seconds - the method's own pruning seconds) / the method's seconds per epoch of its
    equal fine-tuning, same base, budget and seed; None until NetAdapt's search is done."""
    path = job.folder / f"compute-{job.s.ft_tag}.json"
    plan = read_json_or_none(path)
    if plan is None:
        netadapt_s = netadapt_seconds(job.sibling("netadapt"))
        if netadapt_s is None:
            return None
        own_s, per_epoch = seconds_in(job.folder / "search.json") or 0.0, epoch_seconds(equal_ft)
        extra = max(0.0, (netadapt_s - own_s) / per_epoch)
        plan = {"netadapt_search_s": netadapt_s, "own_prune_s": own_s, "epoch_s": per_epoch,
                "extra_epochs": round(extra, 3), "epochs": round(job.s.finetune_epochs + extra, 3)}
        write_json(path, plan)
    return plan


def equal_compute(job: Job, pruned: Path, equal_ft: Path) -> tuple[Path | None, dict[str, Any] | None]:
    """The method's fine-tuning at NetAdapt's compute: the equal fine-tuning plus NetAdapt's search time."""
    plan = compute_plan(job, equal_ft)
    if plan is None:
        return None, None
    return finetune(job, pruned, job.folder / f"compute-{job.s.ft_tag}", plan["epochs"]), plan


# -- the methods --------------------------------------------------------------------------------


def netadapt_search(job: Job) -> None:
    """``prunekit netadapt`` with its default options (budget, resource and seed only), resumed when interrupted;
    its wall time, summed over the invocations it took, in ``search.json``."""
    work = job.folder / "search"
    resume = ["--resume"] if (work / "config.json").is_file() else []
    with timed(job.folder / "search.json"):
        cli(["netadapt", "--checkpoint", str(job.base), "--work-dir", str(work), "--out", str(job.folder / "pruned"),
             "--budget-ratio", f"{job.budget:g}", "--resource", job.resource, "--seed", str(job.seed), "--quiet",
             *resume], ok=(0, MISSED_BUDGET))


def netadapt_pruned(job: Job) -> Path | None:
    """NetAdapt's final network (cached)."""
    return step(job, job.folder / "pruned", partial(netadapt_search, job))


def netadapt_seconds(job: Job) -> float | None:
    """NetAdapt's search wall time: the summed invocations, or the iterations' own sum where a killed part's
    time was lost; None while the search is not done."""
    if not done(job.folder / "pruned"):
        return None
    recorded = seconds_in(job.folder / "search.json") or 0.0
    return max(recorded, sum(h.get("seconds", 0.0) for h in WorkDir(job.folder / "search").history()))


def run_netadapt(job: Job) -> Outcome | None:
    """NetAdapt to the budget, then the long-term fine-tuning."""
    pruned = netadapt_pruned(job)
    final = equal_finetune(job, pruned) if pruned else None
    if final is None:
        return None
    iterations = len(WorkDir(job.folder / "search").history())
    return Outcome(pruned, final, netadapt_seconds(job), note=f"{iterations} iterations")


def oneshot_prune(job: Job, criterion: str, scope: str, slim: bool) -> None:
    """``prunekit prune`` with a criterion to the MACs budget, from the slimming base when ``slim``."""
    add_seconds(job.folder / "search.json", cli([
        "prune", "--checkpoint", str(job.slim_base if slim else job.base), "--out", str(job.folder / "pruned"),
        "--criterion", criterion, "--scope", scope, "--budget-ratio", f"{job.budget:g}", "--resource", "macs",
        "--seed", str(job.seed)]))


def tp_prune(job: Job, taylor: bool) -> None:
    """Torch-Pruning to the MACs budget (see ``peers_tp``); its own loop's seconds in ``search.json``."""
    s = job.s
    seconds = save_tp_network(job.base, job.folder / "pruned", taylor, job.budget, job.seed,
                              load_data(s.data_config(job.model)), s.tp_steps, s.taylor_batches)
    write_json(job.folder / "search.json", {"seconds": seconds})


def run_peer(job: Job, prune: Callable[[Job], None]) -> Outcome | None:
    """A peer of NetAdapt: prune, then the equal fine-tuning, then the equal-compute fine-tuning."""
    pruned = step(job, job.folder / "pruned", partial(prune, job))
    final = equal_finetune(job, pruned) if pruned else None
    if final is None:
        return None
    compute, plan = equal_compute(replace(job, live=job.live and job.s.equal_compute), pruned, final)
    meta = read_description(pruned).get("meta", {}).get("prune", {})
    note = f"{meta['steps']} TP steps" if "steps" in meta else ""
    if meta.get("reached_budget") is False:
        note += ", budget NOT reached"
    return Outcome(pruned, final, seconds_in(job.folder / "search.json"), compute, plan, note)


def reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """Fresh weights and BN statistics for every layer (the zoo's He initialisation), seeded."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    return init_weights(model)


def train_from_scratch(job: Job, source: Path, out: Path) -> None:
    """``source``'s architecture re-initialised and trained with the base recipe for base + fine-tune epochs,
    through the library's train-and-save step (resumable, like ``prunekit train``)."""
    s, ckpt = job.s, load_checkpoint(source)
    cfg = TrainConfig.recorded(ckpt.meta["train"]).replace(epochs=s.base_epochs + s.finetune_epochs,
                                                           seed=job.seed, sparsity=0.0)
    seed_everything(job.seed)
    model = reinitialise(ckpt.model, job.seed)
    data_cfg = s.data_config(job.model)
    fit_and_save(model, load_data(data_cfg), data_cfg, cfg, out, progress=False,
                 extra_meta={"parent": str(source), "from_scratch": True})


def run_rethinking(job: Job) -> Outcome | None:
    """NetAdapt's architecture trained from scratch (Liu et al. 2019)."""
    source = netadapt_pruned(job.sibling("netadapt"))
    out = job.folder / f"scratch-{job.s.ft_tag}"
    final = step(job, out, partial(train_from_scratch, job, source, out)) if source else None
    return Outcome(None, final, None, note="NetAdapt's architecture, from scratch") if final else None


METHODS: dict[str, Callable[[Job], Outcome | None]] = {
    "netadapt": run_netadapt,
    "l1-local": partial(run_peer, prune=partial(oneshot_prune, criterion="l1", scope="local", slim=False)),
    "l1-global": partial(run_peer, prune=partial(oneshot_prune, criterion="l1", scope="global", slim=False)),
    "slimming": partial(run_peer, prune=partial(oneshot_prune, criterion="bn_scale", scope="global", slim=True)),
    "tp-magnitude": partial(run_peer, prune=partial(tp_prune, taylor=False)),
    "tp-taylor": partial(run_peer, prune=partial(tp_prune, taylor=True)),
    "rethinking": run_rethinking,
}
