"""``bench/peers.py``'s profiles, command line and settings, and the data each base model uses."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from prunekit.data import DataBundle
from prunekit.errors import PrunekitError
from prunekit.io import read_description, read_json, write_json
from prunekit.pipeline.context import DataConfig

REPO = Path(__file__).resolve().parent.parent
METHODS_ORDER = ("netadapt", "l1-local", "l1-global", "slimming", "tp-magnitude", "tp-taylor", "rethinking")
PEERS = ("l1-local", "l1-global", "slimming", "tp-magnitude", "tp-taylor")
"""The methods compared with NetAdapt at equal compute: each also gets NetAdapt's search time as fine-tuning."""

_COMMON: dict[str, Any] = dict(dataset="fashion-mnist", model_arg=[], image_size=[], latency_budgets=[], seeds=[0],
                               methods=list(METHODS_ORDER), base_lr=None, base_batch_size=None, augment=None,
                               finetune_lr=0.01, sparsity=1e-4, tp_steps=100, taylor_batches=4)
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {**_COMMON, **dict(
        models=["vgg11", "resnet20"], model_arg=["vgg11:width_mult=0.25", "resnet20:width=8"], budgets=[0.5],
        base_epochs=2.0, finetune_epochs=1.0, train_subset=3000, val_size=500.0, test_subset=2000,
        latency_min_time=0.2, latency_rounds=5)},
    "medium": {**_COMMON, **dict(
        models=["vgg11", "resnet20"], model_arg=["vgg11:width_mult=0.5"], budgets=[0.5, 0.3], base_epochs=3.0,
        finetune_epochs=1.0, train_subset=6000, val_size=1000.0, test_subset=5000, latency_min_time=0.3,
        latency_rounds=3)},
    # The headline of BENCHMARKS.md: all of Fashion-MNIST, full widths, one base recipe (20 epochs, lr 0.1,
    # batch 128, crops and flips), 3 fine-tuning epochs at lr 0.01 for every method (about 10 minutes an
    # epoch for resnet20 on one shared core: the fine-tuning runs alone take days on 2 cores).
    "full": {**_COMMON, **dict(
        models=["resnet20", "vgg11", "mobilenet_v2"], image_size=["mobilenet_v2:32"], budgets=[0.5, 0.3, 0.15],
        latency_budgets=["mobilenet_v2:0.5"], seeds=[0, 1, 2], methods=[m for m in METHODS_ORDER if m != "rethinking"],
        base_epochs=20.0, base_lr=0.1, base_batch_size=128, augment=True, finetune_epochs=3.0, train_subset=None,
        val_size=5000.0, test_subset=None, latency_min_time=0.5, latency_rounds=3)},
}
CACHE_KEYS = ("dataset", "train_subset", "val_size", "test_subset", "augment", "tp_steps", "taylor_batches")
"""Settings that shape cached steps and are not checked elsewhere (the bases' recorded recipe and data are
checked against the settings; the fine-tuning settings name their folders): a cache made with others is refused."""


@dataclass
class Settings:
    """Everything one run uses: the profile's defaults overridden by the flags given."""

    profile: str
    dataset: str
    models: list[str]
    model_arg: list[str]
    image_size: list[str]
    budgets: list[float]
    latency_budgets: list[str]
    methods: list[str]
    seeds: list[int]
    base_epochs: float
    base_lr: float | None
    base_batch_size: int | None
    augment: bool | None
    finetune_epochs: float
    finetune_lr: float
    train_subset: int | None
    val_size: float
    test_subset: int | None
    sparsity: float
    tp_steps: int
    taylor_batches: int
    latency_min_time: float
    latency_rounds: int
    out: Path
    report: Path
    plots_dir: Path
    threads: int | None
    latency: bool = True
    equal_compute: bool = True
    report_only: bool = False
    overwrite: bool = False
    dataset_note: str = ""

    def model_kwargs(self, model: str) -> list[str]:
        """The ``KEY=VALUE`` model arguments given for ``model`` (``--model-arg MODEL:KEY=VALUE``)."""
        return [item.split(":", 1)[1] for item in self.model_arg if item.split(":", 1)[0] == model]

    def model_label(self, model: str) -> str:
        """``vgg11 (width_mult=0.25)``, or the bare name at full width; ``, 32x32`` where resized."""
        details = self.model_kwargs(model) + ([f"{self.image_size_of(model)}x{self.image_size_of(model)}"]
                                              if self.image_size_of(model) else [])
        return f"{model} ({', '.join(details)})" if details else model

    def image_size_of(self, model: str) -> int | None:
        """The input size ``model``'s data is resized to (``--image-size MODEL:N``), None for the dataset's."""
        sizes = dict(item.split(":", 1) for item in self.image_size)
        return int(sizes[model]) if model in sizes else None

    def latency_budgets_of(self, model: str) -> list[float]:
        """Latency budgets (shares of the base's measured latency) of ``model``'s NetAdapt latency runs."""
        return [float(item.split(":", 1)[1]) for item in self.latency_budgets if item.split(":", 1)[0] == model]

    def data_config(self, model: str) -> DataConfig:
        """The data settings every checkpoint of ``model`` records."""
        return DataConfig(dataset=self.dataset, val_size=self.val_size, train_subset=self.train_subset,
                          test_subset=self.test_subset, augment=self.augment, image_size=self.image_size_of(model))

    def data_flags(self, model: str) -> list[str]:
        """The same data settings as ``prunekit`` flags."""
        flags = ["--dataset", self.dataset, "--val-size", f"{self.val_size:g}"]
        for flag, value in (("--train-subset", self.train_subset), ("--test-subset", self.test_subset),
                            ("--image-size", self.image_size_of(model))):
            flags += [flag, str(value)] if value else []
        return flags + ({True: ["--augment"], False: ["--no-augment"]}.get(self.augment, []))

    def base_flags(self) -> list[str]:
        """The base recipe's ``prunekit train`` flags (seed 0; the zoo's defaults where the profile sets none)."""
        flags = ["--epochs", f"{self.base_epochs:g}"]
        for flag, value in (("--batch-size", self.base_batch_size), ("--lr", self.base_lr)):
            flags += [flag, f"{value:g}"] if value else []
        return flags + ["--seed", "0"]

    @property
    def ft_tag(self) -> str:
        """Names the long-term fine-tuning's folders, so that other fine-tuning settings do not clash."""
        return f"e{self.finetune_epochs:g}-lr{self.finetune_lr:g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def parse_args(argv: list[str] | None = None, doc: str = "") -> argparse.Namespace:
    """The command line; every setting defaults to None so that the profile fills it in."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="default settings (default quick)")
    p.add_argument("--models", nargs="+", help="zoo models to run (default: the profile's)")
    p.add_argument("--model-arg", action="append", metavar="MODEL:KEY=VALUE",
                   help="model argument, e.g. vgg11:width_mult=0.5 (repeatable; overrides the profile's for that key)")
    p.add_argument("--image-size", action="append", metavar="MODEL:N", help="resize MODEL's data to NxN (full: "
                   "mobilenet_v2:32)")
    p.add_argument("--budgets", nargs="+", type=float,
                   help="MACs budgets to run, shares of the base (full: 0.5 0.3 0.15)")
    p.add_argument("--latency-budgets", nargs="*", metavar="MODEL:RATIO",
                   help="NetAdapt latency runs, share of the base's latency (full: mobilenet_v2:0.5; none: no value)")
    p.add_argument("--methods", nargs="+", choices=METHODS_ORDER, help="methods to run (default: the profile's)")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds of pruning and fine-tuning to run (full: 0 1 2)")
    p.add_argument("--dataset", help="dataset (default fashion-mnist; digits when Fashion-MNIST is absent)")
    p.add_argument("--out", help="cache and results folder (default runs/bench/peers/<profile>, from here)")
    for flag, kind, text in (
            ("--base-epochs", float, "base training epochs (full 20)"), ("--base-lr", float, "base learning rate"),
            ("--base-batch-size", int, "base batch size"),
            ("--finetune-epochs", float, "long-term fine-tuning epochs, every method (full 3)"),
            ("--finetune-lr", float, "long-term fine-tuning learning rate (0.01)"),
            ("--train-subset", int, "training samples (quick 3000; 0: all)"),
            ("--val-size", float, "hold-out validation split carved from the training images (full 5000)"),
            ("--test-subset", int, "test samples (quick 2000; 0: all)"),
            ("--sparsity", float, "slimming base's L1 penalty on BN scales (1e-4)"),
            ("--tp-steps", int, "Torch-Pruning's iterative steps, each 0.9/N of the channels (100)"),
            ("--taylor-batches", int, "training batches of gradients before each tp-taylor step (4)"),
            ("--latency-min-time", float, "seconds of timed runs per latency figure"),
            ("--latency-rounds", int, "interleaved latency rounds over a table's networks, lowest median kept"),
            ("--threads", int, "torch threads for in-process work (default: OMP_NUM_THREADS)")):
        p.add_argument(flag, type=kind, help=text)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, help="crops and flips (full: on)")
    p.add_argument("--no-latency", dest="latency", action="store_false",
                   help="skip the latency measurements (intermediate runs: the report leaves latency out)")
    p.add_argument("--no-equal-compute", dest="equal_compute", action="store_false",
                   help="run no equal-compute fine-tuning now (the report shows the cached ones; run them later)")
    p.add_argument("--report-only", action="store_true", help="run nothing: rewrite results.json, the report and "
                   "the plots from the cache (latency is still measured unless --no-latency)")
    p.add_argument("--report", help="markdown report (default bench/results/peers-<profile>.md in the repository)")
    p.add_argument("--plots-dir", help="folder of the PNG plots (default docs/bench in the repository)")
    p.add_argument("--overwrite", action="store_true", help="replace a report or plot that was not written from "
                   "this cache (by default the run stops before any work rather than drop the figures it holds)")
    return p.parse_args(argv)


def merge_items(profile: list[str], given: list[str] | None, key_end: str, what: str) -> list[str]:
    """The profile's ``MODEL:...`` items with those given replacing the ones of the same key (the text before
    ``key_end``: ``MODEL:KEY`` for model arguments, ``MODEL`` for image sizes)."""
    key = lambda item: item.split(key_end, 1)[0]  # noqa: E731
    merged = {key(item): item for item in profile}
    for item in given or []:
        if ":" not in item or key_end not in item:
            raise SystemExit(f"{what} expects MODEL:{'KEY=VALUE' if key_end == '=' else 'N'}, got {item!r}")
        merged[key(item)] = item
    return list(merged.values())


def resolve_settings(a: argparse.Namespace) -> Settings:
    """The profile's defaults, overridden by the flags given (0 for a subset means all the data)."""
    d = dict(PROFILES[a.profile])
    for k, v in vars(a).items():
        if v is not None and k in d and k not in ("model_arg", "image_size"):
            d[k] = v
    d["model_arg"] = merge_items(d["model_arg"], a.model_arg, "=", "--model-arg")
    d["image_size"] = merge_items(d["image_size"], a.image_size, ":", "--image-size")
    for k in ("train_subset", "test_subset"):
        d[k] = d[k] or None
    return Settings(
        profile=a.profile, out=Path(a.out or f"runs/bench/peers/{a.profile}"),
        report=Path(a.report or REPO / f"bench/results/peers-{a.profile}.md"),
        plots_dir=Path(a.plots_dir or REPO / "docs/bench"), threads=a.threads, latency=a.latency,
        equal_compute=a.equal_compute, report_only=a.report_only, overwrite=a.overwrite, **d,
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


def check_base(s: Settings, model: str, base: Path, sparsity: float) -> None:
    """A cached base must record this run's data settings and base recipe (bases may be trained outside)."""
    meta = read_description(base)["meta"]
    if DataConfig.recorded(meta.get("data", {})) != s.data_config(model):
        raise SystemExit(f"{base} records other data settings than this run ({meta.get('data')}): choose another "
                         f"--out or the same data flags")
    train, want = meta.get("train", {}), {"epochs": s.base_epochs, "lr": s.base_lr, "batch_size": s.base_batch_size,
                                          "seed": 0, "sparsity": sparsity}
    differ = [f"{k} {train.get(k)} (want {v})" for k, v in want.items() if v is not None and train.get(k) != v]
    if differ:
        raise SystemExit(f"{base} was trained with another recipe ({', '.join(differ)}): choose another --out")


def with_available_dataset(s: Settings) -> Settings:
    """``s``, or ``s`` on ``digits`` with a note when Fashion-MNIST is not on this machine."""
    try:
        load_data(s.data_config(s.models[0]))
        return s
    except PrunekitError as err:
        if s.dataset != "fashion-mnist":
            raise SystemExit(f"cannot load {s.dataset}: {err}") from None
        note = "Fashion-MNIST was not found on this machine: fell back to `digits`"
        print(f"NOTE: {note} ({err})")
        return replace(s, dataset="digits", dataset_note=note)


def load_data(cfg: DataConfig) -> DataBundle:
    """The data of ``cfg``, loaded once per process."""
    return _load(json.dumps(cfg.to_dict(), sort_keys=True))


@cache
def _load(key: str) -> DataBundle:
    return DataConfig.from_dict(json.loads(key)).load()
