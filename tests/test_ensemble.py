"""hf-tl ensemble: finished runs that predict together, as one run directory that loads, predicts and is scored
on dev by its own predictions."""

import json

import numpy as np
import pytest
from conftest import SST2_ARGS, run_recipe, tiny_args

import hf_tl
from hf_tl.cli import main as cli
from hf_tl.errors import HfTlError
from hf_tl.runs.ensemble import combine, fit_weights
from hf_tl.runs.predictions import split_predictions

PAIRS = [("A man is playing a guitar.", "A man plays the guitar."), ("A cat sleeps.", "The stock market fell.")]


@pytest.fixture(scope="module")
def members(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    run_recipe(tiny_args(tiny_bert, root / "cross", train=24, dev=12))
    run_recipe(tiny_args(tiny_bert, root / "bi", "--architecture", "bi_encoder", "--head_type", "none", train=24,
                         dev=12))
    return root


@pytest.mark.real_data
def test_an_ensemble_of_one_run_twice_predicts_what_the_run_predicts(members, tmp_path):
    out = hf_tl.make_ensemble([members / "cross", members / "cross"], tmp_path / "twice")
    single, ensemble = hf_tl.load_run(members / "cross"), hf_tl.load_run(out)
    np.testing.assert_allclose(ensemble.predict_raw(PAIRS), single.predict_raw(PAIRS), rtol=1e-5)
    # Its dev metric is its own predictions' (on the dev split it names), and the members' weights are equal.
    predictions, targets = split_predictions(out)
    results = json.loads((out / "eval_results.json").read_text())
    evaluator = next(iter(ensemble.tasks.values())).evaluator()
    assert results["eval_spearmanr"] == pytest.approx(evaluator(predictions, targets)["spearmanr"], abs=1e-6)
    spec = json.loads((out / "ensemble.json").read_text())
    assert [m["weight"] for m in spec["members"]] == [0.5, 0.5]


@pytest.mark.real_data
def test_a_bi_and_a_cross_encoder_with_dev_weights(members, tmp_path, capsys, hub):
    out = tmp_path / "mixed"
    cli(["ensemble", str(members / "bi"), str(members / "cross"), "--output_dir", str(out), "--weights", "dev"])
    assert "Run saved to" in capsys.readouterr().out
    spec = json.loads((out / "ensemble.json").read_text())
    weights = [m["weight"] for m in spec["members"]]
    assert sum(weights) == pytest.approx(1.0) and min(weights) >= 0
    assert {m["architecture"] for m in spec["members"]} == {"bi_encoder", "cross_encoder"}
    run = hf_tl.load_run(out)
    scores = run.predict(PAIRS)
    assert len(scores) == 2 and all(0.0 - 5 <= s <= 10 for s in scores)
    card = (out / "README.md").read_text()
    assert "## Members" in card and "optimistic" in card and "`0-bi`" in card
    assert (out / "members" / "0-bi" / "eval_results.json").is_file()
    assert not (out / "members" / "0-bi" / "checkpoints").exists()  # members are copied without checkpoints
    # Pushed, it loads from the Hub and predicts as the local copy does.
    from hf_tl.hub import push_folder

    push_folder(out, "alice/tiny-ensemble")
    assert any(name.startswith("members/1-cross/") for name in hub.repos["alice/tiny-ensemble"].files)
    assert hf_tl.load_run("alice/tiny-ensemble").predict(PAIRS) == pytest.approx(scores, abs=1e-6)


def test_combine_averages_scores_and_class_probabilities():
    scores = combine([np.array([0.2, 0.8]), np.array([0.4, 0.6])], np.array([0.5, 0.5]))
    np.testing.assert_allclose(scores, [0.3, 0.7])
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    same = combine([logits, logits], np.array([0.5, 0.5]))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(np.exp(same), probabilities, rtol=1e-6)
    # Dev weights put the weight on the member that matches the targets.
    targets = np.linspace(0, 1, 20)
    weights = fit_weights([targets + 0.0, np.random.default_rng(0).random(20)], targets)
    assert weights[0] > 0.9


@pytest.mark.real_data
def test_members_that_do_not_share_a_task_are_refused(members, tiny_bert, tmp_path):
    run_recipe(tiny_args(tiny_bert, tmp_path / "sst2", train=24, dev=12, data=SST2_ARGS), recipe="sentiment")
    with pytest.raises(HfTlError, match="does task classification, but .* does similarity"):
        hf_tl.make_ensemble([members / "cross", tmp_path / "sst2"], tmp_path / "bad")
    with pytest.raises(HfTlError, match="is not a finished hf_tl run"):
        hf_tl.make_ensemble([members / "cross", tmp_path / "nothing"], tmp_path / "bad2")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()
