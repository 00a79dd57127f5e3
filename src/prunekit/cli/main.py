"""The ``prunekit`` command: sub-commands, config files, and one-line errors (``--debug`` for tracebacks)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from typing import NoReturn, Sequence

from prunekit import __version__
from prunekit.cli import (
    cmd_config, cmd_eval, cmd_export, cmd_finetune, cmd_history, cmd_latency, cmd_lut, cmd_netadapt, cmd_pick, cmd_prune,
    cmd_quantize, cmd_run, cmd_train,
)
from prunekit.cli.options import apply_config, drop_overridden_alternatives, load_config_file, trust_from_args
from prunekit.errors import PrunekitError
from prunekit.io.output import partial_note

COMMANDS = (cmd_train, cmd_eval, cmd_prune, cmd_finetune, cmd_netadapt, cmd_history, cmd_pick, cmd_run, cmd_export,
            cmd_latency, cmd_lut, cmd_config, cmd_quantize)
"""Each module has NAME, HELP, add_arguments(parser) and run(args) -> int."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (a PrunekitError), not a usage block."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        """Raise the parse error as one clear line."""
        match = re.match(r"argument (\S+?)(?:/\S+)?: invalid choice: (.*?) \(choose from (.*)\)$", message)
        if match:
            flag, value, choices = match.groups()
            message = f"argument {flag}: invalid choice {value}; valid: {choices.replace(chr(39), '')}"
        command = self.prog.split()[-1]
        raise PrunekitError(f"{message} (see prunekit{'' if command == 'prunekit' else ' ' + command} --help)")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and its sub-parsers by name."""
    parser = OneLineParser(prog="prunekit", description="Make trained PyTorch models smaller and faster.")
    parser.add_argument("--version", action="version", version=f"prunekit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers = {}
    for module in COMMANDS:
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        p.add_argument("--config", help="YAML file of option: value (flags given here override it)")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on errors")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
        subparsers[module.NAME] = p
    parser.set_defaults(parser_of=lambda name: build_parser()[1][name])  # prunekit config reads the others
    return parser, subparsers


def _config_path(argv: Sequence[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prunekit`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser, subparsers = build_parser()
    command = next((a for a in argv if a in subparsers), None)
    try:
        config = _config_path(argv)
        if config and command:
            sub = subparsers[command]
            apply_config(sub, load_config_file(config), getattr(sub, "config_aliases", None), f"config file {config}")
        args = parser.parse_args(argv)
        drop_overridden_alternatives(args)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        with trust_from_args(args):
            return int(args._run(args) or 0)
    except BrokenPipeError:  # the reader went away (`prunekit latency ... | head -1`): nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's own flush at exit does not raise again
        return 0
    except KeyboardInterrupt as err:
        hint = {"netadapt": "; finished NetAdapt iterations are saved: continue with --resume",
                "run": "; finished steps (and NetAdapt iterations) are saved: the same command with --resume "
                       "continues"}.get(command, "")
        print(f"prunekit: interrupted{hint}{partial_note(err)}", file=sys.stderr)
        return 130
    except PrunekitError as err:
        if debug:
            traceback.print_exc()
        print(f"prunekit: error: {one_line(str(err))}{partial_note(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # anything unexpected: still one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"prunekit: error: {type(err).__name__}: {one_line(str(err))}{partial_note(err)} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1


def one_line(text: str) -> str:
    """An error message on one line (a library's multi-line message joined, and cut at 500 characters)."""
    joined = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return joined if len(joined) <= 500 else joined[:497] + "..."


if __name__ == "__main__":
    sys.exit(main())
