"""Atomic writes, temporary names and their clean-up, and the one sentence for a write the disk refuses."""

import errno
import os
import socket

import pytest

from hf_tl.errors import HfTlError
from hf_tl.safe_io import atomic_write_text, remove_orphans, staged_dir, temp_sibling, write_guard, write_problem


def test_an_interrupted_write_keeps_the_old_text(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    atomic_write_text(path, "old\n")

    def interrupted(fd):  # the new text is written to the temporary file, not yet renamed
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temporary file left


def test_a_staged_folder_replaces_the_old_one_whole_or_not_at_all(tmp_path):
    final = tmp_path / "heads"
    with staged_dir(final) as folder:
        (folder / "a.safetensors").write_text("1")
    with pytest.raises(RuntimeError), staged_dir(final) as folder:
        (folder / "a.safetensors").write_text("2")
        raise RuntimeError("killed half way")
    assert (final / "a.safetensors").read_text() == "1"
    with staged_dir(final) as folder:
        (folder / "b.safetensors").write_text("3")
    assert sorted(p.name for p in final.iterdir()) == ["b.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heads"]


def test_orphans_are_removed_and_live_writes_kept(tmp_path):
    dead = tmp_path / f".entry.tmp-{socket.gethostname()}-{2 ** 22 + 7}-0a0b0c0d"
    live = temp_sibling(tmp_path / "entry")
    other_host = tmp_path / ".entry.tmp-elsewhere-1-0a0b0c0d"
    for folder in (dead, live, other_host):
        folder.mkdir()
    assert remove_orphans(tmp_path) == [dead.name]
    assert live.exists() and other_host.exists()  # another machine's write is left until it is a day old
    os.utime(other_host, (0, 0))
    assert remove_orphans(tmp_path) == [other_host.name]


@pytest.mark.parametrize("error, expected", [
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on /"),
    (RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })"), "no space left on /"),
    (OSError(errno.EROFS, "Read-only file system"), "is a read-only filesystem"),
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    (ValueError("not a write problem"), None),
])
def test_write_problems_are_recognised_however_a_library_reports_them(tmp_path, error, expected):
    problem = write_problem(error, tmp_path)
    assert problem == expected if expected is None else expected in problem


def test_the_guard_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(HfTlError, match=r"^no space left on /.* while writing .*out.csv; free space and retry\.$"):
        with write_guard(tmp_path / "out.csv", "free space and retry"):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(ValueError), write_guard(tmp_path / "out.csv"):
        raise ValueError("other errors pass unchanged")
