"""Output folders that never destroy work: refuse an existing one unless told to overwrite, build
the new one in a hidden sibling, and rename it into place only when it is complete."""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from prunekit.errors import PrunekitError
from prunekit.io.locks import check_not_in_use

PARTIAL = ".partial"
PARTIAL_NOTE = "prunekit_partial"
"""Attribute set on an exception that left resumable state behind (the CLI's error line names it)."""
_TMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
"""A temporary file of :func:`prunekit.io.atomic.atomic_write` (``tempfile.mkstemp``'s 8 random characters)."""
_OLD = re.compile(r"^\.(?P<name>.+)\.old-[a-z0-9_]{8}$")
"""A folder made by :func:`set_aside`."""


def staging_dir(out: str | os.PathLike) -> Path:
    """The hidden sibling where ``out`` is built (and where an interrupted run's state waits)."""
    out = Path(out)
    return out.parent / f".{out.name}{PARTIAL}"


def occupied(path: Path) -> bool:
    """Whether ``path`` exists as a file or a non-empty folder."""
    return path.is_file() or path.is_symlink() or (path.is_dir() and any(path.iterdir()))


def check_output(out: str | os.PathLike, overwrite: bool = False, option: str = "--out",
                 inputs: dict[str, str | os.PathLike | None] | None = None) -> Path:
    """Refuse to write over existing work unless ``overwrite``, over a folder a running prunekit holds, or over
    the command's ``inputs`` (option -> path: an input equal to ``out`` or inside it) even with ``overwrite``;
    returns ``out`` as a Path. What a killed run left there first is tidied up (:func:`clean_orphans`)."""
    out = Path(out)
    check_apart(out, inputs or {}, option)
    check_writable(out, option)
    check_not_in_use(out, option)  # before anything in it is tidied
    clean_orphans(out)
    if occupied(out) and not overwrite:
        raise _exists(out, option)
    if out.exists() and not out.is_dir():
        raise PrunekitError(f"{option} {out} is a file, not a folder")
    return out


def check_file_output(out: str | os.PathLike, overwrite: bool = False, option: str = "--out",
                      outside: dict[str, str | os.PathLike | None] | None = None) -> Path:
    """Refuse to write the file ``out`` over an existing file unless ``overwrite``, where a folder is, under a file or
    a folder this user may not write, or inside one of the folders ``outside`` names (option -> folder: a command's
    input, never written into); returns ``out`` as a Path. What a killed write left beside it is tidied first."""
    out = Path(out)
    if out.is_dir():
        raise PrunekitError(f"{option} {out} is a folder: give the file to write, e.g. {out / 'out'}{out.suffix}")
    _check_parents(out, existing_ancestor(out), option)
    for name, folder in (outside or {}).items():
        if folder is not None and out.resolve().is_relative_to(Path(folder).resolve()):
            raise PrunekitError(f"{option} {out} is inside {name} {folder}, which is never written into: write it "
                                "elsewhere")
    clean_orphans(out)
    if out.exists() and not overwrite:
        raise _exists(out, option)
    return out


def _exists(out: Path, option: str) -> PrunekitError:
    """The refusal of an output that holds something, without --overwrite."""
    return PrunekitError(f"{option} {out} already exists: choose another {option}, or pass --overwrite to replace it")


def existing_ancestor(path: Path) -> Path | None:
    """The nearest of ``path``'s parents that exists (a folder, or a file a path cannot go through)."""
    return next((p for p in path.parents if p.exists()), None)


def check_writable(out: Path, option: str = "--out") -> None:
    """Refuse an output folder that cannot be written: inside a file, in a folder this user may not write, or the
    current folder (or one above it), which would be replaced from inside."""
    if out.resolve() == Path.cwd().resolve() or Path.cwd().resolve().is_relative_to(out.resolve()):
        raise PrunekitError(f"{option} {out} is the current folder or holds it: choose a folder beside it or inside it")
    _check_parents(out, out if out.exists() else existing_ancestor(out), option)


def _check_parents(out: Path, existing: Path | None, option: str) -> None:
    """Refuse ``out`` when ``existing`` (the output itself, or its nearest existing parent) is a file a path cannot go
    through, or a folder this user may not write."""
    if existing is None:
        return
    if not existing.is_dir():
        raise PrunekitError(f"{option} {out}: {existing} is a file, not a folder; choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PrunekitError(f"{option} {out}: {existing} is not writable; choose another {option}")


def check_apart(out: Path, inputs: dict[str, str | os.PathLike | None], option: str = "--out") -> None:
    """Refuse an output folder that is one of the command's inputs or holds one: writing it would replace the input."""
    target = out.resolve()
    for name, path in inputs.items():
        if path is None:
            continue
        source = Path(path).resolve()
        if source == target or source.is_relative_to(target):
            where = "is" if source == target else "holds"
            raise PrunekitError(f"{option} {out} {where} {name} {path}: writing it would replace that input, which is "
                                f"never overwritten; choose another {option}")


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
    try:
        stage.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PrunekitError(f"--out {out}: cannot write there ({err.strerror}); choose another --out") from None
    try:
        yield stage
    except BaseException as err:
        if not keep_partial:
            shutil.rmtree(stage, ignore_errors=True)
        elif stage.is_dir() and any(stage.iterdir()):
            setattr(err, PARTIAL_NOTE, stage)
        raise
    publish(stage, out, overwrite)


def partial_note(err: BaseException) -> str:
    """What to say about the resumable state an error left behind ('' if none)."""
    stage = getattr(err, PARTIAL_NOTE, None)
    if stage is None:
        return ""
    return f"; the unfinished output is kept in {stage}: the same command resumes it (delete it to start over)"


def _is_ours(folder: Path) -> bool:
    """Whether ``folder`` is one prunekit writes: a staging folder, a checkpoint or a NetAdapt working folder."""
    if folder.name.startswith(".") and folder.name.endswith(PARTIAL):
        return True
    return (folder / "model.json").is_file() or ((folder / "config.json").is_file()
                                                 and (folder / "history.jsonl").is_file())


def _remove_tmp_files(folder: Path) -> list[Path]:
    """Delete atomic_write's orphaned temporary files anywhere under ``folder`` (one of ours)."""
    removed = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if _TMP.match(name):
                path = Path(root) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def clean_orphans(path: str | os.PathLike) -> list[Path]:
    """Tidy up what a killed prunekit left around ``path``, a file or folder a command is about to write.

    Only prunekit's own name patterns are touched: ``.NAME.XXXXXXXX.tmp`` files beside ``path`` (an
    atomic write of ``path`` cut short) and inside it when it is one of prunekit's folders (checkpoint,
    NetAdapt working folder, ``.NAME.partial`` staging folder); and ``.NAME.old-XXXXXXXX`` folders made
    by :func:`set_aside`: put back when ``path`` is missing (the kill came before its replacement was in
    place), deleted otherwise. Staging folders themselves are resumable state and are kept.
    Returns the paths removed or restored.
    """
    path = Path(path)
    parent = path.parent
    done: list[Path] = []
    if not parent.is_dir():
        return done
    for entry in sorted(parent.glob(f".{glob.escape(path.name)}.*")):
        tmp, old = _TMP.match(entry.name), _OLD.match(entry.name)
        if tmp and tmp["name"] == path.name and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            done.append(entry)
        elif old and old["name"] == path.name and entry.is_dir() and not entry.is_symlink():
            inner = entry / path.name
            if inner.exists() and not occupied(path):
                if path.is_dir():
                    path.rmdir()
                os.replace(inner, path)
            shutil.rmtree(entry, ignore_errors=True)
            done.append(entry)
    for folder in (path, staging_dir(path)):
        if folder.is_dir() and not folder.is_symlink() and _is_ours(folder):
            done += _remove_tmp_files(folder)
    return done
