"""``prunekit config``: write a full YAML config file of a command's options (TinyNeuralNetwork's "generate a
config file" step): every option with its default and its help text as a comment above it, grouped as in
``--help``.

Everything is read from the command's parser and the settings fields behind its flags
(``prunekit.settings``), so a new setting appears here by itself. The options a command needs but has
no default for get a runnable example value (``EXAMPLES``) and a note to replace it, so the written
file runs unchanged::

    prunekit config --method netadapt > my.yaml
    prunekit run --config my.yaml
"""

from __future__ import annotations

import argparse
import textwrap
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import yaml

from prunekit import __version__
from prunekit.cli.options import (
    SETTINGS_ATTR, _actions, add_netadapt_arguments, add_settings, apply_config, load_config_file,
)
from prunekit.errors import PrunekitError
from prunekit.io.atomic import atomic_write
from prunekit.io.output import check_file_output
from prunekit.settings import Settings, strip_optional

NAME = "config"
HELP = "write every option of a command (default: run) with its default and help as a YAML config file"

EXAMPLES: dict[str, dict[str, Any]] = {
    "run": {"model": "lenet", "out": "runs/my-run", "percent": 0.5},
    "netadapt": {"checkpoint": "runs/my-run/base", "work_dir": "runs/my-netadapt", "budget_ratio": 0.5},
    "train": {"model": "lenet", "out": "runs/my-model"},
}
"""Per command: runnable example values of the options it needs but has no default for (digits is the default
dataset, always available). They are written with a note to replace them."""
NOT_OPTIONS = ("help", "config", "debug", "model_factory", "trust_factory")
"""Parser entries that are not config keys (--model-factory and --trust-factory may only be given on the
command line, never by a file)."""
WIDTH = 100


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit config``."""
    p.add_argument("--command", default="run", choices=list(EXAMPLES), help="the command whose options are written "
                   "(default run)")
    p.add_argument("--method", help="run: netadapt, or a one-shot criterion (default l2): the file holds the options "
                                    "that apply to it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="values",
                   help="write this value instead of the default (YAML syntax, e.g. epochs=2, exclude=[fc3]); repeatable")
    p.add_argument("--from", dest="from_file", metavar="FILE", help="start from this YAML config file's values (e.g. "
                   "one using TinyNeuralNetwork's names); --set wins over it")
    p.add_argument("--output", "-o", help="write the file here (default: print it)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


ParserOf = Callable[[str], argparse.ArgumentParser]
"""Command name -> a fresh parser of ``prunekit COMMAND`` (``prunekit.cli.main`` passes it in ``args.parser_of``)."""


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions}


def left_out(command: str, method: str | None) -> set[str]:
    """Options of ``command`` that do not apply to ``method``: for ``run``, NetAdapt's own options for a one-shot
    criterion, the one-shot settings NetAdapt ignores for ``netadapt``."""
    if command != "run":
        return set()
    from prunekit.algorithms.oneshot import PruneConfig

    netadapt, oneshot = argparse.ArgumentParser(add_help=False), argparse.ArgumentParser(add_help=False)
    add_netadapt_arguments(netadapt)
    add_settings(oneshot, PruneConfig, "one-shot", skip=("criterion",))  # run's --method is the criterion
    if method == "netadapt":
        return _dests(oneshot) - _dests(netadapt)
    return _dests(netadapt) - _dests(oneshot)


def parse_values(items: list[str], parser: argparse.ArgumentParser, base: dict[str, Any] | None = None,
                 where: str = "--set") -> dict[str, Any]:
    """``base`` (e.g. a config file's values) and ``--set KEY=VALUE`` items over it as {option dest: value},
    checked like a config file's keys (other tools' names for NetAdapt's settings are accepted)."""
    raw = {str(k).replace("-", "_"): v for k, v in (base or {}).items()}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise PrunekitError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            raw[key.strip().replace("-", "_")] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise PrunekitError(f"--set {item!r}: the value is not valid YAML") from None
    aliases = getattr(parser, "config_aliases", None) or {}
    apply_config(parser, raw, aliases, where=where)  # one clear error for an unknown key or a bad value
    dests = [_actions(parser)[aliases.get(k, k)].dest for k in raw]
    return {d: parser.get_default(d) for d in dests}


def _value(action: argparse.Action, entries: list, example: dict[str, Any], given: dict[str, Any]) -> tuple[Any, list[str]]:
    """The value written for ``action`` and any notes about it."""
    dest = action.dest
    if dest in given:
        return given[dest], []
    if dest in example:
        return example[dest], ["REQUIRED (no default): an example value, replace it"]
    if entries:
        defaults = [default for _, _, default in entries]
        if any(d != defaults[0] for d in defaults):
            owners = ", ".join(f"{cls.__name__}.{f.name} ({d})" for cls, f, d in entries)
            return None, [f"null: each keeps its own default: {owners}"]
        return defaults[0], []
    if action.default is None and isinstance(action, argparse._StoreTrueAction):
        return False, []
    return action.default, []


def _comment(action: argparse.Action, entries: list, notes: list[str]) -> list[str]:
    """The comment lines above a key: its help, its choices, what else the key sets, notes."""
    if entries:
        text = entries[0][1].metadata.get("help", "")
        also = [f"{cls.__name__}.{f.name}: {f.metadata.get('help', '')}" for cls, f, _ in entries[1:]
                if f.metadata.get("help", "") != text]
        if also:
            text += " (also " + "; ".join(also) + ")"
    else:
        text = (action.help or "").replace("%%", "%")
    if action.choices is not None:
        text += f" [one of: {', '.join(map(str, action.choices))}]"
    lines = textwrap.wrap(text, WIDTH - 2, break_on_hyphens=False) if text else []
    return ["# " + line for line in lines + notes]


def _yaml(value: Any) -> str:
    """One YAML value on one line (flow style)."""
    return yaml.safe_dump([value], default_flow_style=True, width=10**6).strip()[1:-1]


def _nested_title(cls: type, name: str) -> str | None:
    """The help of the nested settings field of ``cls`` that holds ``name`` (e.g. NetAdapt's latency settings)."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        inner = strip_optional(hints[f.name])[0]
        if isinstance(inner, type) and issubclass(inner, Settings) and name in inner.field_names():
            return f.metadata.get("help") or f.name
    return None


def _group_lines(parser: argparse.ArgumentParser, group, skipped: set[str], example: dict[str, Any],
                 given: dict[str, Any]) -> list[str]:
    """The keys of one argument group (with a sub-heading before nested settings)."""
    settings = getattr(parser, SETTINGS_ATTR, {})
    lines: list[str] = []
    section = None
    for action in group._group_actions:
        if action.dest in NOT_OPTIONS or action.dest in skipped or not action.option_strings:
            continue
        entries = settings.get(action.dest, [])
        nested = _nested_title(entries[0][0], action.dest) if entries else None
        if nested != section and nested is not None:
            lines += ["", f"# -- {nested} --"]
        section = nested
        value, notes = _value(action, entries, example, given)
        lines += ["", *_comment(action, entries, notes), f"{action.dest}: {_yaml(value)}"]
    return lines


def render(parser_of: ParserOf, command: str = "run", method: str | None = None,
           values: list[str] | None = None, base: str | Path | None = None) -> str:
    """The config file's text for ``prunekit COMMAND`` (``method``: run's --method; ``values``: KEY=VALUE items;
    ``base``: a YAML config file whose values are written instead of the defaults)."""
    parser = parser_of(command)
    if method is not None and command != "run":
        raise PrunekitError("--method is an option of prunekit run only (use --command run)")
    method_action = next(a for a in parser._actions if a.dest == "method") if command == "run" else None
    if method_action is not None and method is not None and method not in method_action.choices:
        raise PrunekitError(f"--method: unknown method {method!r}; valid: {', '.join(method_action.choices)}")
    where = f"--from {base} / --set" if base else "--set"
    given = parse_values(values or [], parser_of(command), load_config_file(base) if base else None, where)
    if method is not None:
        given["method"] = method
    skipped = left_out(command, given.get("method"))
    invocation = f"prunekit {command}" + (f" --method {method}" if method else "")
    lines = [f"# Every option of `{invocation}` with its default; flags given on the command line override it.",
             f"# Written by `prunekit config` (prunekit {__version__}). Use: prunekit {command} --config FILE",
             "# null: not set (the option's own behaviour applies). Keys may also be written with dashes."]
    for group in parser._action_groups:
        body = _group_lines(parser, group, skipped, EXAMPLES.get(command, {}), given)
        if not body:
            continue
        title = f"prunekit {command}" if group.title in ("options", "optional arguments") else group.title
        if any(a.dest in skipped for a in group._group_actions):
            title += " (the options that apply to " + ("NetAdapt)" if given.get("method") == "netadapt" else
                                                       "one-shot pruning)")
        lines += ["", f"# ==== {title} ===="] + body
    text = "\n".join(lines) + "\n"
    apply_config(parser_of(command), yaml.safe_load(text), where="prunekit config (internal check)")
    return text


def run(args: argparse.Namespace) -> int:
    """Print (or write) the config file."""
    if args.output:
        check_file_output(args.output, args.overwrite, "--output")
    text = render(args.parser_of, args.command, args.method, args.values, args.from_file)
    if args.output:
        atomic_write(args.output, lambda tmp: Path(tmp).write_text(text))
    else:
        print(text, end="")
    return 0
