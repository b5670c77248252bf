"""Bad input a hostile or careless user gives around finished runs: each ends in one sentence (exit 2, no traceback)
that names the row, file or option, and leaves every file that was there byte-identical."""

import json
import os
import shutil
import subprocess

import pytest
from conftest import run_recipe, tiny_args
from test_errors import expect_user_error, tree_digest

import hf_tl
from hf_tl.cli import main as cli
from hf_tl.errors import HfTlError
from hf_tl.standard.one_copy import backbone_weights

pytestmark = pytest.mark.real_data  # the runs here train on the real data files

CODE = "open({marker!r}, 'w').close()\nfrom transformers import BertConfig\n\n\nclass CustomConfig(BertConfig):\n" \
       "    model_type = 'hf_tl_custom'\n"


@pytest.fixture(scope="module")
def full_run(tiny_bert, tmp_path_factory):
    """A finished run whose backbone trained (its weights live in the run)."""
    run = tmp_path_factory.mktemp("bad_input") / "full"
    run_recipe(tiny_args(tiny_bert, run, "--strategy", "full", train=16, dev=8))
    return run


@pytest.fixture
def run_copy(full_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(full_run, copy)
    return copy


def expect_cli_error(argv, message, capsys):
    """``hf-tl ARGV`` exits 2 with one 'hf_tl error:' line matching ``message``."""
    import re

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("hf_tl error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert re.search(message, lines[0]), lines[0]


def rows_file(tmp_path, text="sentence1,sentence2\nA man plays a guitar.,A man is playing the guitar.\n",
              name="in.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# 7. A run folder cannot switch on remote code ------------------------------------------------------------------------

def plant_remote_code(run, marker):
    """Make the run's backbone a checkpoint with its own code, and its config.yaml ask for remote code."""
    weights = backbone_weights(run)  # backbone/, or the root's standard model that holds the weights
    folder = weights if weights.is_dir() else weights.parent
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="hf_tl_custom", auto_map={"AutoConfig": "configuration_custom.CustomConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_custom.py").write_text(CODE.format(marker=str(marker)))
    yaml_file = run / "config.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("trust_remote_code: false", "trust_remote_code: true"))
    assert "trust_remote_code: true" in yaml_file.read_text()


def test_a_run_folder_cannot_switch_on_remote_code(run_copy, tmp_path, tiny_bert, capsys):
    marker = tmp_path / "code_ran"
    plant_remote_code(run_copy, marker)
    before = tree_digest(run_copy)
    with pytest.raises(HfTlError, match="ships its own modelling code.*trust_remote_code"):
        hf_tl.load_run(run_copy)
    expect_cli_error(["predict", "--run", str(run_copy), "--input", str(rows_file(tmp_path)), "--output",
                      str(tmp_path / "out.csv")], "ships its own modelling code", capsys)
    expect_user_error(tiny_args(tiny_bert, tmp_path / "next", "--init_from_run", str(run_copy), train=8, dev=8),
                      "ships its own modelling code", capsys)
    assert not marker.exists()
    assert tree_digest(run_copy) == before
    assert not (tmp_path / "out.csv").exists()


# 8. predict never overwrites what it was not told to, and never writes into a run -----------------------------------

def test_predict_refuses_to_overwrite(full_run, tmp_path, capsys):
    rows = rows_file(tmp_path)
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    before, run_before = tree_digest(tmp_path), tree_digest(full_run)
    base = ["predict", "--run", str(full_run), "--input", str(rows)]
    expect_cli_error([*base, "--output", str(existing)], "already exists; choose another --output or pass "
                                                         "--overwrite", capsys)
    expect_cli_error([*base, "--output", str(rows), "--overwrite"], "is the file being read", capsys)
    expect_cli_error([*base, "--output", str(full_run / "eval_log.jsonl"), "--overwrite"],
                     "lies inside the run directory", capsys)
    expect_cli_error([*base, "--output", str(full_run / "predictions.csv")], "lies inside the run directory", capsys)
    assert tree_digest(tmp_path) == before and tree_digest(full_run) == run_before
    cli([*base, "--output", str(existing), "--overwrite"])  # asked for: replaced, whole
    assert existing.read_text().splitlines()[0] == "sentence1,sentence2,prediction"


# 9. A run missing its trained weights or tokenizer refuses to load -------------------------------------------------

@pytest.mark.parametrize("folder, message", [("model.safetensors", "has lost its trained backbone weights"),
                                             ("tokenizer", "has lost its tokenizer"),
                                             ("heads", "has lost its heads")])
def test_a_run_missing_its_own_files_refuses(run_copy, tmp_path, capsys, folder, message):
    # The root's standard model holds the backbone's weights (one copy): losing its file loses them.
    if folder.endswith(".safetensors"):
        (run_copy / folder).unlink()
    else:
        shutil.rmtree(run_copy / folder)
    before = tree_digest(run_copy)
    where = run_copy / folder if folder.endswith(".safetensors") else f"{run_copy / folder}/"
    with pytest.raises(HfTlError, match=f"Run '{run_copy}' {message} \\({where} is missing\\)"):
        hf_tl.load_run(run_copy)
    expect_cli_error(["predict", "--run", str(run_copy), "--input", str(rows_file(tmp_path)), "--output",
                      str(tmp_path / "o.csv")], message, capsys)
    assert tree_digest(run_copy) == before


@pytest.mark.parametrize("file", ["model.safetensors", "heads/similarity.safetensors"])
def test_a_truncated_safetensors_file_is_named(run_copy, file):
    path = run_copy / file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(HfTlError, match=f"'{path}' is not a whole safetensors file|weights in '{path.parent}' are "
                                        f"not a whole safetensors file"):
        hf_tl.load_run(run_copy)


def test_a_damaged_checkpoint_is_named_when_resumed(tiny_bert, tmp_path, capsys):
    run = tmp_path / "run"
    argv = tiny_args(tiny_bert, run, "--strategy", "full", train=16, dev=8)
    run_recipe(argv)
    checkpoint = next((run / "checkpoints").glob("checkpoint-*"))
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    before = tree_digest(run)
    expect_user_error([*argv, "--resume_from_checkpoint", "latest"],
                      f"Checkpoint '{checkpoint}' cannot be loaded .*--resume_from_checkpoint PATH", capsys)
    assert tree_digest(run) == before


# 10. Rows, labels and output folders --------------------------------------------------------------------------------

PREDICT_ROWS = {
    "empty-csv-cell": ("in.csv", 'sentence1,sentence2\nA man plays.,A man is playing.\n"",A dog runs.\n',
                       "Row 2 of '.*in.csv' has no text in column 'sentence1'"),
    "null-json-text": ("in.jsonl", '{"sentence1": "A man plays.", "sentence2": null}\n',
                       "Row 1 of '.*in.jsonl' has no text in column 'sentence2'"),
    "too-few-fields": ("in.csv", "sentence1,sentence2,score\nA man plays.,A man is playing.,4.0\nA dog runs.,3.0\n",
                       r"Row 2 of '.*in.csv' has 2 field\(s\) but the file has 3 columns"),
}


@pytest.mark.parametrize("name, text, message", PREDICT_ROWS.values(), ids=PREDICT_ROWS.keys())
def test_predict_rows_without_text(full_run, tmp_path, capsys, name, text, message):
    rows = rows_file(tmp_path, text, name)
    before = tree_digest(tmp_path)
    expect_cli_error(["predict", "--run", str(full_run), "--input", str(rows), "--output", str(tmp_path / "o.csv")],
                     message, capsys)
    assert tree_digest(tmp_path) == before


def test_label_names_naming_a_class_the_data_lacks(tiny_bert, tmp_path, capsys):
    train = tmp_path / "train.csv"
    train.write_text("sentence,label\na fine film,1\na dull film,0\ngreat,1\nawful,0\n")
    argv = ["--model_name_or_path", tiny_bert, "--task", "classification", "--train_file", str(train),
            "--validation_file", str(train), "--label_names", "negative", "positive", "neutral", "--output_dir",
            str(tmp_path / "out"), "--num_train_epochs", "1"]
    expect_user_error(argv, "label_names has 3 labels but 'neutral' never occurs in the train data's column 'label' "
                            r"\(it holds 0, 1\); drop 'neutral' from label_names", capsys, recipe="sentiment")
    assert not (tmp_path / "out").exists()


def test_overwriting_the_working_folder_is_refused(tiny_bert, run_copy, monkeypatch, capsys):
    monkeypatch.chdir(run_copy)
    before = tree_digest(run_copy)
    expect_user_error(tiny_args(tiny_bert, ".", "--overwrite_output_dir"), "would move '.', the folder you are "
                                                                           "working in, aside", capsys)
    assert tree_digest(run_copy) == before and not list(run_copy.parent.glob("*.previous-*"))


def test_overwrite_only_moves_runs_aside(tiny_bert, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("months of work\n")
    expect_user_error(tiny_args(tiny_bert, notes, "--overwrite_output_dir"), "holds files that are not an hf_tl "
                                                                             "run", capsys)
    assert (notes / "thesis.tex").read_text() == "months of work\n"


def read_only_folder(path) -> bool:
    """A folder no write can go to: a read-only mount (root), or no write permission (other users)."""
    path.mkdir()
    if os.geteuid() == 0:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                              capture_output=True).returncode == 0
    path.chmod(0o555)
    return True


def test_a_read_only_output_dir(tiny_bert, tmp_path, capsys):
    folder = tmp_path / "ro"
    if not read_only_folder(folder):
        pytest.skip("root without permission to mount: no folder here is read-only to this user")
    try:
        expect_user_error(tiny_args(tiny_bert, folder / "run"), "output_dir '.*ro/run' cannot be written "
                                                                 r"\(read-only or no permission\)", capsys)
        expect_user_error(tiny_args(tiny_bert, folder), "cannot be written", capsys)
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
        folder.chmod(0o755)


# 12. A path-like name is never looked up on the Hub -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["runs/missing", "./missing", "~/hf_tl_missing_run", "EXISTING/missing"])
def test_a_missing_local_run_is_not_looked_up_on_the_hub(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EXISTING").mkdir()
    with pytest.raises(HfTlError, match=f"No run folder '{name}' .*no Hub repo of that name is tried"):
        hf_tl.load_run(name)


# 13. Orphaned temporary folders of the feature cache ----------------------------------------------------------------

def test_a_killed_cache_write_is_cleaned_up(tiny_bert, tmp_path, capsys):
    import socket

    cache = tmp_path / "cache"
    cache.mkdir()
    orphan = cache / f".{'0' * 32}.tmp-{socket.gethostname()}-{2 ** 22 + 7}-deadbeef"  # above pid_max: no process
    live = cache / f".{'1' * 32}.tmp-{socket.gethostname()}-{os.getpid()}-cafef00d"  # a writer still at work
    for folder in (orphan, live):
        folder.mkdir()
        (folder / "data-00000-of-00001.arrow").write_bytes(b"half")
    run_recipe(tiny_args(tiny_bert, tmp_path / "run", "--strategy", "frozen", "--cache_features", "true",
                         "--feature_cache_dir", str(cache), train=8, dev=8))
    assert not orphan.exists() and live.exists()
    assert f"removed {orphan}" in capsys.readouterr().out


def test_a_day_old_cache_write_of_an_earlier_version_is_cleaned_up(tiny_bert, tmp_path):
    """Earlier versions named a temporary entry without its writer (.KEY.HEX.tmp): removed once a day old."""
    cache = tmp_path / "cache"
    old, recent = cache / f".{'2' * 32}.{'ab' * 16}.tmp", cache / f".{'3' * 32}.{'cd' * 16}.tmp"
    for folder in (old, recent):
        folder.mkdir(parents=True)
    os.utime(old, (0, 0))
    run_recipe(tiny_args(tiny_bert, tmp_path / "run", "--strategy", "frozen", "--cache_features", "true",
                         "--feature_cache_dir", str(cache), train=8, dev=8))
    assert not old.exists() and recent.exists()
