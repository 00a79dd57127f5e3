"""Atomic file writes: a crash never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from prunekit.errors import PrunekitError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; users expect their umask
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_default) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    return atomic_write(path, write)


class BadFileError(PrunekitError, ValueError):
    """A file prunekit wrote is missing or unreadable (a ValueError too, for callers that add their own advice)."""


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or damaged one is one clear error naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise BadFileError(f"{path} is missing: restore it, or write that output again") from None
    except IsADirectoryError:
        raise BadFileError(f"{path} is a folder, not a JSON file") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BadFileError(f"{path} is not valid JSON ({err}): it was edited or damaged; restore it, or write "
                           "that output again") from None


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
