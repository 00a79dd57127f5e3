"""Folders held by a running prunekit process: an operating-system lock on the folder itself (nothing is
written into it), dropped however the process ends. NetAdapt's working folder is held while a run works in
it; a command about to replace a folder first checks that no run holds it."""

from __future__ import annotations

import os
from pathlib import Path

from prunekit.errors import PrunekitError

try:
    import fcntl
except ImportError:  # not POSIX: folders are not locked
    fcntl = None  # type: ignore[assignment]


def in_use_error(path: Path, option: str = "") -> PrunekitError:
    """The one line for a folder another run holds."""
    named = f"{option} {path}" if option else str(path)
    return PrunekitError(f"{named} is in use by another prunekit run: wait for it to end (or stop it), or choose "
                         "another folder")


def lock_folder(path: Path, option: str = "") -> int | None:
    """A descriptor of ``path`` holding its exclusive lock (close it to let go), or None where folders cannot be
    locked; raises :func:`in_use_error` (naming ``option``) when another descriptor holds it (another process,
    or this one)."""
    if fcntl is None or not path.is_dir():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise in_use_error(path, option) from None
    return fd


_HELD: dict[tuple[int, int], list[int]] = {}
"""Folders this process holds: (device, inode) -> [descriptor holding the lock, number of holds]."""


def _key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def hold(path: Path) -> tuple[int, int] | None:
    """Hold ``path`` for this process (holds within one process are counted); returns what to give
    :func:`let_go`, or None where nothing is held (no such folder, or folders cannot be locked)."""
    if not path.is_dir():
        return None
    key = _key(path)
    if key not in _HELD:
        fd = lock_folder(path)
        if fd is None:
            return None
        _HELD[key] = [fd, 0]
    _HELD[key][1] += 1
    return key


def let_go(key: tuple[int, int]) -> None:
    """Undo one :func:`hold`; the last one lets other processes use the folder again."""
    held = _HELD[key]
    held[1] -= 1
    if held[1] == 0:
        os.close(held[0])  # closing the only descriptor drops the lock
        del _HELD[key]


def check_not_in_use(path: Path, option: str = "") -> None:
    """Refuse to replace or delete a folder that another prunekit run holds (this process's own holds pass:
    the caller is that run)."""
    if not path.is_dir() or _key(path) in _HELD:
        return
    fd = lock_folder(path, option)
    if fd is not None:
        os.close(fd)
