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


def write_tiny_config(tiny_bert: str, folder):
    """Write a recipe config for the tiny BERT on a slice of STS-B into ``folder``."""
    path = folder / "tiny.yaml"
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


@pytest.fixture
def tiny_config(tiny_bert, tmp_path):
    """A recipe config for the tiny BERT on a slice of STS-B."""
    return write_tiny_config(tiny_bert, tmp_path)


@pytest.mark.real_data
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
    # Each row is marked against the best strategy by the paired bootstrap, whose pairs are in significance.md.
    comparison = json.loads((folder / "comparison.json").read_text())
    best = comparison["significance"]["best"]
    assert {r["strategy"]: r["vs_best"] for r in rows}[best] == "best"
    assert "vs best |" in (folder / "table.md").read_text()
    assert "| frozen | full |" in (folder / "significance.md").read_text()
    for seed in (3, 4):  # dev predictions stored beside each run, in dev order
        import numpy as np

        with np.load(folder / "runs" / "full" / f"seed-{seed}.dev.npz") as stored:
            assert stored["predictions"].shape == (16,)
    card = ModelCard.load(folder / "runs" / "full" / "seed-3" / "README.md")
    assert "## Comparison" in card.text and "| frozen |" in card.text

    # A second compare finds every run finished and trains nothing.
    before = {p: p.stat().st_mtime for p in folder.glob("runs/*/seed-*/eval_results.json")}
    capsys.readouterr()
    cli(["compare", str(tiny_config), "--strategies", "frozen,full", "--seeds", "2", "--output_dir", str(folder),
         "--logging_steps", "1"])
    assert capsys.readouterr().out.count("finished earlier, skipped") == 4
    assert {p: p.stat().st_mtime for p in before} == before


@pytest.mark.real_data
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


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _assert_one_legend_entry_per_strategy(runs, rows, metric):
    from hf_tl.compare_charts import CACHE_LABEL, charts

    for name, fig in charts(runs, rows, metric).items():
        texts = _legend_texts(fig)
        for row in rows:  # each strategy once, named with its architecture
            assert len([t for t in texts if t.startswith(f"{row['strategy']} (")]) == 1, (name, texts)
            assert any(t.startswith(f"{row['strategy']} ({row['architecture']})") for t in texts)
        assert len(texts) == len(rows) + (CACHE_LABEL in texts)


@pytest.mark.real_data
def test_compare_eval_points_architecture_and_cache_hits(tiny_config, tmp_path):
    folder = tmp_path / "cmp"
    cli(["compare", str(tiny_config), "--strategies", "zero_shot,frozen", "--seeds", "2", "--output_dir", str(folder),
         "--eval_points", "3", "--feature_cache_dir", str(tmp_path / "features"), "--bootstrap", "0"])
    assert not (folder / "significance.md").exists()  # --bootstrap 0: no test
    rows = {r["strategy"]: r for r in csv.DictReader((folder / "table.csv").open())}
    assert rows["zero_shot"]["architecture"] == "bi-encoder" and rows["frozen"]["architecture"] == "cross-encoder"
    table = (folder / "table.md").read_text()
    assert "| strategy | architecture |" in table and "| zero_shot | bi-encoder |" in table
    # A fresh cache: seed 3 builds the features, seed 4 reads them (its wall time leaves out the backbone pass).
    assert int(rows["frozen"]["feature_cache_hits"]) == 1 and int(rows["zero_shot"]["feature_cache_hits"]) == 0
    assert "1 of 2 frozen runs read backbone features from a warm feature cache" in table
    assert [line for line in table.splitlines() if line.startswith("| frozen |")][0].count("†") == 1
    comparison = json.loads((folder / "comparison.json").read_text())
    # 32 rows in batches of 8 for 2 epochs: 8 optimizer steps; about 3 evaluations: every round(8 / 3) = 3 steps.
    for run in comparison["runs"]:
        log = [json.loads(line) for line in (folder / "runs" / run["strategy"] / f"seed-{run['seed']}" /
                                             "eval_log.jsonl").read_text().splitlines()]
        if run["strategy"] == "frozen":
            assert run["command"][run["command"].index("--eval_steps") + 1] == "3"
            assert [e["step"] for e in log] == [3, 6, 8]
        else:  # evaluated once: no schedule to set
            assert "--eval_steps" not in run["command"] and len(log) == 1
    for name in ("metric_vs_params.png", "metric_vs_time.png", "learning_curves.png"):
        assert (folder / name).read_bytes()[:8] == PNG
    _assert_one_legend_entry_per_strategy(comparison["runs"], comparison["rows"], comparison["metric"])


class _Stop(Exception):
    pass


@pytest.mark.real_data
def test_eval_points_schedule_and_user_overrides(tiny_config, tmp_path, monkeypatch):
    import hf_tl.compare as compare_module
    from hf_tl.config_io import parse_args

    seen = []

    def record_flags(config_path, strategy, seed, out, flags):
        seen.append(flags)
        raise _Stop

    monkeypatch.setattr(compare_module, "run_one", record_flags)
    for eval_points, overrides in ((4, []), (0, []), (4, ["--eval_steps", "5"]), (4, ["--eval_strategy=epoch"])):
        with pytest.raises(_Stop):
            compare_module.compare(str(tiny_config), ["full"], 1, str(tmp_path / "x"), overrides, eval_points)
    assert seen == [["--eval_strategy", "steps", "--eval_steps", "2"], [], ["--eval_steps", "5"],
                    ["--eval_strategy=epoch"]]
    with pytest.raises(HfTlError, match="eval_points"):
        compare_module.compare(str(tiny_config), ["full"], 1, str(tmp_path / "x"), [], -1)

    def steps(*flags):
        return compare_module.optimizer_steps(parse_args(["--config", str(tiny_config), *flags]), {"similarity": 32})

    assert steps() == 8  # 4 batches of 8, 2 epochs
    assert steps("--gradient_accumulation_steps", "3") == 4  # ceil(4 / 3) = 2 optimizer steps per epoch
    assert steps("--num_train_epochs", "1.5") == 6
    assert steps("--max_steps", "5") == 5


def test_redraw_rebuilds_the_benchmark_from_its_numbers(tmp_path):
    import shutil

    from conftest import REPO

    shutil.copy(REPO / "docs" / "benchmarks" / "compare_stsb" / "compare_stsb_cpu.json", tmp_path / "summary.json")
    recorded = json.loads((tmp_path / "summary.json").read_text())
    from hf_tl.compare import read_comparison, redraw, summarize
    from hf_tl.compare_charts import curves_figure

    with pytest.raises(HfTlError, match="architectures"):  # the summary does not record them, and names no config
        redraw(tmp_path / "summary.json")
    cli(["compare", str(REPO / "recipes" / "configs" / "stsb_full.yaml"), "--redraw", str(tmp_path / "summary.json")])
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert [r["strategy"] for r in rows] == [r["strategy"] for r in recorded["rows"]]
    for row, before in zip(rows, recorded["rows"]):
        for key in ("mean", "std", "wall_s"):
            assert float(row[key]) == pytest.approx(before[key])
    assert {r["strategy"]: r["architecture"] for r in rows} == {
        "zero_shot": "bi-encoder", "frozen": "cross-encoder", "partial": "cross-encoder", "full": "cross-encoder",
        "gradual": "cross-encoder", "lora": "cross-encoder"}
    assert {r["strategy"]: int(r["feature_cache_hits"]) for r in rows}["frozen"] == 3
    for name in ("metric_vs_params.png", "metric_vs_time.png", "learning_curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    runs, metric, _ = read_comparison(tmp_path / "summary.json", str(REPO / "recipes" / "configs" / "stsb_full.yaml"))
    _assert_one_legend_entry_per_strategy(runs, summarize(runs, metric), metric)
    caption = " ".join(t.get_text() for t in curves_figure(runs, summarize(runs, metric), metric).texts)
    assert "Only 2 evaluations per trained run" in caption  # the recorded runs evaluated once per epoch
