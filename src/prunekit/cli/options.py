"""Command-line options derived from prunekit's typed settings, and YAML config files checked against them.

Every flag of a setting comes from its dataclass field (``prunekit.settings.setting``): name,
type, help, default and choices are written once, in the settings class.
"""

from __future__ import annotations

import argparse
import difflib
import json
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from prunekit.algorithms.netadapt import TINYNN_ALIASES, NetAdaptConfig
from prunekit.errors import PrunekitError, first_line
from prunekit.executors import ExecutorConfig, make_executor
from prunekit.latency.table import check_table_path
from prunekit.pipeline.context import DataConfig
from prunekit.settings import (Settings, check_finite, choices_of, convert, default_of, flag_of, settings_fields,
                               strip_optional)
from prunekit.training.config import TrainConfig

FIELDS_ATTR = "_prunekit_fields"
"""On a parser: dest -> the field's type, for checking YAML values."""
SETTINGS_ATTR = "_prunekit_settings"
"""On a parser: dest -> [(settings class, field, default)] of every settings field the flag sets (for writing
a full config file: ``prunekit config``)."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (a batch size, a thread count, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


_flag = flag_of


def _help(f, default: Any) -> str:
    text = f.metadata.get("help", "")
    if default not in (None, [], False):
        text += f" (default {default})"
    return text.replace("%", "%%")


def add_settings(parser: argparse.ArgumentParser, cls: type[Settings], title: str, *, skip: tuple[str, ...] = (),
                 defaults: dict[str, Any] | None = None) -> argparse._ArgumentGroup:
    """Add a flag for every field of ``cls`` (nested settings flattened) not already on ``parser``."""
    group = parser.add_argument_group(title)
    known = getattr(parser, FIELDS_ATTR, {})
    setattr(parser, FIELDS_ATTR, known)
    setattr(parser, SETTINGS_ATTR, getattr(parser, SETTINGS_ATTR, {}))
    for f, tp in settings_fields(cls):
        if f.name in skip or not f.metadata.get("cli", True):
            continue
        default = (defaults or {}).get(f.name, default_of(f))
        getattr(parser, SETTINGS_ATTR).setdefault(f.name, []).append((cls, f, default))
        if f.name in known:
            continue
        known[f.name] = tp
        inner, _ = strip_optional(tp)
        kwargs: dict[str, Any] = dict(dest=f.name, default=None, help=_help(f, default))
        if inner is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            if typing.get_origin(inner) in (list, tuple):
                kwargs["nargs"] = "+"
                inner = (typing.get_args(inner) or (str,))[0]
            kwargs["type"] = inner if inner in (int, float, str) else str
            if f.metadata.get("metavar"):
                kwargs["metavar"] = f.metadata["metavar"]
            choices = choices_of(f)
            if choices is not None:
                kwargs["choices"] = choices
                kwargs["metavar"] = kwargs.get("metavar") or "{" + ",".join(map(str, choices)) + "}"
        group.add_argument(_flag(f), **kwargs)
    return group


def given(cls: type[Settings], args: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``cls`` set on the command line (or by a config file), flat (nested settings by their own names)."""
    return {f.name: getattr(args, f.name) for f, _ in settings_fields(cls) if getattr(args, f.name, None) is not None}


def settings_from_args(cls: type[Settings], args: argparse.Namespace, base: Settings | dict | None = None,
                       **defaults: Any) -> Settings:
    """``cls`` built from ``defaults``, then ``base`` (e.g. what a checkpoint recorded), then the flags given."""
    d: dict[str, Any] = dict(defaults)
    if base is not None:
        d.update(base.to_dict() if isinstance(base, Settings) else base)
    flat = given(cls, args)
    nested = {f.name for f in cls.__dataclass_fields__.values() if isinstance(default_of(f), Settings)}
    for name in nested:
        inner = dict(d.get(name) or {})
        inner.update({k: v for k, v in flat.items() if k in type(default_of(cls.__dataclass_fields__[name])).field_names()})
        d[name] = inner
    top = set(cls.field_names())
    d.update({k: v for k, v in flat.items() if k in top})
    return cls.from_dict(d, source="options")


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The data options (DataConfig's fields)."""
    add_settings(p, DataConfig, "data")


def add_train_args(p: argparse.ArgumentParser, defaults: dict[str, Any] | None = None) -> None:
    """The training recipe's options (TrainConfig's fields)."""
    add_settings(p, TrainConfig, "training", defaults=defaults)


def data_config(args: argparse.Namespace, base: DataConfig | None = None) -> DataConfig:
    """DataConfig from the parsed options, on top of ``base`` (e.g. what a checkpoint recorded)."""
    return settings_from_args(DataConfig, args, base)  # type: ignore[return-value]


def train_config(args: argparse.Namespace, base: TrainConfig | None = None, **defaults: Any) -> TrainConfig:
    """TrainConfig from the parsed options, on top of ``base`` and ``defaults``."""
    merged = {**(base.to_dict() if base else {}), **defaults}
    return settings_from_args(TrainConfig, args, merged)  # type: ignore[return-value]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A flat YAML mapping of option names (dashes or underscores) to values."""
    path = Path(path)
    if not path.is_file():
        raise PrunekitError(f"config file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise PrunekitError(f"config file {path} is not valid YAML: {first_line(err, None)}") from None
    if not isinstance(doc, dict):
        raise PrunekitError(f"config file {path} must be a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in doc.items()}


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    actions = {}
    for a in parser._actions:
        if a.dest in ("help", "config", "debug"):
            continue
        actions[a.dest] = a
        for flag in a.option_strings:  # a key may also be the flag's name, e.g. method for --method
            if flag.startswith("--"):
                actions[flag[2:].replace("-", "_")] = a
    return actions


def _check_value(parser: argparse.ArgumentParser, action: argparse.Action, key: str, value: Any, where: str) -> Any:
    """A YAML value checked like the flag would check it (types from the settings field when there is one)."""
    typed = getattr(parser, FIELDS_ATTR, {}).get(action.dest)
    if typed is not None:
        if isinstance(value, str) and strip_optional(typed)[0] is float:
            # YAML 1.1 reads 1e-9 (no dot) as a string: a number setting takes it as its flag does (--epochs 1e-9)
            try:
                value = float(value)
            except ValueError:
                pass  # left for convert's one-line error
        value = convert(value, typed, f"{where}: key {key!r}")
        check_finite(value, f"{where}: key {key!r}")
    elif isinstance(action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction)):
        value = convert(value, bool, f"{where}: key {key!r}")
    elif isinstance(value, (list, dict)) and isinstance(action, argparse._StoreAction) and action.nargs in (None, "?"):
        kind = "a list" if isinstance(value, list) else "a mapping"
        raise PrunekitError(f"{where}: key {key!r} takes one value, got {kind} ({value!r}); "
                            f"write it as {key}: VALUE")
    elif value is not None and action.type is not None and not isinstance(value, (list, dict)):
        try:
            value = action.type(value)
        except (TypeError, ValueError):
            raise PrunekitError(f"{where}: key {key!r}: {value!r} is not a valid value") from None
    if isinstance(action, argparse._AppendAction) and isinstance(value, dict):  # model_arg: {width: 8}
        value = [f"{k}={json.dumps(v)}" for k, v in value.items()]  # "8" stays a string, 8 a number
    if (action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)) and value is not None \
            and not isinstance(value, list):
        value = [value]  # model_arg: width=8, exclude: fc: one item
    if action.choices is not None and value is not None:
        for v in value if isinstance(value, list) else [value]:
            if v not in action.choices:
                raise PrunekitError(f"{where}: key {key!r}: {v!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def _key_hint(key: str, value: Any, known: Iterable[str]) -> str:
    """What to do about an unknown key: the close spellings, or flattening a section, or the list of valid keys."""
    known = sorted(known)
    if isinstance(value, dict) and value and all(str(k) in known for k in value):
        return f"its keys ({', '.join(map(str, value))}) are options themselves: write them at the top level"
    close = difflib.get_close_matches(str(key), known, n=3, cutoff=0.75)
    if close:
        return "did you mean " + " or ".join(map(repr, close)) + "?"
    return f"valid keys: {', '.join(known)}"


def apply_config(parser: argparse.ArgumentParser, config: dict[str, Any], aliases: dict[str, str] | None = None,
                 where: str = "config file") -> None:
    """Make the config's values the parser's defaults, so flags given on the command line override them."""
    actions = _actions(parser)
    values = {}
    for key, value in config.items():
        name = (aliases or {}).get(key, key)
        if name not in actions:
            raise PrunekitError(f"{where}: unknown config key {key!r}; {_key_hint(key, value, actions)}")
        action = actions[name]
        values[action.dest] = _check_value(parser, action, key, value, where)
    for action in parser._actions:
        if action.dest in values:
            action.required = False
    parser.set_defaults(**values, _from_config=dict(values))


ALTERNATIVES = (("ratio", "percent", "budget", "budget_ratio"),)
"""Options of which one is given: one of them on the command line replaces the config file's (flags override it)."""


def drop_overridden_alternatives(args: argparse.Namespace) -> None:
    """Clear a config file's value of an option whose alternative was given on the command line (a file with
    ``ratio: 0.5`` and ``--budget-ratio 0.3``: the budget ratio, as the flag asks)."""
    from_config = getattr(args, "_from_config", {})
    for group in ALTERNATIVES:
        present = [k for k in group if getattr(args, k, None) is not None]
        flagged = [k for k in present if k not in from_config or from_config[k] != getattr(args, k)]
        if flagged:
            for k in present:
                if k not in flagged:
                    setattr(args, k, None)


def add_model_args(p: argparse.ArgumentParser) -> None:
    """--model and --model-arg."""
    p.add_argument("--model", help="zoo name, torchvision:NAME, or package.module:function")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument (JSON value), e.g. width_mult=0.5; repeatable")


RESERVED_MODEL_ARGS = {
    "weights": "load your own trained weights with --weights FILE (prunekit downloads no pretrained weights)",
    "num_classes": "the class count comes from the dataset (--dataset, --data-dir)",
    "in_channels": "the input channels come from the dataset (--dataset, --data-dir)",
    "input_size": "the input size comes from the dataset (--image-size)",
}
"""Model arguments prunekit sets itself: given as --model-arg they are refused, saying which option sets them."""


def parse_model_args(items: list[str]) -> dict:
    """['width_mult=0.5', 'hidden=128'] -> {'width_mult': 0.5, 'hidden': 128}."""
    out = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise PrunekitError(f"--model-arg expects KEY=VALUE, got {item!r}")
        if key.strip() in RESERVED_MODEL_ARGS:
            raise PrunekitError(f"--model-arg {key.strip()}= is not a model argument: {RESERVED_MODEL_ARGS[key.strip()]}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_netadapt_arguments(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """NetAdapt's options (its settings' fields) and the executor's (shared with ``prunekit run``)."""
    add_settings(p, NetAdaptConfig, "NetAdapt", skip=skip)
    add_settings(p, ExecutorConfig, "executor")
    p.add_argument("--work-dir", help="working folder (history, every iteration's model, resume)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue the interrupted run in --work-dir (run: finished steps are kept)")
    p.config_aliases = TINYNN_ALIASES


def netadapt_options(args: argparse.Namespace) -> dict:
    """NetAdapt's settings that were given (the rest keep their defaults, or a resumed run's)."""
    opts = given(NetAdaptConfig, args)
    if opts.get("lut"):
        opts["lut"] = str(check_table_path(opts["lut"], "--lut").resolve())  # resuming from another folder still finds it
    return opts


def executor_from_args(args: argparse.Namespace):
    """The executor the options ask for (checked before any work)."""
    return make_executor(settings_from_args(ExecutorConfig, args))


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


def user_functions_given(args: argparse.Namespace, from_config: dict[str, Any], trust_all: bool) -> list[str]:
    """The --loss / --metric ``package.module:function`` names given on the command line (allowed to be imported);
    one named only by a --config file is refused unless --trust-factory is given."""
    from prunekit.training.tasks import is_user_function

    names = []
    for key in ("loss", "metric"):
        value = getattr(args, key, None)
        if not is_user_function(value):
            continue
        if from_config.get(key) == value and not trust_all:
            raise PrunekitError(f"config file {args.config} names the {key} {value}, code of yours; a config file is "
                                f"data, not code: give --{key} {value} on the command line instead (and remove it from "
                                "the file), or pass --trust-factory")
        names.append(value)
    return names


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
    if from_config.get("measure_command") is not None:
        raise PrunekitError(f"config file {args.config} names the measure command {from_config['measure_command']!r}, "
                            "a shell command; a config file is data, not code: give --measure-command on the command "
                            "line instead (and remove it from the file)")
    names = list(getattr(args, "model_factory", None) or [])
    trust_all = bool(getattr(args, "trust_factory", None))
    model = getattr(args, "model", None)
    if isinstance(model, str) and is_user_factory(model):
        if from_config.get("model") == model:
            check_trusted(model, f"config file {args.config}", names, trust_all, kind="a config file")
        names.append(model)
    names += user_functions_given(args, from_config, trust_all)
    with trusting(names, trust_all):
        yield
