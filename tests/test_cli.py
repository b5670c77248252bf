"""The command line: --help that works, one-line flag errors, hints for near-misses, YAML values of the wrong type,
and hf-tl predict on the headerless files a run trained on."""

import csv
import json
import re
import subprocess
import sys

import pytest
from conftest import DATA_DIR, REPO, run_recipe, tiny_args

import hf_tl
from hf_tl import load_config, parse_args
from hf_tl.cli import main as cli_main
from hf_tl.errors import HfTlError
from hf_tl.predict_io import read_rows
from hf_tl.run_config import RunConfig
from hf_tl.strategies import STRATEGIES

RECIPES = sorted(p.name for p in (REPO / "recipes").glob("*.py"))


def run_python(*args: str) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` from the repository root, as a user would."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=600)


@pytest.mark.parametrize("command, prog", [(["-m", "hf_tl.cli", "train"], "hf-tl train")]
                         + [([f"recipes/{name}"], f"recipes/{name}") for name in RECIPES],
                         ids=["hf-tl train"] + RECIPES)
def test_help_exits_0_grouped_with_choices_and_defaults(command, prog):
    proc = run_python(*command, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.startswith(f"usage: {prog} [--config FILE.yaml] [--OPTION VALUE ...]")
    for title in ("model", "data", "strategy", "train"):
        assert f"\n{title}:\n" in out
    # the four groups in order, each option in its group
    assert out.index("\nmodel:\n") < out.index("--pooling") < out.index("\ndata:\n") < out.index("--column_names") \
        < out.index("\nstrategy:\n") < out.index("--lora_r") < out.index("\ntrain:\n") < out.index("--seed")
    assert "--strategy {" + ",".join(STRATEGIES) + "}" in out
    assert "--mixed_precision {no,fp16,bf16}" in out and "--pooling {auto,cls,mean,last}" in out
    assert "Seed for weights of the head, shuffling and dropout. (default: 42)" in " ".join(out.split())
    # each option once: not also as its --learning-rate alias, nor as a separate --no_group_by_length entry
    assert "--learning-rate" not in out and out.count("--learning_rate FLOAT") == 1
    assert out.count("--no_group_by_length") == 1
    assert "hf_tl error" not in proc.stderr


def test_help_with_a_config_shows_its_values_as_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(["--config", str(REPO / "recipes/configs/stsb_lora.yaml"), "--help"], prog="hf-tl train")
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--lora_r INT LoRA rank. (default: 16)" in out  # the YAML's value, not the dataclass's 8
    assert "stsb_lora.yaml" in out


@pytest.mark.parametrize("argv", [["trainable", "--help"], ["predict", "--help"], ["compare", "--help"],
                                  ["push", "--help"], ["embed", "--help"], ["advise", "--help"],
                                  ["--help"]])
def test_every_command_has_help_that_exits_0(argv, capsys):
    try:
        cli_main(argv)  # hf-tl --help returns, a command's --help exits (argparse)
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: hf-tl {argv[0] if len(argv) > 1 else 'COMMAND'}")
    if argv[0] == "predict":
        assert "--column_names A,B,C" in out and "(default: 64)" in out


@pytest.mark.parametrize("command", [["recipes/text_similarity.py", "--pooling", "max"],
                                     ["-m", "hf_tl.cli", "train", "--max_steps", "1.5"]],
                         ids=["bad-choice", "not-a-whole-number"])
def test_the_shell_sees_one_error_line_and_no_usage(command):
    proc = run_python(*command)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hf_tl error:"), proc.stderr[-2000:]
    assert "usage:" not in proc.stdout + proc.stderr
    flag = command[-2]
    assert flag in lines[0]


FLAG_MISTAKES = {
    "bad-choice": (["--pooling", "max"], "--pooling must be one of auto, cls, mean, last, got 'max'"),
    "bad-strategy": (["--strategy", "lora2"], "Unknown strategy 'lora2'.*Did you mean 'lora'"),
    "not-a-number": (["--learning_rate", "fast"], "--learning_rate takes a number, got 'fast'"),
    "float-for-int": (["--max_steps", "10.5"], "--max_steps takes a whole number, got '10.5'"),
    "missing-value": (["--seed"], "--seed needs a value, e.g. --seed 42"),
    "bad-bool": (["--dry_run", "maybe"], "--dry_run takes true or false"),
    "stray-argument": (["run.yaml"], "Unexpected argument 'run.yaml'.*--config"),
}


@pytest.mark.parametrize("argv, message", FLAG_MISTAKES.values(), ids=FLAG_MISTAKES.keys())
def test_flag_mistakes_are_one_sentence(argv, message):
    with pytest.raises(HfTlError, match=message):
        parse_args(argv)


@pytest.mark.parametrize("argv, message", [
    (["predict", "--run", "r"], "hf-tl predict needs --input, --output"),
    (["predict", "--run", "r", "--input", "x", "--output", "y", "--batch_size", "many"],
     "--batch_size takes a whole number, got 'many'"),
    (["predict", "--run", "r", "--input", "x.jsonl", "--output", "y", "--column_names", "a,b"],
     "--column_names names the columns of a headerless .csv/.tsv"),
    (["compare", "c.yaml", "--strategies", "full", "--seeds", "x"], "--seeds takes a whole number"),
    (["push", "folder"], "hf-tl push needs repo_id"),
    (["embed", "--input", "x.csv", "--output", "o.npy", "--pooling", "max"], "--pooling must be one of"),
    (["embed", "--input", "x.csv", "--output", "o.npy", "--model", "m"], "use --model_name_or_path instead"),
    (["trainable", "--lr", "0.1"], "Unknown option '--lr'; use --learning_rate instead"),
    (["trian"], "Unknown command 'trian'.*Did you mean 'train'"),
])
def test_every_command_reports_flag_mistakes_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("hf_tl error:")]
    assert len(lines) == 1, err[-2000:]
    assert "usage:" not in out + err
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("flag, fix", [
    (["--fp16"], "use --mixed_precision fp16 instead"),
    (["--bf16", "true"], "use --mixed_precision bf16 instead"),
    (["--evaluation_strategy", "steps"], "use --eval_strategy instead"),
    (["--lr", "1e-5"], "use --learning_rate instead"),
    (["--epochs", "2"], "use --num_train_epochs instead"),
    (["--batch_size", "8"], "use --per_device_train_batch_size instead"),
])
def test_trainer_flags_point_to_the_hf_tl_option(flag, fix):
    with pytest.raises(HfTlError, match=f"Unknown option '{flag[0]}'; {fix}"):
        parse_args(flag)


def test_trainer_keys_in_yaml_point_to_the_hf_tl_option(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("fp16: true\n")
    with pytest.raises(HfTlError, match=r"Unknown option 'fp16' in .*c\.yaml; use 'mixed_precision: fp16' instead"):
        load_config(path)
    with pytest.raises(HfTlError, match="Unknown option 'epochs'; use 'num_train_epochs' instead"):
        RunConfig.from_flat_dict({"epochs": 2})


YAML_TYPE_ERRORS = {
    "list-for-float": ("num_train_epochs: [1, 2]", r"Option 'num_train_epochs' must be a number, got \[1, 2\]"),
    "float-for-int": ("max_steps: 10.5", "Option 'max_steps' must be a whole number, got 10.5"),
    "bool-for-int": ("seed: true", "Option 'seed' must be a whole number, got true"),
    "list-for-learning-rate": ("learning_rate: [0.1]", r"Option 'learning_rate' must be a number, got \[0.1\]"),
    "mapping-for-string": ("strategy: {a: 1}", "Option 'strategy' must be a string, got {\"a\": 1}"),
    "number-for-list": ("label_names: 5", "Option 'label_names' must be a list of strings.*got 5"),
    "yaml-no": ("mixed_precision: no", "Option 'mixed_precision' must be a string, got false"),
    "null-for-number": ("learning_rate: null", "Option 'learning_rate' must be a number, got null"),
}


@pytest.mark.parametrize("text, message", YAML_TYPE_ERRORS.values(), ids=YAML_TYPE_ERRORS.keys())
def test_yaml_values_of_the_wrong_type_are_one_sentence(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text + "\n")
    with pytest.raises(HfTlError, match=f"{message} in {re.escape(str(path))}"):
        load_config(path)
    with pytest.raises(HfTlError, match=f"{message} in {re.escape(str(path))}") as exc:
        parse_args(["--config", str(path)])
    # YAML reads no/yes/on/off as booleans: a boolean where a string belongs says to quote it
    assert ("quote words such as no" in str(exc.value)) == ("mixed_precision" in text)


def test_wrong_types_from_python_and_per_task(tmp_path):
    with pytest.raises(HfTlError, match="Option 'seed' must be a whole number, got true.$"):
        RunConfig.from_flat_dict({"seed": True})
    path = tmp_path / "multi.yaml"
    path.write_text("tasks:\n  sts: {task: similarity, score_max: [5]}\n  sst: {task: classification}\n")
    message = rf"Option 'score_max' must be a number, got \[5\] under tasks.sts in {re.escape(str(path))}"
    with pytest.raises(HfTlError, match=message):
        load_config(path)
    path.write_text("tasks:\n  sts: {task: similarity}\n  sst: {task: classification}\n")
    with pytest.raises(HfTlError, match="Option 'max_train_samples' must be a whole number, got 'ten' "
                                        r"\(flag --tasks.sts.max_train_samples\)"):
        parse_args(["--config", str(path), "--tasks.sts.max_train_samples", "ten"])
    assert parse_args(["--config", str(path), "--tasks.sts.max_train_samples", "10"]).tasks["sts"].max_train_samples \
        == 10


def test_plain_conversions_are_still_accepted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_steps: 1000.0\nlearning_rate: 1e-5\nseed: '7'\ndataset_config_name: 2020\n"
                    "label_names: negative, positive\nhead_dropout: 0\n")
    config = load_config(path)
    assert config.train.max_steps == 1000 and isinstance(config.train.max_steps, int)
    assert config.train.learning_rate == 1e-5 and config.train.seed == 7
    assert config.data.dataset_config_name == "2020"
    assert config.data.label_names == ["negative", "positive"]
    assert config.strategy.head_dropout == 0.0 and isinstance(config.strategy.head_dropout, float)
    assert parse_args(["--config", str(path)]) == config


def test_read_rows_names_headerless_columns_and_skips_a_header(tmp_path):
    names = ["sentence1", "sentence2", "score"]
    path = tmp_path / "in.tsv"
    path.write_text('\ufeff"Quoted start\tplain\t1.0\n\nsecond\t"third"\t2.0\n', encoding="utf-8")
    rows = read_rows(path, names)
    # TSV is read with quoting off, as training reads it: bare quotes stay, the byte-order mark goes.
    assert rows == [{"sentence1": '"Quoted start', "sentence2": "plain", "score": "1.0"},
                    {"sentence1": "second", "sentence2": '"third"', "score": "2.0"}]
    path = tmp_path / "in.csv"
    path.write_text('sentence1,sentence2\n"a, quoted",b\n')
    assert read_rows(path, names) == [{"sentence1": "a, quoted", "sentence2": "b"}]  # header recognised
    assert read_rows(path) == [{"sentence1": "a, quoted", "sentence2": "b"}]
    path.write_text("a,b,1.0,extra\n")
    with pytest.raises(HfTlError, match="Row 1 of .* has 4 fields but only 3 columns are named"):
        read_rows(path, names)


@pytest.fixture(scope="module")
def stsb_run(tiny_bert, tmp_path_factory):
    """A tiny run trained on headerless STS-B with column_names sentence1,sentence2,score."""
    out = tmp_path_factory.mktemp("cli") / "run"
    run_recipe(tiny_args(tiny_bert, out, train=16, dev=8))
    return out


def stsb_rows(n: int = 4) -> list[list[str]]:
    with (DATA_DIR / "stsb" / "dev.csv").open(newline="") as fh:
        return [row for _, row in zip(range(n), csv.reader(fh))]


@pytest.mark.real_data
def test_predict_reads_a_headerless_csv_and_tsv_with_the_runs_columns(stsb_run, tmp_path, capsys):
    rows = stsb_rows()
    expected = hf_tl.load_run(stsb_run).predict([(a, b) for a, b, _ in rows])
    with (tmp_path / "dev.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    (tmp_path / "dev.tsv").write_text("".join("\t".join(r) + "\n" for r in rows))
    for name in ("dev.csv", "dev.tsv"):
        out = tmp_path / f"pred_{name}"
        cli_main(["predict", "--run", str(stsb_run), "--input", str(tmp_path / name), "--output", str(out)])
        with out.open(newline="") as fh:
            got = list(csv.DictReader(fh, delimiter="\t" if name.endswith(".tsv") else ","))
        assert [r["sentence1"] for r in got] == [r[0] for r in rows]  # no row taken for a header
        assert [float(r["prediction"]) for r in got] == pytest.approx(expected, abs=1e-6)
        assert "pearsonr=" in capsys.readouterr().out  # the score column was read and scored


@pytest.mark.real_data
def test_predict_column_names_flag_overrides_the_runs_columns(stsb_run, tmp_path):
    rows = stsb_rows()
    expected = hf_tl.load_run(stsb_run).predict([(a, b) for a, b, _ in rows])
    # Another column order, which only --column_names can tell.
    (tmp_path / "dev.tsv").write_text("".join(f"{score}\t{b}\t{a}\n" for a, b, score in rows))
    cli_main(["predict", "--run", str(stsb_run), "--input", str(tmp_path / "dev.tsv"), "--output",
              str(tmp_path / "pred.jsonl"), "--column_names", "score,sentence2,sentence1"])
    got = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in got] == pytest.approx(expected, abs=1e-6)
    assert [r["score"] for r in got] == [r[2] for r in rows]


@pytest.mark.parametrize("argv, status", [(["train", "--help"], 0), (["bogus"], 2)])
@pytest.mark.parametrize("stdout", ["open", "closed"])
def test_the_command_ends_with_its_own_status(argv, status, stdout):
    """The hf-tl process ends at once after its work (no module teardown) with the status the command set, also
    when its output descriptor is closed."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from hf_tl.cli import entry; entry()", *argv],
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=(lambda: os.close(1)) if stdout == "closed" else None)
    assert proc.returncode == status, proc.stderr[-2000:]
    assert ("usage: hf-tl train" in proc.stdout) == (status == 0 and stdout == "open")
    assert "Traceback" not in proc.stderr
