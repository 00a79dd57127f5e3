"""Output folders that never destroy work: refuse an existing one unless told to overwrite, build
the new one in a hidden sibling, and rename it into place only when it is complete."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from prunekit.errors import PrunekitError

PARTIAL = ".partial"


def staging_dir(out: str | os.PathLike) -> Path:
    """The hidden sibling where ``out`` is built (and where an interrupted run's state waits)."""
    out = Path(out)
    return out.parent / f".{out.name}{PARTIAL}"


def occupied(path: Path) -> bool:
    """Whether ``path`` exists as a file or a non-empty folder."""
    return path.is_file() or path.is_symlink() or (path.is_dir() and any(path.iterdir()))


def check_output(out: str | os.PathLike, overwrite: bool = False, option: str = "--out") -> Path:
    """Refuse to write over existing work unless ``overwrite``; returns ``out`` as a Path."""
    out = Path(out)
    if occupied(out) and not overwrite:
        raise PrunekitError(f"{option} {out} already exists: choose another {option}, or pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise PrunekitError(f"{option} {out} is a file, not a folder")
    return out


def set_aside(path: Path) -> Path:
    """Move ``path`` into a new hidden sibling folder (to delete once its replacement is complete); returns that folder."""
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    os.replace(path, old / path.name)
    return old


def publish(stage: Path, out: Path, overwrite: bool = False) -> Path:
    """Rename the finished ``stage`` to ``out`` (an existing ``out`` is replaced only with ``overwrite``)."""
    check_output(out, overwrite)
    old = None
    if out.is_dir() and any(out.iterdir()):
        old = set_aside(out)
    elif out.is_dir():
        out.rmdir()
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


@contextmanager
def staged_output(out: str | os.PathLike, overwrite: bool = False, *, keep_partial: bool = True) -> Iterator[Path]:
    """Yield the staging folder of ``out``; when the block ends without error it becomes ``out``.

    On an error the staging folder stays (it may hold resumable state: running the same command
    again continues) unless ``keep_partial`` is false. Nothing that existed before is touched.
    """
    out = check_output(out, overwrite)
    stage = staging_dir(out)
    stage.mkdir(parents=True, exist_ok=True)
    try:
        yield stage
    except BaseException:
        if not keep_partial:
            shutil.rmtree(stage, ignore_errors=True)
        raise
    publish(stage, out, overwrite)
