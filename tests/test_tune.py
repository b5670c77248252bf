"""hf-tl tune: trials as child runs, a table, a chart and the best config; search spaces checked first."""

import csv

import pytest

from hf_tl.cli import main as cli
from hf_tl.config_io import load_config
from hf_tl.errors import HfTlError
from hf_tl.tune import read_search_space

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.real_data
def test_a_two_trial_search_writes_its_table_chart_and_best_config(tiny_bert, tmp_path):
    from test_compare import write_tiny_config

    config = write_tiny_config(tiny_bert, tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"
                     "head_dropout: {type: categorical, choices: [0.0, 0.2]}\n")
    folder = tmp_path / "tune"
    cli(["tune", str(config), "--search_space", str(space), "--n_trials", "2", "--output_dir", str(folder),
         "--max_train_samples", "16", "--max_eval_samples", "8", "--num_train_epochs", "1"])
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert [r["trial"] for r in rows] == ["0", "1"] and {r["state"] for r in rows} == {"complete"}
    best = max(rows, key=lambda r: float(r["spearmanr"]))
    best_config = load_config(folder / "best_config.yaml")
    assert best_config.train.learning_rate == pytest.approx(float(best["learning_rate"]))
    assert best_config.strategy.head_dropout == float(best["head_dropout"])
    assert "(best)" in (folder / "trials.md").read_text()
    assert (folder / "trials.png").read_bytes()[:8] == PNG
    for r in rows:
        assert (folder / "trials" / f"trial-{r['trial']}" / "eval_results.json").is_file()
    # Asked again for 2 trials, the stored study has them: nothing more runs.
    cli(["tune", str(config), "--search_space", str(space), "--n_trials", "2", "--output_dir", str(folder),
         "--max_train_samples", "16", "--max_eval_samples", "8", "--num_train_epochs", "1"])
    assert len(list(csv.DictReader((folder / "trials.csv").open()))) == 2


@pytest.mark.parametrize("text, message", [
    ("learning_rat: {type: float, low: 1, high: 2}", "not a run option.*learning_rate"),
    ("learning_rate: {type: float, low: 2, high: 1}", "needs numbers low < high"),
    ("learning_rate: 0.1", "needs type: float, int or categorical"),
    ("loss: {type: categorical}", "needs choices"),
    ("seed: {type: int, low: 1, high: 3}", "set by the search itself"),
])
def test_bad_search_spaces_are_refused(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text + "\n")
    with pytest.raises(HfTlError, match=message):
        read_search_space(path)


class PruningTrial:
    """What _run_trial asks of an Optuna trial, with a pruner that stops the run at its first evaluation."""

    number = 0

    def __init__(self):
        self.reports, self.attrs = [], {}

    def suggest_float(self, name, low, high, log=False):
        return low

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return True

    def set_user_attr(self, key, value):
        self.attrs[key] = value


@pytest.mark.real_data
def test_a_trial_the_pruner_stops_is_ended_at_its_first_evaluation(tiny_bert, tmp_path):
    import optuna
    from test_compare import write_tiny_config

    from hf_tl.tune import _run_trial

    config = write_tiny_config(tiny_bert, tmp_path)
    trial = PruningTrial()
    with pytest.raises(optuna.TrialPruned):
        _run_trial(trial, str(config), {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2}},
                   ["--max_train_samples", "32", "--num_train_epochs", "4", "--eval_strategy", "steps",
                    "--eval_steps", "1"], tmp_path, ["spearmanr"])
    assert trial.reports and trial.reports[0][0] == 1  # the step-1 evaluation was reported, then the run stopped
    assert not (tmp_path / "trials" / "trial-0" / "eval_results.json").exists()
