"""Writes that never leave a half-written file or folder where a complete one is expected, and one sentence when
the disk is full or the folder cannot be written.

A file or folder is written under a temporary sibling name (``.NAME.tmp-HOST-PID-HEX``), then renamed into place:
a rename within one filesystem is atomic, so a reader (or a resume after a kill) sees the old version or the new
one, never a mix. A temporary sibling whose writer is gone is an orphan that :func:`remove_orphans` deletes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

from hf_tl.errors import HfTlError

TMP_MARK = ".tmp-"
ORPHAN_AGE_S = 24 * 3600  # a temporary file of another machine (shared filesystem) counts as orphaned this late
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def temp_sibling(path: Path) -> Path:
    """A temporary name beside ``path`` that says which process writes it (for :func:`remove_orphans`)."""
    return path.with_name(f".{path.name}{TMP_MARK}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _writer_gone(path: Path) -> bool:
    """Whether the process named in a temporary name has ended (or, on another machine, the file is old)."""
    host, _, pid = path.name.rpartition(TMP_MARK)[2].rpartition("-")[0].rpartition("-")
    if host != socket.gethostname():
        return time.time() - path.lstat().st_mtime > ORPHAN_AGE_S
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):  # not a name we wrote, or another user's live process
        return False
    return False


def remove_orphans(folder: Path) -> list[str]:
    """Delete the temporary files and folders in ``folder`` whose writer has ended (a killed write).

    Returns:
        The names removed.
    """
    removed = []
    for path in Path(folder).glob(f".*{TMP_MARK}*"):
        with contextlib.suppress(OSError, ValueError):
            if _writer_gone(path):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
                removed.append(path.name)
    return removed


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, fix: str = "free space (or choose a writable folder) and try again"):
    """Yield a temporary path to write ``path``'s new contents to; on success it replaces ``path`` at once.

    ``path`` holds the old contents or the whole new ones, never part of them; on an error the temporary file goes.

    Raises:
        HfTlError: when the disk is full or the folder cannot be written (see :func:`write_guard`).
    """
    path = Path(path)
    tmp = temp_sibling(path)
    with write_guard(path, fix):
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`), synced to disk before the rename."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_arrays(path: str | os.PathLike, **arrays) -> None:
    """Write numpy ``arrays`` to ``path`` as one ``.npz`` atomically (see :func:`atomic_file`); the name is kept as
    given (``numpy.savez`` would add a suffix to a path)."""
    import numpy as np

    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def replace_dir(new: Path, final: Path) -> None:
    """Move the finished folder ``new`` to ``final``, replacing a folder already there (renames only)."""
    if final.exists():
        old = temp_sibling(final)
        final.rename(old)
        new.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(final)


@contextlib.contextmanager
def staged_dir(final: Path):
    """Yield a temporary folder to write ``final``'s contents into; on success it replaces ``final`` at once.

    On an error the temporary folder is deleted and ``final`` is left as it was.
    """
    tmp = temp_sibling(final)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def nearest_existing(path: str | os.PathLike) -> Path:
    """``path`` if it exists, else its closest existing parent folder (where it would be created)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def mount_point(path: str | os.PathLike) -> Path:
    """The mount point of the filesystem ``path`` is (or would be) on."""
    p = nearest_existing(path)
    while not os.path.ismount(p):
        p = p.parent
    return p


def write_problem(err: BaseException, target: str | os.PathLike) -> str | None:
    """What kept a write from completing, as words (``no space left on /mnt``), or None for other errors.

    Libraries report a full disk in their own ways (``OSError`` ENOSPC, safetensors' ``StorageFull``, torch's
    ``file write failed`` or ``unexpected pos``), so the error, its causes and their messages are all read, and a
    write that failed on a filesystem with (almost) no space left is taken as stopped by it.
    """
    seen = err
    with contextlib.suppress(OSError):
        if shutil.disk_usage(mount_point(target)).free < 1 << 20:
            return f"no space left on {mount_point(target)}"
    while seen is not None:
        code = getattr(seen, "errno", None)
        text = str(seen)
        if code in NO_SPACE or "No space left" in text or "StorageFull" in text or "Disk quota" in text:
            return f"no space left on {mount_point(target)}"
        if code == errno.EROFS or "Read-only file system" in text:
            return f"{mount_point(target)} is a read-only filesystem"
        if code in NOT_WRITABLE:
            return "permission denied"
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def write_guard(target: str | os.PathLike, fix="free space (or choose a writable folder) and try again"):
    """Turn a failed write of ``target`` (disk full, read-only, no permission) into one sentence.

    Args:
        target: The file or folder being written, named in the message.
        fix: What the user does next, or a callable that says it when the write fails.

    Raises:
        HfTlError: ``"no space left on DEVICE while writing FILE; FIX"``; other errors pass unchanged.
    """
    try:
        yield
    except HfTlError:
        raise
    except Exception as err:
        named = _failed_path(err)  # the file the system named, unless it is a temporary name of ours
        where = named if named and TMP_MARK not in named and ".partial" not in named else target
        problem = write_problem(err, where)
        if problem is None:
            raise
        raise HfTlError(f"{problem} while writing {where}; {fix() if callable(fix) else fix}.") from None


def _failed_path(err: BaseException) -> str | None:
    """The file an ``OSError`` in the chain of ``err`` names, if any."""
    while err is not None:
        if isinstance(err, OSError) and err.filename:
            return str(err.filename)
        err = err.__cause__ or err.__context__
    return None
