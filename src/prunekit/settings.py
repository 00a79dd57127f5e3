"""Typed settings: each option and its default is defined once, as a dataclass field.

A field made with :func:`setting` carries its help text, choices and aliases; the command line
(``prunekit.cli.options``), YAML files and the Python API all build and check settings from these
fields, so a flag, a YAML key and a keyword argument can never disagree::

    @dataclass
    class TrainConfig(Settings):
        lr: float = setting(0.05, "learning rate")

Checking is strict: an unknown key or a value of the wrong type (``"no"`` for a boolean, ``2.5``
for an integer) is one clear error naming the key and the source it came from. No number setting means
anything by NaN or infinity (and NaN passes every range check: ``nan <= 0`` is false), so every float field
refuses both, naming its flag.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar, Union

from prunekit.errors import PrunekitError

S = TypeVar("S", bound="Settings")
Choices = Union[Sequence[Any], Callable[[], Sequence[Any]], None]


def setting(default: Any = MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
            choices: Choices = None, aliases: Sequence[str] = (), flag: str | None = None, cli: bool = True,
            metavar: str | None = None) -> Any:
    """A dataclass field with the metadata the CLI and the YAML checker use.

    ``choices``: allowed values, or a function returning them (a registry's names, read when the
    parser is built). ``aliases``: other names accepted in YAML files and keyword arguments (e.g.
    TinyNeuralNetwork's). ``flag``: the command-line flag if not ``--field-name``; ``cli=False``
    keeps a field out of the command line.
    """
    meta = {"help": help, "choices": choices, "aliases": tuple(aliases), "flag": flag, "cli": cli, "metavar": metavar}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def flag_of(f: Field) -> str:
    """The field's command-line flag (``--field-name`` unless ``flag=`` says otherwise); the name in messages
    about its value, whether it came from a flag, a YAML key or a keyword argument."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def choices_of(f: Field) -> list[Any] | None:
    """The field's allowed values (evaluated now when they come from a registry)."""
    c = f.metadata.get("choices")
    if c is None:
        return None
    return list(c() if callable(c) else c)


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_settings(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Settings)


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """(T, True) for ``T | None``; (tp, False) otherwise."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def describe_type(tp: Any) -> str:
    """'an integer', 'a number', 'true or false', ... for error messages."""
    tp, optional = strip_optional(tp)
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    origin = typing.get_origin(tp)
    text = names.get(tp) or ("a list" if origin in (list, tuple) else "a mapping" if origin is dict else str(tp))
    return text + (" (or null)" if optional else "")


def convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the type ``tp`` (ints are accepted for floats; nothing else is coerced)."""
    tp, optional = strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise PrunekitError(f"{where} needs {describe_type(tp)}, got null")
    if tp is Any:
        return value
    if _is_settings(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise PrunekitError(f"{where} needs a mapping of {tp.__name__} settings, got {value!r}")
        return tp.from_dict(value, source=where)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise PrunekitError(f"{where} needs a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [convert(v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise PrunekitError(f"{where} needs a mapping, got {value!r}")
        return dict(value)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp, True)
    if not ok:
        raise PrunekitError(f"{where} needs {describe_type(tp)}, got {value!r}")
    return float(value) if tp is float else value


def check_finite(value: Any, name: str) -> None:
    """Refuse NaN and infinity (no setting means anything by them, and NaN passes every range check: ``nan <= 0``
    is false); ``name`` is the flag or the YAML key at fault."""
    if isinstance(value, float) and not math.isfinite(value):
        raise PrunekitError(f"{name} must be a finite number, got {value}")


@dataclass
class Settings:
    """Base class of prunekit's typed settings (see the module docstring). Every instance is checked,
    however it was made: subclasses that define ``__post_init__`` call ``super().__post_init__()``."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in fields(self):
            where = f"{type(self).__name__}.{f.name}"
            value = convert(getattr(self, f.name), hints[f.name], where)
            allowed = choices_of(f)
            if allowed is not None and value is not None and value not in allowed:
                raise PrunekitError(f"{where}: unknown {f.name.replace('_', ' ')} {value!r}; valid: "
                                    f"{', '.join(map(str, allowed))}")
            check_finite(value, flag_of(f))
            object.__setattr__(self, f.name, value)

    @classmethod
    def aliases(cls) -> dict[str, str]:
        """Every accepted other name of a field -> the field's name (nested settings excluded)."""
        return {a: f.name for f in fields(cls) for a in f.metadata.get("aliases", ())}

    @classmethod
    def field_names(cls) -> list[str]:
        """The fields' names."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls: type[S], values: Mapping[str, Any], *, source: str = "settings",
                  ignore_unknown: bool = False) -> S:
        """Build from a mapping of field names (dashes or underscores, or aliases), checking every value."""
        hints, known, aliases = _hints(cls), {f.name: f for f in fields(cls)}, cls.aliases()
        out: dict[str, Any] = {}
        for raw, value in values.items():
            key = str(raw).replace("-", "_")
            key = aliases.get(key, key)
            if key not in known:
                if ignore_unknown:
                    continue
                raise PrunekitError(f"{source}: unknown key {raw!r}; valid keys: {', '.join(sorted(known))}")
            value = convert(value, hints[key], f"{source}: {raw!r}")
            allowed = choices_of(known[key])
            if allowed is not None and value is not None and value not in allowed:
                raise PrunekitError(f"{source}: unknown {key.replace('_', ' ')} {value!r}; valid: "
                                    f"{', '.join(map(str, allowed))}")
            out[key] = value
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (nested settings as mappings)."""
        return asdict(self)

    def replace(self: S, **changes: Any) -> S:
        """A checked copy with some fields changed (None values are ignored)."""
        d = self.to_dict()
        d.update({k: v for k, v in changes.items() if v is not None})
        return type(self).from_dict(d)


def settings_fields(cls: type[Settings]) -> list[tuple[Field, Any]]:
    """(field, type) of every field of ``cls``, its nested settings' fields included (flattened)."""
    hints = _hints(cls)
    out = []
    for f in fields(cls):
        tp = strip_optional(hints[f.name])[0]
        if _is_settings(tp):
            out += settings_fields(tp)
        else:
            out.append((f, hints[f.name]))
    return out


def default_of(f: Field) -> Any:
    """A field's default value."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


__all__ = ["Settings", "check_finite", "convert", "default_of", "describe_type", "choices_of", "flag_of", "setting",
           "settings_fields"]
