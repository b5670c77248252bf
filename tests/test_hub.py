"""Pushing to and loading from a Hub-compatible server on loopback, with the real huggingface_hub client."""

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import HUB_TOKEN as TOKEN
from conftest import run_recipe, tiny_args

import hf_tl
from hf_tl.cli import main as cli
from hf_tl.errors import HfTlError
from hf_tl.hub import ABSOLUTE_PATH, push_folder, scrub_paths

PAIRS = [("A man is playing a guitar.", "A man plays the guitar."), ("A dog runs.", "The stock market fell.")]


def digest(folder) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def pushed_files(run) -> dict:
    return {k: v for k, v in digest(run).items() if not k.startswith("checkpoints/")}


@pytest.fixture
def finished_run(tiny_bert, tmp_path):
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, out))
    return out


@pytest.mark.real_data
def test_push_then_load_from_the_hub(hub, finished_run, capsys):
    url = push_folder(finished_run, "alice/tiny-stsb", private=True)
    repo = hub.repos["alice/tiny-stsb"]
    assert repo.private and url.endswith(repo.commits[-1])
    remote = {path: hashlib.sha256(data).hexdigest() for path, data in repo.files.items()}
    local = pushed_files(finished_run)
    assert set(remote) == set(local)  # every file; no checkpoints, no lock
    scrubbed = {name for name in local if remote[name] != local[name]}
    assert scrubbed == {"config.yaml", "lineage.json", "README.md"}  # the rest: byte-identical
    for name in scrubbed:
        text = repo.files[name].decode()
        assert text == scrub_paths((finished_run / name).read_text(), finished_run) and not ABSOLUTE_PATH.search(text)
    assert all(h == f"Bearer {TOKEN}" for h in hub.auth_headers if h)  # the client did send the token

    commits = len(repo.commits)
    push_folder(finished_run, "alice/tiny-stsb")
    assert len(repo.commits) == commits  # nothing changed: no new commit

    local, remote_run = hf_tl.load_run(finished_run), hf_tl.load_run("alice/tiny-stsb")
    assert remote_run.predict(PAIRS) == pytest.approx(local.predict(PAIRS), abs=1e-6)

    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    assert not any(TOKEN.encode() in p.read_bytes() for p in finished_run.rglob("*") if p.is_file())


@pytest.mark.real_data
def test_failed_push_retries_then_stops_cleanly(hub, finished_run):
    before = digest(finished_run)
    hub.fail_next = 1000  # the server answers 500 to everything
    with pytest.raises(HfTlError, match="after 3 attempts.*local run is unchanged") as err:
        push_folder(finished_run, "alice/broken", retry_wait=0.01)
    assert TOKEN not in str(err.value)
    assert digest(finished_run) == before
    assert len([r for r in hub.requests if r == "POST /api/repos/create"]) == 3


@pytest.mark.real_data
def test_recipe_pushes_a_lora_run_with_its_adapter_and_card(hub, tiny_gpt2, tmp_path):
    out = tmp_path / "lora"
    run_recipe(tiny_args(tiny_gpt2, out, "--strategy", "lora", "--push_to_hub", "true", "--hub_model_id",
                         "alice/tiny-lora", "--hub_private", "true"))
    repo = hub.repos["alice/tiny-lora"]
    assert repo.private and {"adapter/adapter_config.json", "heads/similarity.safetensors"} <= set(repo.files)
    assert b"library_name: peft" in repo.files["README.md"]
    adapter = json.loads(repo.files["adapter/adapter_config.json"])
    assert adapter["base_model_name_or_path"] == Path(tiny_gpt2).name  # a local base is named, not its path
    with pytest.raises(HfTlError, match=f"'{Path(tiny_gpt2).name}'"):  # so it loads only where that base is
        hf_tl.load_run("alice/tiny-lora")


def test_push_a_comparison_folder(hub, tmp_path):
    folder = tmp_path / "compare"
    folder.mkdir()
    (folder / "table.md").write_text("| strategy | dev spearmanr |\n|---|---|\n| full | 0.5 |\n")
    (folder / "metric_vs_params.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (folder / "runs" / "full" / "seed-1" / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (folder / "runs" / "full" / "seed-1" / "eval_results.json").write_text("{}")
    (folder / "runs" / "full" / "seed-1" / "checkpoints" / "checkpoint-2" / "optimizer.bin").write_bytes(b"x")
    cli(["push", str(folder), "alice/compare"])
    assert set(hub.repos["alice/compare"].files) == {"table.md", "metric_vs_params.png",
                                                     "runs/full/seed-1/eval_results.json"}  # no nested checkpoints


def test_offline_and_not_a_run_are_refused(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HfTlError, match="neither a finished run"):
        push_folder(tmp_path / "empty", "alice/x")
    (tmp_path / "empty" / "eval_results.json").write_text("{}")
    with pytest.raises(HfTlError, match="HF_HUB_OFFLINE=1"):  # the suite's own setting
        push_folder(tmp_path / "empty", "alice/x")


def test_a_missing_hub_run_says_so_offline(tmp_path):
    with pytest.raises(HfTlError, match="'someone/nothing' is not a local folder, and the Hub is switched off"):
        hf_tl.load_run("someone/nothing")


@pytest.mark.real_data
def test_a_run_from_the_hub_cannot_switch_on_remote_code(hub, finished_run):
    config = finished_run / "config.yaml"
    config.write_text(config.read_text().replace("trust_remote_code: false", "trust_remote_code: true"))
    push_folder(finished_run, "mallory/run")
    assert hf_tl.load_run("mallory/run").config.model.trust_remote_code is False
    # A local run's files cannot switch it on either; only the caller's argument does.
    assert hf_tl.load_run(finished_run).config.model.trust_remote_code is False
    assert hf_tl.load_run(finished_run, trust_remote_code=True).config.model.trust_remote_code is True


def test_push_to_hub_needs_a_repo_name():
    from hf_tl.config import TrainArguments

    with pytest.raises(HfTlError, match="push_to_hub needs hub_model_id"):
        TrainArguments(push_to_hub=True)


@pytest.mark.real_data
def test_push_uploads_only_regular_files_inside_the_run(hub, finished_run, tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the Hub\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.key").write_text("key\n")
    (finished_run / "notes.txt").symlink_to(secret)
    (finished_run / "linked_folder").symlink_to(outside)
    (finished_run / "heads" / "inner_link.safetensors").symlink_to(finished_run / "heads" / "similarity.safetensors")
    os.mkfifo(finished_run / "pipe")
    push_folder(finished_run, "alice/links")
    uploaded = set(hub.repos["alice/links"].files)
    assert not {"notes.txt", "linked_folder/private.key", "heads/inner_link.safetensors", "pipe"} & uploaded
    assert "heads/similarity.safetensors" in uploaded and "config.yaml" in uploaded
    assert b"not for the Hub" not in b"".join(hub.repos["alice/links"].files.values())
    out = capsys.readouterr().out
    assert ("not uploading 4 entries that are not regular files inside the run (symbolic links and the like): "
            "heads/inner_link.safetensors, linked_folder, notes.txt, pipe") in out


@pytest.mark.real_data
def test_a_hub_load_says_where_the_run_came_from(hub, finished_run, capsys):
    push_folder(finished_run, "alice/where")
    capsys.readouterr()
    hf_tl.load_run("alice/where")
    assert "loaded run 'alice/where' from the Hugging Face Hub (no local folder of that name)" in \
        capsys.readouterr().err
