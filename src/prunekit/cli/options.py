"""Command-line options shared by several commands, and YAML config files."""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from prunekit.errors import PrunekitError
from prunekit.pipeline.context import DataConfig
from prunekit.training.config import OPTIMIZERS, SCHEDULERS, TrainConfig


def add_data_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    """--dataset, --data-dir, --download and the split options."""
    g = p.add_argument_group("data")
    g.add_argument("--dataset", required=required, help="dataset name (digits, fashion-mnist, mnist, cifar10, cifar100, folder, json)")
    g.add_argument("--data-dir", help="where the dataset's files are")
    g.add_argument("--download", action="store_true", default=None, help="allow downloading the dataset (needs internet)")
    g.add_argument("--val-size", type=float, help="hold-out validation split: fraction (<1) or count of training samples (default 0.1)")
    g.add_argument("--split-seed", type=int, help="seed of the validation split (default 0)")
    g.add_argument("--train-subset", type=int, help="train on a fixed random subset of this many samples")
    g.add_argument("--test-subset", type=int, help="test on a fixed random subset of this many samples")
    g.add_argument("--image-size", type=int, help="resize every image to N x N pixels (e.g. 32 for CIFAR-sized models)")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random 4-pixel crops and horizontal flips while training (default: on for CIFAR only)")


def add_trust_args(p: argparse.ArgumentParser) -> None:
    """--model-factory and --trust-factory: which ``package.module:function`` a checkpoint may import."""
    g = p.add_argument_group("trust (a checkpoint folder is data, not code)")
    g.add_argument("--model-factory", action="append", metavar="PKG.MODULE:FUNCTION",
                   help="let checkpoints whose model.json names this factory of yours import and call it; repeatable")
    g.add_argument("--trust-factory", action="store_true", default=None,
                   help="let checkpoints import any package.module:function they name (runs their code: only for "
                        "folders you trust)")


def add_weights_arg(p: argparse.ArgumentParser) -> None:
    """--weights: the user's own trained weights for a model built by name."""
    p.add_argument("--weights", metavar="FILE",
                   help="your trained weights for --model: a .safetensors file or a state dict saved with torch.save "
                        "(read with weights_only=True: no pickled code)")


@contextmanager
def trust_from_args(args: argparse.Namespace) -> Iterator[None]:
    """Within the block, checkpoints may import the factories the command line names (--model-factory, and a
    factory given as --model on the command line itself); a factory named only in a --config file must be
    allowed like one named in a checkpoint."""
    from prunekit.models import is_user_factory, trusting
    from prunekit.models.trust import check_trusted

    from_config = getattr(args, "_from_config", {})
    for key in ("model_factory", "trust_factory"):
        if key in from_config:
            raise PrunekitError(f"config file {args.config}: {key} may only be given on the command line "
                                f"(--{key.replace('_', '-')}), never by a file")
    names = list(getattr(args, "model_factory", None) or [])
    trust_all = bool(getattr(args, "trust_factory", None))
    model = getattr(args, "model", None)
    if isinstance(model, str) and is_user_factory(model):
        if from_config.get("model") == model:
            check_trusted(model, f"config file {args.config}", names, trust_all, kind="a config file")
        names.append(model)
    with trusting(names, trust_all):
        yield


def add_train_args(p: argparse.ArgumentParser, epochs_help: str = "training epochs") -> None:
    """The training recipe's options."""
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=float, help=f"{epochs_help} (fractions allowed)")
    g.add_argument("--lr", type=float, help="learning rate (default 0.05)")
    g.add_argument("--batch-size", type=int, help="batch size (default 64)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd, momentum (Nesterov, 0.9) or adam (default momentum)")
    g.add_argument("--weight-decay", type=float, help="weight decay (default 5e-4)")
    g.add_argument("--scheduler", choices=SCHEDULERS, help="learning-rate schedule (default cosine)")
    g.add_argument("--device", help="cpu or cuda (default cpu)")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--sparsity", type=float, help="L1 penalty on BatchNorm scales, for network slimming (default 0)")


def data_config(args: argparse.Namespace, base: DataConfig | None = None) -> DataConfig:
    """DataConfig from the parsed options, on top of ``base`` (e.g. what a checkpoint recorded)."""
    d = (base or DataConfig()).to_dict()
    for key in d:
        value = getattr(args, key, None)
        if value is not None:
            d[key] = value
    return DataConfig.from_dict(d)


def train_config(args: argparse.Namespace, base: TrainConfig | None = None, **defaults: Any) -> TrainConfig:
    """TrainConfig from the parsed options, on top of ``base`` and ``defaults``."""
    d = {**(base or TrainConfig()).to_dict(), **defaults}
    for key in d:
        value = getattr(args, key, None)
        if value is not None:
            d[key] = value
    return TrainConfig.from_dict(d)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A flat YAML mapping of option names (dashes or underscores) to values."""
    path = Path(path)
    if not path.is_file():
        raise PrunekitError(f"config file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise PrunekitError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(doc, dict):
        raise PrunekitError(f"config file {path} must be a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in doc.items()}


def apply_config(parser: argparse.ArgumentParser, config: dict[str, Any], aliases: dict[str, str] | None = None) -> None:
    """Make the config's values the parser's defaults, so flags given on the command line override them."""
    actions = {}
    for a in parser._actions:
        if a.dest in ("help", "config", "debug"):
            continue
        actions[a.dest] = a
        for flag in a.option_strings:  # a key may also be the flag's name, e.g. method for --method
            if flag.startswith("--"):
                actions[flag[2:].replace("-", "_")] = a
    values = {}
    for key, value in config.items():
        key = (aliases or {}).get(key, key)
        if key not in actions:
            raise PrunekitError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(actions))}")
        action = actions[key]
        key = action.dest
        if action.type is not None and value is not None and not isinstance(value, (list, dict)):
            try:
                value = action.type(value)
            except (TypeError, ValueError):
                raise PrunekitError(f"config key {key!r}: {value!r} is not a valid value") from None
        if action.choices is not None and value is not None and value not in action.choices:
            raise PrunekitError(f"config key {key!r}: {value!r} is not one of {', '.join(map(str, action.choices))}")
        values[key] = value
    for action in parser._actions:
        if action.dest in values:
            action.required = False
    for key, value in list(values.items()):
        if isinstance(value, str) and any(a.dest == key and a.nargs in ("+", "*") for a in parser._actions):
            values[key] = [value]
    parser.set_defaults(**values, _from_config=dict(values))
