"""``hf-tl export``: write a finished run's model in a chosen standard form to a new folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hf_tl.config_io import load_config
from hf_tl.errors import HfTlError
from hf_tl.run_dir import CONFIG_FILE
from hf_tl.runs import run_kind_of
from hf_tl.safe_io import replace_dir, temp_sibling
from hf_tl.standard.manifest import MANIFEST
from hf_tl.standard.place import _write, manifest, run_is_decoder
from hf_tl.standard.plan import plan_format


def export(run: str | Path, fmt: str, output: str | Path, merge: bool = False, overwrite: bool = False) -> Path:
    """Write a finished run's model in a standard form to a new folder (``hf-tl export``).

    Args:
        run: The run directory (or Hub repo id).
        fmt: ``sentence-transformers``, ``cross-encoder``, ``transformers`` or ``peft``.
        output: The folder to write; it must not exist unless ``overwrite``.
        merge: Fold a LoRA/IA3 adapter into the backbone (needed for the non-PEFT forms of an adapter run).
        overwrite: Replace an existing ``output`` folder that holds an earlier export.

    Returns:
        The folder written.

    Raises:
        HfTlError: for a run the form cannot express exactly (saying why), or an output folder in the way.
    """
    from hf_tl.predict import load_run

    output = Path(output)
    if output.exists() and not (overwrite and output.is_dir() and (output / MANIFEST).is_file()):
        raise HfTlError(f"--output '{output}' already exists; choose a new folder" + (
            ", or add --overwrite to replace an earlier export" if (output / MANIFEST).is_file() else
            " (hf-tl export replaces only a folder it wrote itself, with --overwrite)"))
    path = _local(run)
    config = load_config(path / CONFIG_FILE)
    standard = getattr(run_kind_of(config), "standard_formats", False)
    try:  # before the model loads: a refusal is quick
        plan = plan_format(config, fmt, merge, standard_kind=standard,
                           is_decoder=standard and run_is_decoder(path, config))
    except HfTlError as err:
        raise HfTlError(f"Cannot export '{run}' as {fmt}: {err}.") from None
    loaded = load_run(path, device="cpu")
    loaded_parts = loaded._loaded
    output.parent.mkdir(parents=True, exist_ok=True)
    staging, work = temp_sibling(output), temp_sibling(output.with_name(output.name + "-work"))
    try:
        staging.mkdir()
        work.mkdir()
        _write(plan, loaded.config, loaded_parts, staging, work)
        info = {**manifest(plan, sorted(p.name for p in staging.iterdir())), "run": str(run)}
        (staging / MANIFEST).write_text(json.dumps(info, indent=2) + "\n")
        replace_dir(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return output


def _local(run: str | Path) -> Path:
    """The run's folder: the local one, or its download from the Hub.

    Raises:
        HfTlError: for a folder that is not an hf_tl run.
    """
    from hf_tl.hub import local_run_path

    path, _ = local_run_path(run)
    if not (path / CONFIG_FILE).is_file():
        raise HfTlError(f"'{run}' is not an hf_tl run (no {CONFIG_FILE}); hf-tl export writes a run's model in a "
                        f"standard form.")
    return path
