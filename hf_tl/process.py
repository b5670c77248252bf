"""Run a command in a child process and measure it: wall time and the child's own peak memory."""

from __future__ import annotations

import os
import subprocess
import time


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[int, str, float, int]:
    """Run ``cmd`` to the end, its output captured.

    Args:
        cmd: The command.
        env: The child's environment (default: this process's).

    Returns:
        ``(exit status, output, wall seconds rounded to 0.1, peak RSS in MiB)``; the RSS is the child's alone, so a
        run in its own process reports its own memory.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    return status, log, round(time.perf_counter() - start, 1), round(usage.ru_maxrss / 1024)
