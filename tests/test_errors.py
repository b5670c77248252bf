"""Every bad input stops early with one clear sentence and leaves existing files untouched."""

import hashlib
import subprocess
import sys

import pytest
from conftest import REPO, cases, run_recipe, tiny_args


def tree_digest(path) -> dict:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def expect_user_error(argv, message, capsys, recipe="text_similarity"):
    """Run the recipe; it must exit with status 2 and print exactly one 'hf_tl error:' line matching message."""
    with pytest.raises(SystemExit) as exc:
        run_recipe(argv, recipe)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("hf_tl error:")]
    assert len(lines) == 1, err[-2000:]
    assert "Traceback" not in err
    import re

    assert re.search(message, lines[0]), lines[0]


@pytest.fixture()
def previous_run(tmp_path):
    """A folder that already holds a run's files."""
    run = tmp_path / "previous"
    run.mkdir()
    (run / "config.yaml").write_text("strategy: full\n")
    (run / "eval_results.json").write_text('{"eval_spearmanr": 0.9}\n')
    return run


def write(path, text):
    path.write_text(text)
    return str(path)


def with_files(model, tmp_path, validation_text: str, suffix: str = ".csv") -> list[str]:
    """Recipe flags reading a small headered train file and the given validation file."""
    train = write(tmp_path / "train.csv", "sentence1,sentence2,score\na cat sits,a cat is sitting,4.5\n"
                                          "a dog runs,stocks fell,0.2\n")
    dev = write(tmp_path / f"dev{suffix}", validation_text)
    return tiny_args(model, tmp_path / "out", "--train_file", train, "--validation_file", dev, "--column_names", "")


def test_output_dir_that_holds_a_run_is_refused_and_kept(tiny_bert, previous_run, capsys):
    before = tree_digest(previous_run)
    expect_user_error(tiny_args(tiny_bert, previous_run), "already holds a run.*--overwrite_output_dir", capsys)
    assert tree_digest(previous_run) == before


@pytest.mark.real_data
def test_overwrite_moves_the_previous_run_aside(tiny_bert, previous_run):
    before = tree_digest(previous_run)
    run_recipe(tiny_args(tiny_bert, previous_run, "--overwrite_output_dir", train=8, dev=8))
    backups = list(previous_run.parent.glob("previous.previous-*"))
    assert len(backups) == 1 and tree_digest(backups[0]) == before
    assert (previous_run / "eval_results.json").read_text() != '{"eval_spearmanr": 0.9}\n'


@pytest.mark.real_data
def test_missing_checkpoint_path(tmp_path, capsys):
    expect_user_error(tiny_args(str(tmp_path / "no_such_model"), tmp_path / "out"),
                      "Checkpoint folder .* does not exist.*--model_name_or_path", capsys)


@pytest.mark.real_data
def test_hub_id_while_offline(tmp_path, capsys):
    expect_user_error(tiny_args("someone/no-such-model-xyz", tmp_path / "out"),
                      "from the Hugging Face Hub while offline.*local directory", capsys)


FLAG_ERRORS = {
    "hub-dataset-offline": (["--dataset_name", "sentence-transformers/stsb"],
                            "Cannot load dataset 'sentence-transformers/stsb' from the Hub while offline"),
    "misnamed-column": (["--label_column", "similarity"],
                        "has no column 'similarity' \\(it has: sentence1, sentence2, score\\); set label_column"),
    "missing-data-file": (["--train_file", "stsb/nope.csv"], "Data file 'stsb/nope.csv' does not exist"),
    "unknown-strategy": (["--strategy", "fulll"], "Unknown strategy 'fulll'.*Did you mean 'full'"),
    "unknown-option": (["--num_epochs", "3"], "Unknown option '--num_epochs'"),
    "partial-too-deep": (["--strategy", "partial", "--num_layers", "12"],
                         "asks for the top 12 blocks, but the model has only 2"),
    "zero-shot-cross-encoder": (["--strategy", "zero_shot"], "needs architecture bi_encoder with head_type none"),
    "resume-without-checkpoint": (["--resume_from_checkpoint", "latest"], "No complete checkpoint to resume"),
    "unknown-best-metric": (["--metric_for_best_model", "eval_spearmanr"],
                            "metric_for_best_model 'eval_spearmanr' is not computed.*pearsonr, spearmanr"),
}


@pytest.mark.parametrize("flags, message", cases(FLAG_ERRORS, real_data={"misnamed-column", "partial-too-deep",
                                                                          "zero-shot-cross-encoder",
                                                                          "unknown-best-metric"}))
def test_bad_settings(tiny_bert, tmp_path, capsys, flags, message):
    expect_user_error(tiny_args(tiny_bert, tmp_path / "out", *flags), message, capsys)


@pytest.mark.real_data
def test_headerless_file_without_column_names(tiny_bert, tmp_path, capsys):
    argv = tiny_args(tiny_bert, tmp_path / "out")
    i = argv.index("--column_names")
    del argv[i:i + 2]
    expect_user_error(argv, "has no column 'sentence1'.*column_names for a file without a header", capsys)


DATA_ERRORS = {
    "empty-split": ("sentence1,sentence2,score\n", ".csv", "The validation split is empty"),
    "non-numeric-score": ("sentence1,sentence2,score\na b,c d,3.5\ne f,g h,high\n", ".csv",
                          "Row 2 of the validation data has a non-numeric score 'high'"),
    "out-of-range-score": ('{"sentence1": "a", "sentence2": "b", "score": 7.5}\n', ".jsonl",
                           "score 7.5 .* outside \\[0.0, 5.0\\]"),
}


@pytest.mark.parametrize("text, suffix, message", DATA_ERRORS.values(), ids=DATA_ERRORS.keys())
def test_bad_data(tiny_bert, tmp_path, capsys, text, suffix, message):
    expect_user_error(with_files(tiny_bert, tmp_path, text, suffix), message, capsys)


def test_the_shell_sees_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "recipes" / "text_similarity.py"), "--strategy", "nope",
                           "--output_dir", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "hf_tl error: Unknown strategy 'nope'; choose one of " + ", ".join(__import__("hf_tl").STRATEGIES) + "."]


@pytest.mark.real_data
def test_resume_from_another_runs_checkpoint_is_refused(tiny_bert, tmp_path, capsys):
    other = tmp_path / "other"
    run_recipe(tiny_args(tiny_bert, other, train=8, dev=8))
    target = tmp_path / "target"
    run_recipe(tiny_args(tiny_bert, target, train=8, dev=8))
    before = tree_digest(target)
    checkpoint = next((other / "checkpoints").iterdir())
    expect_user_error(tiny_args(tiny_bert, target, "--resume_from_checkpoint", str(checkpoint)),
                      "belongs to another run", capsys)
    assert tree_digest(target) == before


@pytest.mark.real_data
def test_pickle_weights_are_refused_safetensors_only(tiny_bert, tmp_path, capsys):
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "bin_only"
    shutil.copytree(tiny_bert, folder)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    expect_user_error(tiny_args(str(folder), tmp_path / "out"), "holds only PyTorch .bin weights.*safetensors only",
                      capsys)


@pytest.mark.real_data
def test_custom_code_is_not_run_unless_trusted(tmp_path, capsys):
    folder = tmp_path / "custom_model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "hf_tl_custom", "auto_map": {"AutoConfig": '
                                        '"configuration_custom.CustomConfig"}}')
    marker = tmp_path / "code_ran"
    (folder / "configuration_custom.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom transformers import PretrainedConfig\n\n\n"
        "class CustomConfig(PretrainedConfig):\n    model_type = 'hf_tl_custom'\n")
    expect_user_error(tiny_args(str(folder), tmp_path / "out"), "needs its own modelling code.*--trust_remote_code",
                      capsys)
    assert not marker.exists()
