"""Processes: run a command in a child process and measure it (wall time and the child's own peak memory), and end
a command-line process as soon as its work is done."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time


def import_in_background(*modules: str) -> None:
    """Import modules in a daemon thread, so a later import of them in the main thread finds them loaded.

    Started where the main thread waits in native code that releases the GIL (the training loop's torch kernels),
    the imports cost it almost nothing; an import of the same module from the main thread meanwhile waits for this
    one (Python's import lock), and an import that fails here is simply done again, with its error, there.
    """
    import importlib
    import threading

    def load():
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the main thread's own import says what is wrong
                return

    threading.Thread(target=load, name="hf_tl-import", daemon=True).start()


def exit_when_done(main, *args) -> None:
    """Run a command-line entry point, then end the process at once with its exit status.

    Python's own shutdown would then tear down every imported module one by one: about 1.1 s once torch and
    transformers are loaded, 0.4 s for torch alone, time the user waits for after the last line. By then every file
    hf_tl writes is written and closed (atomically), trackers are closed by the run; the exit handlers still run
    and the output is flushed. An exception other than ``SystemExit`` ends the process the usual way.

    Args:
        main: The entry point (a recipe's ``main``, the ``hf-tl`` command).
        *args: Its arguments.
    """
    status = 0
    try:
        main(*args)
    except SystemExit as stop:
        if isinstance(stop.code, int):
            status = stop.code
        elif stop.code is not None:  # sys.exit("message"): printed, status 1, as Python does
            print(stop.code, file=sys.stderr)
            status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:  # no stream (the descriptor was closed when Python started) or closed
            continue
        try:
            stream.flush()
        except OSError:  # a closed pipe, a full disk
            status = status or 120  # what Python's own shutdown returns when it cannot flush
    os._exit(status)


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
