"""An exclusive lock on a run directory, held for as long as a run writes to it.

Two runs started into one folder would prune each other's checkpoints and interleave their logs; the second must
stop at once instead. The lock is an ``fcntl.flock`` on ``OUTPUT_DIR/.hf_tl.lock``: the kernel releases it when its
process ends, however it ends (a SIGKILL included), so a killed run never leaves a stale lock behind and resumes at
once. Nested runs of one process (a chain's steps) share their folder's lock.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from hf_tl.errors import HfTlError
from hf_tl.safe_io import write_guard

LOCK_FILE = ".hf_tl.lock"
_HELD: dict[Path, list] = {}  # folder -> [file descriptor, holders in this process]


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


def acquire(folder: Path) -> Path:
    """Take the lock of ``folder`` (created if missing) for this process.

    Returns:
        The folder (resolved), to pass to :func:`release`.

    Raises:
        HfTlError: when another run holds it, or the folder cannot be written.
    """
    folder = Path(folder).resolve()
    if folder in _HELD:
        _HELD[folder][1] += 1
        return folder
    path = folder / LOCK_FILE
    with write_guard(folder, "choose another --output_dir"):
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise HfTlError(f"output_dir '{folder}' is in use by another run ({_holder(path)}); wait for it to "
                                f"end, or choose another --output_dir.") from None
            try:  # the holder may have ended and removed the file between our open and our lock: lock the new one
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                     .encode())
    _HELD[folder] = [fd, 1]
    return folder


def release(folder: Path) -> None:
    """Give back the lock taken by :func:`acquire` (the lock file goes once its last holder here releases it)."""
    held = _HELD.get(folder)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        (folder / LOCK_FILE).unlink(missing_ok=True)  # before closing: nobody else holds it meanwhile
        os.close(held[0])
        del _HELD[folder]


def moved(old: Path, new: Path) -> None:
    """Record that a locked folder was renamed (its lock file with it), so :func:`release` finds the file."""
    old, new = Path(old).resolve(), Path(new).resolve()
    if old in _HELD:
        _HELD[new] = _HELD.pop(old)
