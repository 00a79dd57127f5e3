"""Quality at equal budget: NetAdapt against its peers, on zoo models, at the same MACs budgets.

Each base model (trained once, seed 0) is pruned to each budget (a share of its MACs) by:

    netadapt      prunekit netadapt, then prunekit pick of the last iteration
    l1-local      prunekit prune --criterion l1 --scope local   (one uniform ratio per layer)
    l1-global     prunekit prune --criterion l1 --scope global  (filters ranked across layers)
    slimming      a second base trained with --sparsity (L1 on BN scales), then
                  prunekit prune --criterion bn_scale --scope global (Liu et al. 2017)
    tp-magnitude  Torch-Pruning's MagnitudePruner, MagnitudeImportance(p=2), global ranking
    tp-taylor     the same with TaylorImportance (gradients of a few training batches per step)
    rethinking    NetAdapt's final architecture re-initialised and trained from scratch for
                  base + fine-tune epochs (Liu et al. 2019, "Rethinking the value of network pruning")

then every pruned network gets the same long-term fine-tuning (``prunekit finetune --lr --epochs
--seed --sparsity 0``, or the identical recipe in Python for Torch-Pruning's networks, which are
not prunekit checkpoints). Reported: test accuracy before / after fine-tuning, MACs and
parameters (``prunekit.measure`` for every network), latency measured with one thread on
torch-cpu and onnxruntime-cpu at batch 1 and 32, the pruning step's wall time, the real speed-up
against the MACs ratio, and where NetAdapt's search time goes.

Usage (run CPU-heavy work with one thread on a shared machine)::

    OMP_NUM_THREADS=1 python bench/peers.py --profile quick
    OMP_NUM_THREADS=1 python bench/peers.py --profile medium          # what BENCHMARKS.md reports (~1 h a model)
    OMP_NUM_THREADS=1 python bench/peers.py --profile full --seeds 0 1 2
    OMP_NUM_THREADS=1 python bench/peers.py --profile quick --models vgg11 --methods netadapt tp-taylor \\
        --train-subset 500 --out runs/bench/peers/dev --report /tmp/peers-dev.md --plots-dir /tmp/peers-dev

Every step is cached under ``--out`` (default ``runs/bench/peers/<profile>``): a step whose output
folder holds a ``metrics.json`` is skipped and NetAdapt continues with ``--resume``, so a killed
run picks up where it stopped. Settings that change cached results are saved in
``OUT/settings.json``; a later run with different ones is refused (choose another ``--out``).
Outputs: ``OUT/results.json``, ``bench/results/peers-<profile>.md`` and one PNG per base model in
``docs/bench/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from prunekit.pipeline.workdir import WorkDir
from prunekit.cli.main import main as prunekit
from prunekit.data import DataBundle, batches
from prunekit.errors import PrunekitError
from prunekit.io import atomic_write, load_checkpoint, read_description, read_json, save_checkpoint, write_json
from prunekit.models.layers import init_weights
from prunekit.pipeline.context import DataConfig
from prunekit.pipeline.steps import model_metrics, recorded_data_config
from prunekit.resources import measure as count_resources
from prunekit.training import TrainConfig, seed_everything, train

METHODS_ORDER = ("netadapt", "l1-local", "l1-global", "slimming", "tp-magnitude", "tp-taylor", "rethinking")
LATENCY_PLATFORMS = ("torch-cpu", "onnxruntime-cpu")
LATENCY_BATCHES = (1, 32)
LATENCY_THREADS = 1
MARKERS = "osD^vPX"
FIGURES = "bench_figures.json"
"""Cache of an artefact's measured figures, written inside its folder."""
PICKLED = "model.pt"
"""Torch-Pruning's networks are not prunekit checkpoints: they are pickled whole (a benchmark artefact)."""

PROFILES: dict[str, dict[str, Any]] = {
    "quick": dict(
        dataset="fashion-mnist", models=["vgg11", "resnet20"], model_arg=["vgg11:width_mult=0.25", "resnet20:width=8"],
        budgets=[0.5], seeds=[0], base_epochs=2.0, finetune_epochs=1.0, finetune_lr=0.01, train_subset=3000,
        val_size=500.0, test_subset=2000, short_term_iters=10, init_reduction_ratio=0.1, reduction_decay=0.9,
        min_channels_step=2, sparsity=1e-4, tp_steps=100, taylor_batches=4, latency_min_time=0.2,
        latency_rounds=5,
    ),
    "medium": dict(  # what BENCHMARKS.md reports: what two shared cores finish in about an hour
        dataset="fashion-mnist", models=["vgg11", "resnet20"], model_arg=["vgg11:width_mult=0.5"], budgets=[0.5, 0.3],
        seeds=[0], base_epochs=3.0, finetune_epochs=1.0, finetune_lr=0.01, train_subset=6000, val_size=1000.0,
        test_subset=5000, short_term_iters=20, init_reduction_ratio=0.1, reduction_decay=0.9, min_channels_step=4,
        sparsity=1e-4, tp_steps=100, taylor_batches=4, latency_min_time=0.3, latency_rounds=3,
    ),
    "full": dict(
        dataset="fashion-mnist", models=["vgg11", "resnet20"], model_arg=[], budgets=[0.5, 0.3], seeds=[0],
        base_epochs=10.0, finetune_epochs=5.0, finetune_lr=0.01, train_subset=None, val_size=5000.0, test_subset=None,
        short_term_iters=100, init_reduction_ratio=0.05, reduction_decay=0.96, min_channels_step=4, sparsity=1e-4,
        tp_steps=100, taylor_batches=4, latency_min_time=0.5,
        latency_rounds=5,
    ),
}
CACHE_KEYS = ("dataset", "model_arg", "base_epochs", "finetune_epochs", "finetune_lr", "train_subset", "val_size",
              "test_subset", "short_term_iters", "init_reduction_ratio", "reduction_decay", "min_channels_step",
              "sparsity", "tp_steps", "taylor_batches")
"""Settings that change what the cached steps produce: a cache made with other values is refused."""


# -- settings -----------------------------------------------------------------------------------


@dataclass
class Settings:
    """Everything one run uses: the profile's defaults overridden by the flags given."""

    profile: str
    dataset: str
    models: list[str]
    model_arg: list[str]
    budgets: list[float]
    methods: list[str]
    seeds: list[int]
    base_epochs: float
    finetune_epochs: float
    finetune_lr: float
    train_subset: int | None
    val_size: float
    test_subset: int | None
    short_term_iters: int
    init_reduction_ratio: float
    reduction_decay: float
    min_channels_step: int
    sparsity: float
    tp_steps: int
    taylor_batches: int
    latency_min_time: float
    latency_rounds: int
    out: Path
    report: Path
    plots_dir: Path
    threads: int | None
    dataset_note: str = ""

    def model_kwargs(self, model: str) -> list[str]:
        """The ``KEY=VALUE`` model arguments given for ``model`` (``--model-arg MODEL:KEY=VALUE``)."""
        return [item.split(":", 1)[1] for item in self.model_arg if item.split(":", 1)[0] == model]

    def model_label(self, model: str) -> str:
        """``vgg11 (width_mult=0.25)``, or the bare name at full width."""
        kwargs = self.model_kwargs(model)
        return f"{model} ({', '.join(kwargs)})" if kwargs else model

    def data_config(self) -> DataConfig:
        """The data settings every checkpoint of this run records."""
        return DataConfig(dataset=self.dataset, val_size=self.val_size, train_subset=self.train_subset,
                          test_subset=self.test_subset)

    def data_flags(self) -> list[str]:
        """The same data settings as ``prunekit`` flags."""
        flags = ["--dataset", self.dataset, "--val-size", str(self.val_size)]
        if self.train_subset:
            flags += ["--train-subset", str(self.train_subset)]
        if self.test_subset:
            flags += ["--test-subset", str(self.test_subset)]
        return flags

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; every setting defaults to None so that the profile fills it in."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="default settings (default quick)")
    p.add_argument("--models", nargs="+", help="zoo models (quick/full: vgg11 resnet20)")
    p.add_argument("--model-arg", action="append", metavar="MODEL:KEY=VALUE",
                   help="model argument, e.g. vgg11:width_mult=0.5 (repeatable; overrides the profile's for that key)")
    p.add_argument("--budgets", nargs="+", type=float, 
                   help="MACs budgets as shares of the base (quick 0.5; full 0.5 0.3)")
    p.add_argument("--methods", nargs="+", choices=METHODS_ORDER, help="methods to run (default all)")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds of pruning and fine-tuning (default 0)")
    p.add_argument("--dataset", help="dataset (default fashion-mnist; digits when Fashion-MNIST is absent)")
    p.add_argument("--out", help="cache and results folder (default runs/bench/peers/<profile>)")
    p.add_argument("--base-epochs", type=float, help="base training epochs (quick 2, full 10)")
    p.add_argument("--finetune-epochs", type=float, help="long-term fine-tuning epochs (quick 1, full 5)")
    p.add_argument("--finetune-lr", type=float, help="long-term fine-tuning learning rate (0.01)")
    p.add_argument("--train-subset", type=int, help="training samples (quick 3000; 0: all)")
    p.add_argument("--val-size", type=float, help="hold-out validation split, count or fraction (quick 500, full 5000)")
    p.add_argument("--test-subset", type=int, help="test samples (quick 2000; 0: all)")
    p.add_argument("--short-term-iters", type=int, 
                   help="NetAdapt's short-term fine-tuning batches (quick 10, full 100)")
    p.add_argument("--init-reduction-ratio", type=float, help="NetAdapt's first reduction (quick 0.1, full 0.05)")
    p.add_argument("--reduction-decay", type=float, help="NetAdapt's reduction decay (quick 0.9, full 0.96)")
    p.add_argument("--min-channels-step", type=int, help="NetAdapt's channel step (quick 2, full 4)")
    p.add_argument("--sparsity", type=float, help="slimming base's L1 penalty on BN scales (1e-4)")
    p.add_argument("--tp-steps", type=int, help="Torch-Pruning's iterative steps, each 0.9/N of the channels (100)")
    p.add_argument("--taylor-batches", type=int, help="training batches of gradients before each tp-taylor step (4)")
    p.add_argument("--latency-min-time", type=float,
                   help="seconds of timed runs per latency figure (quick 0.2, full 0.5)")
    p.add_argument("--latency-rounds", type=int,
                   help="interleaved latency rounds over a table's networks, lowest median kept (5)")
    p.add_argument("--threads", type=int, 
                   help="torch threads for training and search (default: torch's, i.e. OMP_NUM_THREADS)")
    p.add_argument("--report", help="markdown report (default bench/results/peers-<profile>.md)")
    p.add_argument("--plots-dir", help="folder of the PNG plots (default docs/bench)")
    return p.parse_args(argv)


def merge_model_args(profile: list[str], given: list[str] | None) -> list[str]:
    """The profile's MODEL:KEY=VALUE items with those given replacing the same MODEL:KEY."""
    key = lambda item: item.split("=", 1)[0]  # noqa: E731
    merged = {key(item): item for item in profile}
    for item in given or []:
        if ":" not in item or "=" not in item:
            raise SystemExit(f"--model-arg expects MODEL:KEY=VALUE, got {item!r}")
        merged[key(item)] = item
    return list(merged.values())


def resolve_settings(a: argparse.Namespace) -> Settings:
    """The profile's defaults, overridden by the flags given (0 for a subset means all the data)."""
    d = dict(PROFILES[a.profile])
    for k, v in vars(a).items():
        if v is not None and k in d and k != "model_arg":
            d[k] = v
    d["model_arg"] = merge_model_args(d["model_arg"], a.model_arg)
    for k in ("train_subset", "test_subset"):
        d[k] = d[k] or None
    return Settings(
        profile=a.profile, methods=list(a.methods or METHODS_ORDER), out=Path(a.out or f"runs/bench/peers/{a.profile}"),
        report=Path(a.report or f"bench/results/peers-{a.profile}.md"), plots_dir=Path(a.plots_dir or "docs/bench"),
        threads=a.threads, **d,
    )


def check_cache(s: Settings) -> None:
    """Save the settings that shape the cache, or refuse a cache made with others."""
    path = s.out / "settings.json"
    mine = {k: getattr(s, k) for k in CACHE_KEYS}
    if path.exists():
        saved = read_json(path)
        differ = [f"{k}: cached {saved.get(k)!r}, now {v!r}" for k, v in mine.items() if saved.get(k) != v]
        if differ:
            raise SystemExit(f"{s.out} was made with other settings ({'; '.join(differ)}): choose another --out")
    else:
        write_json(path, mine)


def choose_dataset(s: Settings) -> tuple[Settings, DataBundle, float]:
    """Load the data once (falling back to digits when Fashion-MNIST is absent); returns the seconds it took."""
    t0 = time.perf_counter()
    try:
        data = s.data_config().load()
    except PrunekitError as err:
        if s.dataset != "fashion-mnist":
            raise SystemExit(f"cannot load {s.dataset}: {err}") from None
        note = "Fashion-MNIST was not found on this machine: fell back to `digits`"
        print(f"NOTE: {note} ({err})")
        s = replace(s, dataset="digits", dataset_note=note)
        data = s.data_config().load()
    return s, data, time.perf_counter() - t0


# -- cached steps -------------------------------------------------------------------------------


def done(folder: Path) -> bool:
    """Whether a step's output folder is complete (its metrics are written last)."""
    return (folder / "metrics.json").is_file() and any((folder / f).is_file() for f in ("model.safetensors", PICKLED))


def cli(args: list[str]) -> float:
    """Run one ``prunekit`` command in this process; returns its wall time in seconds."""
    print(f"$ prunekit {shlex.join(args)}", flush=True)
    t0 = time.perf_counter()
    code = prunekit(args)
    if code:
        raise SystemExit(f"prunekit {shlex.join(args)} failed with exit code {code}")
    return time.perf_counter() - t0


def cached_cli(folder: Path, args: list[str]) -> float | None:
    """Run a ``prunekit`` command unless ``folder`` is already complete; its seconds, or None when cached."""
    return None if done(folder) else cli(args)


def add_seconds(folder: Path, seconds: float | None) -> None:
    """Add a pruning step's wall time to ``folder/search.json`` (NetAdapt adds each resumed part)."""
    if seconds is None:
        return
    path = folder / "search.json"
    total = read_json(path)["seconds"] if path.exists() else 0.0
    write_json(path, {"seconds": total + seconds})


def search_seconds(folder: Path) -> float | None:
    """The pruning step's recorded wall time."""
    path = folder / "search.json"
    return read_json(path)["seconds"] if path.exists() else None


def save_pickled(folder: Path, model: nn.Module, metrics: dict[str, Any]) -> None:
    """Save a network prunekit cannot describe (Torch-Pruning's) as a whole pickled module, metrics last."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / PICKLED, lambda tmp: torch.save(model, tmp))
    write_json(folder / "metrics.json", metrics)


def load_any(folder: Path) -> nn.Module:
    """A network from a prunekit checkpoint folder or a pickled one, in eval mode."""
    if (folder / PICKLED).is_file():
        model = torch.load(folder / PICKLED, weights_only=False)
    else:
        model = load_checkpoint(folder).model
    return model.eval()


# -- bases and the jobs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One method on one base model at one budget and seed."""

    model: str
    method: str
    budget: float
    seed: int
    folder: Path
    base: Path
    slim_base: Path
    s: Settings
    data: DataBundle = field(repr=False, compare=False)

    def sibling(self, method: str) -> "Job":
        """The same base, budget and seed with another method."""
        return replace(self, method=method, folder=self.folder.parent / method)


@dataclass
class Outcome:
    """What a method produced: its pruned network (before long-term fine-tuning) and the final one."""

    pruned: Path | None
    final: Path
    search_s: float | None
    note: str = ""


def model_folder(s: Settings, model: str) -> Path:
    """``OUT/vgg11-width_mult=0.25``: the model arguments are part of the name."""
    return s.out / "-".join([model, *s.model_kwargs(model)])


def train_base(s: Settings, model: str, name: str, extra: list[str]) -> tuple[Path, float | None]:
    """Train (once) a base model with the fixed recipe (seed 0); returns its folder and seconds (None if cached)."""
    out = model_folder(s, model) / name
    margs = [x for kw in s.model_kwargs(model) for x in ("--model-arg", kw)]
    secs = cached_cli(out, ["train", "--model", model, *margs, *s.data_flags(), "--epochs", str(s.base_epochs),
                            "--seed", "0", "--out", str(out), "--quiet", *extra])
    return out, secs


def check_data(base: Path, s: Settings) -> None:
    """The data this process loaded must be the data the checkpoints record."""
    if recorded_data_config(base) != s.data_config():
        raise SystemExit(f"{base} records other data settings than this run: choose another --out")


def finetune_recipe(job: Job, epochs: float, lr: float | None = None) -> TrainConfig:
    """The recipe ``prunekit finetune --epochs E --lr LR --seed S --sparsity 0`` builds: the base's, with those set."""
    recipe = read_description(job.base)["meta"]["train"]
    return TrainConfig.from_dict({**recipe, "epochs": epochs, "lr": lr or recipe["lr"], "seed": job.seed,
                                  "sparsity": 0.0})


def train_like_cli(model: nn.Module, data: DataBundle, cfg: TrainConfig) -> None:
    """Train ``model`` in place exactly as ``prunekit finetune`` / ``train`` do (seed, splits, augmentation)."""
    seed_everything(cfg.seed)
    train(model, data.train, cfg, val_split=data.val, augment=data.augment, progress=False)
    model.to("cpu").eval()


def finetune_cli(job: Job, pruned: Path) -> Path:
    """The long-term fine-tuning every method gets, through ``prunekit finetune`` (cached)."""
    out = job.folder / "finetuned"
    cached_cli(out, ["finetune", "--checkpoint", str(pruned), "--out", str(out), "--epochs", str(job.s.finetune_epochs),
                     "--lr", str(job.s.finetune_lr), "--seed", str(job.seed), "--sparsity", "0", "--quiet"])
    return out


# -- the methods --------------------------------------------------------------------------------


def netadapt_pruned(job: Job) -> Path:
    """NetAdapt's search (resumed when interrupted) and its last iteration picked as a checkpoint (cached)."""
    s, work, pruned = job.s, job.folder / "search", job.folder / "pruned"
    if not (work / "metrics.json").is_file():
        resume = ["--resume"] if (work / "config.json").is_file() else []
        t0 = time.perf_counter()
        try:  # an interrupted part's time counts too
            cli(["netadapt", "--checkpoint", str(job.base), "--work-dir", str(work), "--budget-ratio", str(job.budget),
                 "--resource", "macs", "--short-term-iters", str(s.short_term_iters), "--init-reduction-ratio",
                 str(s.init_reduction_ratio), "--reduction-decay", str(s.reduction_decay), "--min-channels-step",
                 str(s.min_channels_step), "--seed", str(job.seed), "--quiet", *resume])
        finally:
            add_seconds(job.folder, time.perf_counter() - t0)
    last = len(WorkDir(work).history())
    cached_cli(pruned, ["pick", str(work), "--iter", str(last), "--out", str(pruned)])
    return pruned


def run_netadapt(job: Job) -> Outcome:
    """NetAdapt to the budget, then the long-term fine-tuning."""
    pruned = netadapt_pruned(job)
    note = f"{len(WorkDir(job.folder / 'search').history())} iterations"
    return Outcome(pruned, finetune_cli(job, pruned), search_seconds(job.folder), note)


def run_oneshot(job: Job, criterion: str, scope: str, slim: bool = False) -> Outcome:
    """``prunekit prune`` with a criterion to the budget (from the slimming base when ``slim``), then fine-tuning."""
    pruned = job.folder / "pruned"
    base = job.slim_base if slim else job.base
    add_seconds(job.folder, cached_cli(pruned, [
        "prune", "--checkpoint", str(base), "--out", str(pruned), "--criterion", criterion, "--scope", scope,
        "--budget-ratio", str(job.budget), "--resource", "macs", "--seed", str(job.seed)]))
    return Outcome(pruned, finetune_cli(job, pruned), search_seconds(job.folder))


def training_batches(data: DataBundle, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled training batches, epoch after epoch, in a fixed order for ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield from batches(data.train, batch_size, shuffle=True, generator=gen)


def accumulate_gradients(model: nn.Module, feed: Iterator[tuple[torch.Tensor, torch.Tensor]], n: int) -> None:
    """Fresh gradients of the cross-entropy over ``n`` batches (eval mode: BN statistics stay as trained)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    for _ in range(n):
        x, y = next(feed)
        nn.functional.cross_entropy(model(x), y).backward()


def tp_prune_to_budget(model: nn.Module, x: torch.Tensor, budget_macs: float, taylor: bool, job: Job) -> int:
    """Torch-Pruning, global ranking, classifier kept whole, stepped until ``prunekit.measure``'s MACs meet the
    budget; prunes ``model`` in place and returns the steps taken."""
    import torch_pruning as tp

    importance = tp.importance.TaylorImportance() if taylor else tp.importance.MagnitudeImportance(p=2)
    classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    pruner = tp.pruner.MagnitudePruner(model, x, importance=importance, global_pruning=True, pruning_ratio=0.9,
                                       iterative_steps=job.s.tp_steps, ignored_layers=[classifier])
    feed = training_batches(job.data, 64, job.seed)
    steps = 0
    while count_resources(model, x).macs > budget_macs and steps < job.s.tp_steps:
        if taylor:
            accumulate_gradients(model, feed, job.s.taylor_batches)
        pruner.step()
        steps += 1
    model.zero_grad(set_to_none=True)
    return steps


def run_torch_pruning(job: Job, taylor: bool) -> Outcome:
    """Torch-Pruning on the loaded base, then the CLI's fine-tuning recipe in Python (networks pickled under OUT)."""
    pruned, final = job.folder / "pruned", job.folder / "finetuned"
    if not done(pruned):
        ckpt = load_checkpoint(job.base)
        model, x = ckpt.model, ckpt.example_inputs(1)
        budget = job.budget * count_resources(model, x).macs
        torch.manual_seed(job.seed)
        t0 = time.perf_counter()
        steps = tp_prune_to_budget(model, x, budget, taylor, job)
        seconds = time.perf_counter() - t0
        metrics = model_metrics(model, job.data)
        save_pickled(pruned, model.eval(), {**metrics, "tp_steps": steps, "reached_budget": metrics["macs"] <= budget})
        add_seconds(job.folder, seconds)
    if not done(final):
        model = load_any(pruned)
        cfg = finetune_recipe(job, job.s.finetune_epochs, job.s.finetune_lr)
        train_like_cli(model, job.data, cfg)
        save_pickled(final, model, {**model_metrics(model, job.data), "train": cfg.to_dict()})
    record = read_json(pruned / "metrics.json")
    note = f"{record['tp_steps']} TP steps" + ("" if record.get("reached_budget", True) else ", budget NOT reached")
    return Outcome(pruned, final, search_seconds(job.folder), note)


def reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """Fresh weights and BN statistics for every layer (the zoo's He initialisation), seeded."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    return init_weights(model)


def run_rethinking(job: Job) -> Outcome:
    """NetAdapt's architecture trained from scratch with the base recipe for base + fine-tune epochs."""
    final = job.folder / "trained"
    if not done(final):
        source = netadapt_pruned(job.sibling("netadapt"))
        ckpt = load_checkpoint(source)
        model = reinitialise(ckpt.model, job.seed)
        cfg = finetune_recipe(job, job.s.base_epochs + job.s.finetune_epochs)
        train_like_cli(model, job.data, cfg)
        meta = {**ckpt.meta, "train": cfg.to_dict(), "parent": str(source), "from_scratch": True}
        save_checkpoint(final, model, metrics=model_metrics(model, job.data), meta=meta)
    return Outcome(None, final, None, "NetAdapt's architecture, from scratch")


METHODS: dict[str, Callable[[Job], Outcome]] = {
    "netadapt": run_netadapt,
    "l1-local": partial(run_oneshot, criterion="l1", scope="local"),
    "l1-global": partial(run_oneshot, criterion="l1", scope="global"),
    "slimming": partial(run_oneshot, criterion="bn_scale", scope="global", slim=True),
    "tp-magnitude": partial(run_torch_pruning, taylor=False),
    "tp-taylor": partial(run_torch_pruning, taylor=True),
    "rethinking": run_rethinking,
}


# -- measuring ----------------------------------------------------------------------------------


def latency(model: nn.Module, shape: tuple[int, ...], min_time_s: float) -> dict[str, dict[str, Any]]:
    """Median latency (and its spread) on every platform and batch, one thread each."""
    from prunekit.latency import measure as measure_latency

    out = {}
    for plat in LATENCY_PLATFORMS:
        for b in LATENCY_BATCHES:
            x = torch.randn(b, *shape, generator=torch.Generator().manual_seed(0))
            result = measure_latency(model, x, plat, threads=LATENCY_THREADS, min_time_s=min_time_s)
            out[f"{plat}@{b}"] = result.to_dict()
    return out


def latency_session(folders: list[Path], shape: tuple[int, ...], s: Settings, cache: Path) -> dict[str, dict[str, Any]]:
    """Latency of one table's networks, measured together: ``latency_rounds`` passes over all of them, so that a
    burst of load on a shared machine hits them alike; each figure is the round with the lowest median (every
    round's median is kept in ``round_medians_ms``). Cached in ``cache`` while no other network is asked for."""
    keys = [str(f) for f in folders]
    cached = read_json(cache) if cache.is_file() else {}
    if all(k in cached for k in keys):
        return cached
    models = {k: load_any(f) for k, f in zip(keys, folders)}
    best: dict[str, dict[str, Any]] = {k: {} for k in keys}
    for round_ in range(s.latency_rounds):
        print(f"latency round {round_ + 1}/{s.latency_rounds} over {len(keys)} networks", flush=True)
        for k, model in models.items():
            for name, result in latency(model, shape, s.latency_min_time).items():
                kept = best[k].get(name)
                medians = (kept["round_medians_ms"] if kept else []) + [result["median_ms"]]
                if kept is None or result["median_ms"] < kept["median_ms"]:
                    kept = result
                best[k][name] = {**kept, "round_medians_ms": medians}
    write_json(cache, best)
    return best


def figures(folder: Path, data: DataBundle) -> dict[str, Any]:
    """Test / validation accuracy, MACs, parameters and conv widths of an artefact, cached in its folder."""
    path = folder / FIGURES
    if path.is_file():
        return read_json(path)
    model = load_any(folder)
    with torch.no_grad():
        figs = model_metrics(model, data)
    figs["conv_widths"] = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    write_json(path, figs)
    return figs


def netadapt_cost(work: Path, total_s: float | None) -> dict[str, Any]:
    """Where a NetAdapt search's time went, from its ``history.jsonl``: short-term fine-tuning, evaluation, and
    the framework's own work (planning, surgery and resource counts in candidates, saving, and what ran outside
    the iterations). Fields missing from an older history come back as None."""
    history = WorkDir(work).history()
    cands = [c for h in history for c in h.get("candidates", []) if c.get("status") != "skipped"]

    def total(records: list[dict], key: str) -> float | None:
        return sum(r[key] for r in records) if all(key in r for r in records) else None

    iterations_s = total(history, "seconds")
    finetune_s, evaluate_s = total(cands, "finetune_s"), total(cands, "evaluate_s")
    candidates_s = total(cands, "seconds")
    whole = total_s
    if whole is None or (iterations_s is not None and whole < iterations_s):  # a killed part's time was lost
        whole = iterations_s
    known = finetune_s is not None and evaluate_s is not None and whole is not None
    return {
        "iterations": len(history), "candidates": len(cands), "total_s": whole, "iterations_s": iterations_s,
        "finetune_s": finetune_s, "evaluate_s": evaluate_s,
        "framework_s": whole - finetune_s - evaluate_s if known else None,
        "plan_s": total(history, "plan_s"), "save_s": total(history, "save_s"),
        "surgery_s": candidates_s - finetune_s - evaluate_s if known and candidates_s is not None else None,
        "outside_s": whole - iterations_s if whole is not None and iterations_s is not None else None,
    }


def run_job(job: Job) -> dict[str, Any]:
    """Run (or read back) one method on one base / budget / seed and measure what it produced."""
    print(f"== {time.strftime('%H:%M:%S')} {job.model} budget {job.budget} seed {job.seed}: {job.method}", flush=True)
    outcome = METHODS[job.method](job)
    record = {"model": job.model, "budget": job.budget, "seed": job.seed, "method": job.method,
              "search_s": outcome.search_s, "note": outcome.note, "folder": str(job.folder),
              "final": str(outcome.final), "before": figures(outcome.pruned, job.data) if outcome.pruned else None,
              "after": figures(outcome.final, job.data)}
    if job.method == "netadapt":
        record["cost"] = netadapt_cost(job.folder / "search", outcome.search_s)
        record["search_s"] = record["cost"]["total_s"]
    return record


# -- the report ---------------------------------------------------------------------------------


def pct(v: float) -> str:
    """0.9123 -> '91.23 %'."""
    return f"{100 * v:.2f} %"


def accuracy_cell(values: list[float]) -> str:
    """``91.23 %`` for one seed, ``91.23 % (90.80-91.50)``: mean (min-max) for several."""
    if not values:
        return "-"
    mean = pct(statistics.fmean(values))
    return mean if len(values) == 1 else f"{mean} ({100 * min(values):.2f}-{100 * max(values):.2f})"


def mean_of(runs: list[dict], get: Callable[[dict], float | None]) -> float | None:
    """Mean of a figure over seeds (None when missing)."""
    values = [v for v in map(get, runs) if v is not None]
    return statistics.fmean(values) if values else None


def lat(figs: dict[str, Any], key: str) -> float:
    """Median latency in ms of ``platform@batch``."""
    return figs["latency"][key]["median_ms"]


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def group_runs(records: list[dict], model: str) -> list[tuple[float, str, list[dict]]]:
    """(budget, method, runs over seeds) of one base model, budgets descending, methods in the usual order."""
    keys = sorted({(r["budget"], r["method"]) for r in records if r["model"] == model},
                  key=lambda k: (-k[0], METHODS_ORDER.index(k[1])))
    mine = [r for r in records if r["model"] == model]
    return [(b, m, [r for r in mine if (r["budget"], r["method"]) == (b, m)]) for b, m in keys]


def latency_cells(runs: list[dict]) -> list[str]:
    """Mean median latencies (ms) on every platform and batch."""
    return [f"{mean_of(runs, lambda r, k=k: lat(r['after'], k)):.3f}" for k in latency_keys()]


def latency_keys() -> list[str]:
    """``torch-cpu@1`` ... in table order."""
    return [f"{p}@{b}" for p in LATENCY_PLATFORMS for b in LATENCY_BATCHES]


def size_cells(runs: list[dict], base: dict) -> list[str]:
    """Mean MACs, MACs as a share of the base's, and mean parameters of the final networks."""
    macs = mean_of(runs, lambda r: r["after"]["macs"])
    params = mean_of(runs, lambda r: r["after"]["params"])
    return [f"{macs / 1e6:.2f} M", f"{100 * macs / base['macs']:.1f} %", f"{params / 1e6:.3f} M"]


def quality_table(base: dict, slim: dict | None, records: list[dict], model: str) -> str:
    """Table 1: accuracy, size, latency and search time of every method at every budget, after the base rows."""
    header = ["method", "budget", "test acc (fine-tuned)", "test acc (before FT)", "MACs", "MACs % of base", "params",
              *[f"{k.replace('@', ' b')} ms" for k in latency_keys()], "search s"]
    rows = []
    for label, figs in (("base", base), ("base (sparsity, for slimming)", slim)):
        if figs:
            runs = [{"after": figs}]
            rows.append([label, "-", pct(figs["test_accuracy"]), "-", *size_cells(runs, base), *latency_cells(runs),
                         "-"])
    for budget, method, runs in group_runs(records, model):
        before = [r["before"]["test_accuracy"] for r in runs if r["before"]]
        search = mean_of(runs, lambda r: r["search_s"])
        rows.append([method, f"{budget:.0%}", accuracy_cell([r["after"]["test_accuracy"] for r in runs]),
                     accuracy_cell(before), *size_cells(runs, base), *latency_cells(runs),
                     f"{search:.1f}" if search is not None else "(NetAdapt's)"])
    return md_table(header, rows)


def notes_line(records: list[dict], model: str) -> str:
    """What each run adds (NetAdapt's iterations, Torch-Pruning's steps), as one line."""
    notes = [f"{r['method']} {r['budget']:.0%} seed {r['seed']}: {r['note']}" for r in records
             if r["model"] == model and r["note"]]
    return "Runs: " + "; ".join(notes) + "." if notes else ""


def noise_line(bases: dict[str, Any], records: list[dict], model: str) -> str:
    """How far apart one network's latency rounds were (max / min round median - 1), the median over the table."""
    figs = [bases["base"], *([bases["slim"]] if "slim" in bases else []),
            *(r["after"] for r in records if r["model"] == model)]
    cells = []
    for k in latency_keys():
        spreads = [max(m) / min(m) - 1 for m in (f["latency"][k]["round_medians_ms"] for f in figs)]
        cells.append(f"{k.replace('@', ' b')} {statistics.median(spreads):.0%}")
    return ("Latency noise (one network's rounds: slowest / fastest round median - 1, median over this table): "
            + ", ".join(cells) + ".")


def speedup_table(base: dict, records: list[dict], model: str) -> str:
    """Table 2: measured speed-up over the base on every platform and batch, next to the MACs ratio (the ideal)."""
    header = ["method", "budget", "MACs speed-up (ideal)",
              *[f"{k.replace('@', ' b')} speed-up" for k in latency_keys()]]
    rows = []
    for budget, method, runs in group_runs(records, model):
        ideal = base["macs"] / mean_of(runs, lambda r: r["after"]["macs"])
        real = [lat(base, k) / mean_of(runs, lambda r, k=k: lat(r["after"], k)) for k in latency_keys()]
        rows.append([method, f"{budget:.0%}", f"{ideal:.2f}x", *[f"{v:.2f}x" for v in real]])
    return md_table(header, rows)


def cost_table(records: list[dict], model: str) -> str:
    """Table 3: each NetAdapt search's wall time split into short-term fine-tuning, evaluation and the framework."""
    def cell(v: float | None, whole: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f} ({v / whole:.0%})" if whole else f"{v:.1f}"
    header = ["budget", "seed", "iterations", "candidates", "total s", "short-term FT s (%)", "evaluation s (%)",
              "framework s (%)", "of which: planning", "candidate surgery + counting", "saving", "outside iterations"]
    rows = []
    searches = [r for r in records if r["model"] == model and "cost" in r]
    for r in sorted(searches, key=lambda r: (-r["budget"], r["seed"])):
        c, whole = r["cost"], r["cost"]["total_s"]
        rows.append([f"{r['budget']:.0%}", str(r["seed"]), str(c["iterations"]), str(c["candidates"]),
                     "n/a" if whole is None else f"{whole:.1f}",
                     *[cell(c[k], whole) for k in ("finetune_s", "evaluate_s", "framework_s", "plan_s", "surgery_s",
                                                   "save_s", "outside_s")]])
    return md_table(header, rows)


def plot(base: dict, records: list[dict], model: str, title: str, path: Path) -> None:
    """Test accuracy against MACs (% of base) and against torch-cpu batch-1 latency, one series per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    xs = {"MACs (% of base)": lambda f: 100 * f["macs"] / base["macs"],
          "torch-cpu latency, batch 1, 1 thread (ms)": lambda f: lat(f, "torch-cpu@1")}
    for ax, (label, x_of) in zip(axes, xs.items()):
        for method in METHODS_ORDER:
            groups = [(b, runs) for b, m, runs in group_runs(records, model) if m == method]
            if not groups:
                continue
            x = [mean_of(runs, lambda r: x_of(r["after"])) for _, runs in groups]
            accs = [[100 * r["after"]["test_accuracy"] for r in runs] for _, runs in groups]
            y = [statistics.fmean(a) for a in accs]
            err = [[m - min(a) for m, a in zip(y, accs)], [max(a) - m for m, a in zip(y, accs)]]
            ax.errorbar(x, y, yerr=err, marker=MARKERS[METHODS_ORDER.index(method)], capsize=3, label=method)
        ax.plot([x_of(base)], [100 * base["test_accuracy"]], "k*", markersize=12, label="base")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy after fine-tuning (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict[str, Any]:
    """CPU, cores and library versions."""
    from importlib.metadata import version

    from prunekit.latency import cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            **{name: version(name) for name in ("torch", "torchvision", "torch-pruning", "onnxruntime", "prunekit")}}


def command_line() -> str:
    """The command that ran, with the thread setting that shaped its timings."""
    env = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
    return f"{env}python {shlex.join(sys.argv)}"


def settings_lines(s: Settings) -> list[str]:
    """The settings as markdown bullet points."""
    return [
        f"- data: `{s.dataset}`, training subset {s.train_subset or 'all'}, validation split {s.val_size:g}, "
        f"test subset {s.test_subset or 'all'}" + (f" (**{s.dataset_note}**)" if s.dataset_note else ""),
        f"- models: {', '.join(s.model_label(m) for m in s.models)}; budgets (share of base MACs): "
        f"{', '.join(f'{b:g}' for b in s.budgets)}; seeds: {', '.join(map(str, s.seeds))}; "
        f"methods: {', '.join(s.methods)}",
        f"- base: the zoo's recipe (SGD Nesterov 0.9, lr 0.05, batch 64, cosine, weight decay 5e-4), "
        f"{s.base_epochs:g} epochs, seed 0; the slimming base the same with `--sparsity {s.sparsity:g}`",
        f"- long-term fine-tuning, every method: {s.finetune_epochs:g} epochs, lr {s.finetune_lr:g}, cosine, "
        f"same seed as the pruning, no sparsity; rethinking trains from scratch with the base recipe for "
        f"{s.base_epochs + s.finetune_epochs:g} epochs",
        f"- NetAdapt: MACs, {s.short_term_iters} short-term batches, init reduction {s.init_reduction_ratio:g}, "
        f"decay {s.reduction_decay:g}, channel step {s.min_channels_step}, criterion l2",
        "- Torch-Pruning's `MagnitudePruner` (`MagnitudeImportance(p=2)` or `TaylorImportance()`): global "
        f"ranking, classifier ignored, pruning_ratio 0.9 over {s.tp_steps} iterative steps, stepped until the MACs "
        "meet the budget; Taylor: gradients of "
        f"{s.taylor_batches} training batches of 64 before each step",
        f"- latency: median of `prunekit.latency.measure`, **one thread** on both platforms (torch-cpu and "
        f"onnxruntime-cpu), batch 1 and 32, at least {s.latency_min_time:g} s of timed runs each; a table's "
        f"networks are measured together in {s.latency_rounds} interleaved rounds and each figure is the round "
        "with the lowest median (the machine is shared: other jobs' load inflates single measurements)",
        "- search s: the pruning step's wall time: NetAdapt's whole `prunekit netadapt` command and one-shot's "
        "`prunekit prune` command (both include loading the data and evaluating the result), Torch-Pruning's "
        "pruning loop alone (in this process, data already loaded); rethinking reuses NetAdapt's search",
    ]


def report(s: Settings, results: dict[str, Any]) -> str:
    """The markdown report: when, where, how, then one table group per base model."""
    m = results["machine"]
    lines = [
        f"# Quality at equal budget: NetAdapt and its peers (`{s.profile}` profile)", "",
        f"- date: {results['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores; {m['torch_threads']} torch thread(s) for training and search; "
        f"Python {m['python']}, torch {m['torch']}, torchvision {m['torchvision']}, torch-pruning "
        f"{m['torch-pruning']} (PyPI), onnxruntime {m['onnxruntime']}, prunekit {m['prunekit']}",
        f"- command: `{results['command']}`",
        "- wall time of every invocation on this cache (a cached step is not re-run): "
        + "; ".join(f"{i['date']}: {i['wall_s']:.0f} s" for i in results["invocations"])
        + f"; loading the data once took {results['data_load_s']:.1f} s",
        *settings_lines(s), "",
    ]
    for model in s.models:
        lines += model_section(s, model, results["bases"][model], results["runs"])
    return "\n".join(lines)


def model_section(s: Settings, model: str, bases: dict[str, Any], runs: list[dict]) -> list[str]:
    """One base model's tables and plot, as markdown lines."""
    lines = [f"## {s.model_label(model)} on {s.dataset}", "",
             "Quality at equal budget (test accuracy: mean (min-max) over seeds where several):", "",
             quality_table(bases["base"], bases.get("slim"), runs, model), "", notes_line(runs, model), "",
             "Real speed-up over the base (base latency / pruned latency, one thread) against the MACs ratio:", "",
             speedup_table(bases["base"], runs, model), "", noise_line(bases, runs, model), ""]
    if any(r["model"] == model and "cost" in r for r in runs):
        lines += ["NetAdapt's search cost, from `history.jsonl` (framework = everything but short-term fine-tuning "
                  "and evaluation; % of the search's total):", "", cost_table(runs, model), ""]
    return lines + [f"![{model}]({os.path.relpath(bases['plot'], s.report.parent)})", ""]


# -- main ---------------------------------------------------------------------------------------


def prepare_bases(s: Settings, model: str, data: DataBundle) -> dict[str, Any]:
    """Train (once) the base, and the slimming base when slimming runs; their folders, figures and seconds."""
    base, secs = train_base(s, model, "base", [])
    check_data(base, s)
    out = {"path": str(base), "train_s": secs, "base": figures(base, data)}
    if "slimming" in s.methods:
        slim, slim_secs = train_base(s, model, "base-slimming", ["--sparsity", str(s.sparsity)])
        out.update(slim_path=str(slim), slim_train_s=slim_secs, slim=figures(slim, data))
    return out


def run_model(s: Settings, model: str, data: DataBundle) -> tuple[dict[str, Any], list[dict]]:
    """One base model's table: the bases, every method at every budget and seed, their latency, the plot."""
    bases = prepare_bases(s, model, data)
    root = model_folder(s, model)
    runs = []
    for budget in s.budgets:
        for seed in s.seeds:
            for method in s.methods:
                folder = root / f"budget-{budget:g}" / f"seed-{seed}" / method
                runs.append(run_job(Job(model, method, budget, seed, folder, root / "base", root / "base-slimming",
                                        s, data)))
    figs = [bases["base"], *([bases["slim"]] if "slim" in bases else []), *(r["after"] for r in runs)]
    paths = [bases["path"], *([bases["slim_path"]] if "slim" in bases else []), *(r["final"] for r in runs)]
    measured = latency_session([Path(p) for p in paths], data.input_shape, s, root / "latency.json")
    for f, path in zip(figs, paths):
        f["latency"] = measured[path]
    bases["plot"] = str(s.plots_dir / f"peers-{model}-{s.dataset}-{s.profile}.png")
    plot(bases["base"], runs, model, f"{s.model_label(model)} on {s.dataset} ({s.profile} profile)",
         Path(bases["plot"]))
    return bases, runs


def log_invocation(out: Path, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Append this invocation (date, command, wall time) to ``OUT/invocations.jsonl``; returns them all."""
    path = out / "invocations.jsonl"
    entry = {k: results[k] for k in ("date", "command", "wall_s")}
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> None:
    """Run every method on every base, budget and seed (cached), then write results.json, the report and plots."""
    t0 = time.perf_counter()
    s = resolve_settings(parse_args(argv))
    if s.threads:
        torch.set_num_threads(s.threads)
    s, data, load_s = choose_dataset(s)
    s.out.mkdir(parents=True, exist_ok=True)
    check_cache(s)
    bases, runs = {}, []
    for model in s.models:
        bases[model], model_runs = run_model(s, model, data)
        runs += model_runs
    results = {"date": datetime.now().isoformat(timespec="seconds"), "machine": machine(), "command": command_line(),
               "settings": s.to_dict(), "data_load_s": load_s, "wall_s": time.perf_counter() - t0, "bases": bases,
               "runs": runs}
    results["invocations"] = log_invocation(s.out, results)
    write_json(s.out / "results.json", results)
    s.report.parent.mkdir(parents=True, exist_ok=True)
    s.report.write_text(report(s, results))
    print(f"results: {s.out / 'results.json'}; report: {s.report}; wall time {results['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
