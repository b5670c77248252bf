"""``hf-tl advise``: measure a config's task and backbone within a time budget, place the task in the
data-size x domain-similarity matrix, and recommend strategies (see docs/advise.md).

Layout of the advice folder::

    advice.md           the matrix placement, the evidence of each axis, the ranked strategies
    advice.json         every measurement and the ranking
    learning_curve.png  the linear head's dev metric against train rows, with the zero-shot score
    recommended.yaml    the top recommendation as a config (its first line trains it)
    zero_shot/          the zero-shot run the score came from
"""

from __future__ import annotations

from pathlib import Path

from hf_tl.errors import HfTlError

DEFAULT_BUDGET_MIN = 5.0


def advise(config_path: str, budget_minutes: float = DEFAULT_BUDGET_MIN, output_dir: str | None = None,
           overrides: list[str] = (), reference_file: str | None = None, say=print) -> dict:
    """Measure, place and recommend; write the advice folder.

    Args:
        config_path: The recipe config (YAML) of the task and backbone.
        budget_minutes: Wall-clock minutes the measurements may take on this machine.
        output_dir: The advice folder (default: ``runs/advise_CONFIG``).
        overrides: ``--key value`` flags applied to the config (as for ``hf-tl compare``).
        reference_file: Generic reference text (default: ``$HF_TL_REFERENCE_CORPUS`` or WikiText-2 under
            ``$HF_TL_DATA_DIR``).
        say: Where progress lines go.

    Returns:
        ``{"evidence", "advice", "folder", "config"}``: the measurements, the ranking (see
        :func:`hf_tl.advisor.rules.recommend`), the folder and the written config.

    Raises:
        HfTlError: for a budget that is not positive, or a config hf-tl advise cannot measure.
    """
    from hf_tl.advisor.measure import Budget, measure
    from hf_tl.advisor.report import CHART_FILE, write_advice, write_chart, write_config
    from hf_tl.advisor.rules import recommend

    if not budget_minutes > 0:
        raise HfTlError(f"--budget must be a positive number of minutes, got {budget_minutes}.")
    budget = Budget(budget_minutes * 60)
    folder = Path(output_dir or f"runs/advise_{Path(config_path).stem}")
    folder.mkdir(parents=True, exist_ok=True)
    evidence = measure(config_path, list(overrides), budget, reference_file, folder, say)
    advice = recommend(evidence)
    advice["options"] = _runnable(config_path, list(overrides), advice)
    config = write_config(config_path, list(overrides), advice["options"][0], folder) if advice["options"] else None
    write_advice(evidence, advice, folder)
    write_chart(evidence, advice, folder / CHART_FILE)
    return {"evidence": evidence, "advice": advice, "folder": folder, "config": config}


def _runnable(config_path: str, overrides: list[str], advice: dict) -> list[dict]:
    """The ranked options whose strategy accepts the config with their settings (each strategy checks its own);
    a refused one is dropped, its reason kept under ``refused``."""
    from hf_tl.advisor.report import option_flags
    from hf_tl.config_io import parse_args

    kept, advice["refused"] = [], {}
    for option in advice["options"]:
        try:
            parse_args(["--config", config_path, *option_flags(config_path, overrides, option)])
        except HfTlError as err:
            advice["refused"][option["strategy"]] = str(err)
            continue
        kept.append(option)
    return kept
