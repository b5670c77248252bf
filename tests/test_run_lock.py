"""One run per folder: the lock a second process sees at once, that dies with its process."""

import subprocess
import sys
import time

import pytest

from hf_tl import run_lock
from hf_tl.errors import HfTlError

HOLDER = """
import sys, time
from pathlib import Path
from hf_tl import run_lock
run_lock.acquire(Path(sys.argv[1]))
Path(sys.argv[1], "held").touch()
time.sleep(600)
"""


def hold_in_another_process(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)])
    for _ in range(300):
        if (folder / "held").exists():
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the holder did not start")


def test_a_second_process_is_refused_at_once_and_a_kill_frees_the_folder(tmp_path):
    holder = hold_in_another_process(tmp_path)
    try:
        with pytest.raises(HfTlError, match=rf"is in use by another run \(pid {holder.pid} on .*\)"):
            run_lock.acquire(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / run_lock.LOCK_FILE).exists()  # the file stays; the lock went with the process
    folder = run_lock.acquire(tmp_path)
    run_lock.release(folder)
    assert not (tmp_path / run_lock.LOCK_FILE).exists()


def test_nested_runs_of_one_process_share_the_lock(tmp_path):
    outer = run_lock.acquire(tmp_path)
    inner = run_lock.acquire(tmp_path)  # a chain's last run writes where the chain holds the lock
    run_lock.release(inner)
    assert (tmp_path / run_lock.LOCK_FILE).exists()
    run_lock.release(outer)
    assert not (tmp_path / run_lock.LOCK_FILE).exists()
