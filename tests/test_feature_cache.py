"""The feature cache of frozen runs: no backbone calls once cached, keys that change with every input, corrupt
entries rebuilt, the same head as without the cache, and one build under a 2-process launch."""

import json

import pytest
import torch
from conftest import launch_two_processes, run_recipe, tiny_args
from transformers import BertModel

from hf_tl.feature_cache import MANIFEST, compute_features
from hf_tl.run_dir import RESULTS_FILE

FROZEN = ["--strategy", "frozen", "--per_device_eval_batch_size", "64"]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty feature cache for this test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("HF_TL_FEATURE_CACHE", str(path))
    return path


@pytest.fixture
def forward_calls(monkeypatch):
    """Count BertModel forward calls."""
    calls = []
    original = BertModel.forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BertModel, "forward", counting)
    return calls


def run_frozen(model, out, *extra, train=16, dev=8) -> dict:
    run_recipe(tiny_args(model, out, *FROZEN, *extra, train=train, dev=dev))
    return json.loads((out / RESULTS_FILE).read_text())


@pytest.mark.real_data
def test_later_epochs_and_runs_make_no_backbone_forward_calls(tiny_bert, tmp_path, cache_dir, forward_calls):
    first = run_frozen(tiny_bert, tmp_path / "a", "--num_train_epochs", "3")
    # One forward pass per split to build the cache (16 train + 8 dev rows, 64 per pass), none for 3 epochs.
    assert len(forward_calls) == 2
    assert first["feature_cache"] == {"similarity/train": "built", "similarity/validation": "built"}
    forward_calls.clear()
    second = run_frozen(tiny_bert, tmp_path / "b", "--num_train_epochs", "3")
    assert forward_calls == []
    assert second["feature_cache"] == {"similarity/train": "hit", "similarity/validation": "hit"}
    assert second["eval_spearmanr"] == pytest.approx(first["eval_spearmanr"], abs=1e-6)
    assert len([p for p in cache_dir.iterdir()]) == 2  # no temporary folders left behind


def perturbed_copy(path: str, out) -> str:
    """The same checkpoint with one weight changed, at another path."""
    model = BertModel.from_pretrained(path)
    with torch.no_grad():
        model.encoder.layer[0].output.dense.weight[0, 0] += 0.01
    model.save_pretrained(out)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(path).save_pretrained(out)
    return str(out)


@pytest.mark.real_data
def test_every_part_of_the_key_invalidates_the_cache(tiny_bert, tmp_path, cache_dir):
    assert run_frozen(tiny_bert, tmp_path / "base")["feature_cache"]["similarity/train"] == "built"
    assert run_frozen(tiny_bert, tmp_path / "same")["feature_cache"]["similarity/train"] == "hit"
    changes = {"pooling": ["--pooling", "cls"], "layer": ["--layer", "second_to_last"],
               "max_length": ["--max_length", "16"], "padding_side": ["--padding_side", "left"]}
    for name, flags in changes.items():
        status = run_frozen(tiny_bert, tmp_path / name, *flags)["feature_cache"]
        assert status["similarity/train"] == "built", name
    # Other data: more train rows (the dev split is unchanged, so it is a hit).
    status = run_frozen(tiny_bert, tmp_path / "data", train=24)["feature_cache"]
    assert status == {"similarity/train": "built", "similarity/validation": "hit"}
    # Other weights (the key hashes them, not the path).
    other = perturbed_copy(tiny_bert, tmp_path / "other_ckpt")
    status = run_frozen(other, tmp_path / "ckpt")["feature_cache"]
    assert status == {"similarity/train": "built", "similarity/validation": "built"}


@pytest.mark.real_data
def test_a_truncated_cache_file_is_rebuilt_not_used(tiny_bert, tmp_path, cache_dir, forward_calls):
    first = run_frozen(tiny_bert, tmp_path / "a")
    entry = next(p for p in cache_dir.iterdir() if json.loads((p / MANIFEST).read_text())["parts"]["rows"] == 16)
    arrow = next(entry.rglob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    forward_calls.clear()
    with pytest.warns(UserWarning, match="incomplete or corrupt; rebuilding"):
        second = run_frozen(tiny_bert, tmp_path / "b")
    assert second["feature_cache"] == {"similarity/train": "built", "similarity/validation": "hit"}
    assert len(forward_calls) == 1
    assert second["eval_spearmanr"] == pytest.approx(first["eval_spearmanr"], abs=1e-6)
    # An entry without its manifest (a writer killed before finishing) is rebuilt too.
    (entry / MANIFEST).unlink()
    with pytest.warns(UserWarning, match="rebuilding"):
        assert run_frozen(tiny_bert, tmp_path / "c")["feature_cache"]["similarity/train"] == "built"


@pytest.mark.real_data
@pytest.mark.parametrize("architecture", ["cross_encoder", "bi_encoder"])
def test_frozen_with_and_without_the_cache_trains_the_same_head(tiny_model, tmp_path, cache_dir, architecture):
    flags = ["--architecture", architecture, "--num_train_epochs", "2"]
    if architecture == "bi_encoder":
        flags += ["--head_type", "linear"]
    plain = run_frozen(tiny_model, tmp_path / "plain", *flags, "--cache_features", "false")
    cached = run_frozen(tiny_model, tmp_path / "cached", *flags)
    assert "feature_cache" not in plain and cached["feature_cache"]["similarity/train"] == "built"
    for key in ("eval_spearmanr", "eval_pearsonr"):
        assert cached[key] == pytest.approx(plain[key], abs=1e-4)
    from safetensors.torch import load_file

    heads_plain = load_file(next((tmp_path / "plain" / "heads").glob("*.safetensors")))
    heads_cached = load_file(next((tmp_path / "cached" / "heads").glob("*.safetensors")))
    assert heads_plain.keys() == heads_cached.keys()
    for name in heads_plain:
        torch.testing.assert_close(heads_cached[name], heads_plain[name], atol=1e-5, rtol=1e-4)


def test_length_sorted_feature_computation_matches_one_batch(tiny_model):
    from hf_tl import RunConfig
    from hf_tl.builder import build
    from hf_tl.data import PaddingCollator

    config = RunConfig.from_flat_dict({"model_name_or_path": tiny_model, "strategy": "frozen",
                                       "layer": "weighted"})  # all three hidden states of the 2-block model
    built = build(config)
    from datasets import Dataset

    texts = ["a short one", "a much longer sentence with many more words in it than the others", "mid length text",
             "x"]
    tok = built.backbone.tokenizer
    dataset = Dataset.from_dict(dict(tok(texts, truncation=True, max_length=32)))
    collate = PaddingCollator(tok.pad_token_id, tok.padding_side)
    cached = compute_features(built.model, dataset, collate, batch_size=2, device="cpu")["features"]
    built.model.eval()
    with torch.no_grad():
        whole = built.model.encode_layers(**collate([dataset[i] for i in range(len(texts))]))
    torch.testing.assert_close(torch.from_numpy(cached), whole, atol=1e-5, rtol=1e-4)


@pytest.mark.real_data
def test_two_processes_build_the_cache_once(tiny_bert, tmp_path, cache_dir):
    argv = tiny_args(tiny_bert, tmp_path / "run", *FROZEN, "--per_device_train_batch_size", "4", train=32, dev=16)
    proc = launch_two_processes("text_similarity", argv, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert "[process 0] feature cache: similarity/train built, similarity/validation built" in out
    assert "[process 1] feature cache: similarity/train hit, similarity/validation hit" in out
    assert len(list(cache_dir.iterdir())) == 2
    results = json.loads((tmp_path / "run" / RESULTS_FILE).read_text())
    assert results["num_processes"] == 2 and results["eval_samples"] == 16
