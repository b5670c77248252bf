"""hf-tl compare: strategies x seeds on tiny models, a table from the runs' own files, charts, and resuming."""

import csv
import json
import statistics

import pytest
from conftest import STSB_ARGS
from huggingface_hub import ModelCard

from hf_tl.cli import main as cli
from hf_tl.errors import HfTlError

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def tiny_config(tiny_bert, tmp_path):
    """A recipe config for the tiny BERT on a slice of STS-B."""
    path = tmp_path / "tiny.yaml"
    flags = dict(zip(STSB_ARGS[::2], STSB_ARGS[1::2]))
    path.write_text(f"""model_name_or_path: {tiny_bert}
task: similarity
train_file: {flags['--train_file']}
validation_file: {flags['--validation_file']}
column_names: {flags['--column_names']}
max_train_samples: 32
max_eval_samples: 16
num_train_epochs: 2
per_device_train_batch_size: 8
learning_rate: 0.001
strategy: full
seed: 3
output_dir: unused
""")
    return path


def test_compare_two_strategies_two_seeds(tiny_config, tmp_path, capsys):
    folder = tmp_path / "cmp"
    cli(["compare", str(tiny_config), "--strategies", "frozen,full", "--seeds", "2", "--output_dir", str(folder),
         "--logging_steps", "1"])
    runs = {(s, seed): json.loads((folder / "runs" / s / f"seed-{seed}" / "eval_results.json").read_text())
            for s in ("frozen", "full") for seed in (3, 4)}
    rows = list(csv.DictReader((folder / "table.csv").open()))
    assert [r["strategy"] for r in rows] == ["frozen", "full"]
    for row in rows:
        values = [runs[(row["strategy"], seed)]["eval_spearmanr"] for seed in (3, 4)]
        assert float(row["mean"]) == pytest.approx(statistics.mean(values))
        assert float(row["std"]) == pytest.approx(statistics.stdev(values))
        report = json.loads((folder / "runs" / row["strategy"] / "seed-3" / "trainable_parameters.json").read_text())
        assert int(row["trainable"]) == report["trainable"]
    assert int(rows[0]["trainable"]) < int(rows[1]["trainable"])  # frozen trains only the head
    assert "| frozen |" in (folder / "table.md").read_text()
    for name in ("metric_vs_params.png", "metric_vs_time.png", "learning_curves.png"):
        assert (folder / name).read_bytes()[:8] == PNG and (folder / name).stat().st_size > 5000
    import matplotlib.image

    assert matplotlib.image.imread(folder / "learning_curves.png").ndim == 3  # decodes as an image
    card = ModelCard.load(folder / "runs" / "full" / "seed-3" / "README.md")
    assert "## Comparison" in card.text and "| frozen |" in card.text

    # A second compare finds every run finished and trains nothing.
    before = {p: p.stat().st_mtime for p in folder.glob("runs/*/seed-*/eval_results.json")}
    capsys.readouterr()
    cli(["compare", str(tiny_config), "--strategies", "frozen,full", "--seeds", "2", "--output_dir", str(folder),
         "--logging_steps", "1"])
    assert capsys.readouterr().out.count("finished earlier, skipped") == 4
    assert {p: p.stat().st_mtime for p in before} == before


def test_interrupted_run_is_rerun_and_kept_aside(tiny_config, tmp_path):
    folder = tmp_path / "cmp"
    partial = folder / "runs" / "full" / "seed-3"
    partial.mkdir(parents=True)
    (partial / "config.yaml").write_text("strategy: full\n")  # what an interrupted run leaves behind
    from hf_tl.compare import compare

    compare(str(tiny_config), ["full"], 1, str(folder))
    assert (partial / "eval_results.json").is_file()
    assert any(p.name.startswith("seed-3.previous") for p in partial.parent.iterdir())


def test_compare_refuses_unknown_strategies(tiny_config, tmp_path):
    from hf_tl.compare import compare

    with pytest.raises(HfTlError, match="Unknown strategies"):
        compare(str(tiny_config), ["frozen", "fulll"], 1, str(tmp_path / "x"))


def test_compare_refuses_push_flags(tiny_config, tmp_path):
    from hf_tl.compare import compare

    with pytest.raises(HfTlError, match="push the comparison folder once"):
        compare(str(tiny_config), ["full"], 1, str(tmp_path / "x"), ["--push_to_hub", "true"])


def test_setfit_row_counts_the_parameters_its_body_run_trained(tmp_path):
    from hf_tl.compare import _trained_parameters

    run = tmp_path / "runs" / "setfit" / "seed-3"
    body = tmp_path / "runs" / "setfit" / "seed-3-body"
    for folder, trainable in ((run, 0), (body, 1234)):
        folder.mkdir(parents=True)
        (folder / "trainable_parameters.json").write_text(json.dumps({"trainable": trainable, "total": 5000,
                                                                      "percent": 100 * trainable / 5000}))
    assert _trained_parameters(run, "setfit")["trainable"] == 1234
    assert _trained_parameters(body, "full")["trainable"] == 1234
    assert _trained_parameters(run, "features")["trainable"] == 0
