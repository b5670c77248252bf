"""hf-tl advise: each signal on constructed data whose answer is known, the matrix placement at each corner, the
written config, and the budget."""

import math

import numpy as np
import pytest
import torch
import yaml
from conftest import STSB_ARGS

from hf_tl.advisor import advise, signals
from hf_tl.advisor.reference import reference_sentences
from hf_tl.advisor.rules import (
    LITTLE_DATA_ROWS,
    RULES,
    SKIPPED_FOR_TIME,
    facts,
    recommend,
    sampling_error,
)
from hf_tl.errors import HfTlError


def test_identical_corpus_has_similarity_one_and_a_separate_one_zero():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 16))
    same = signals.domain_similarity(reference.copy(), reference, seed=0)
    assert same["similarity"] == pytest.approx(1.0, abs=0.05)
    assert same["centroid_cosine"] == pytest.approx(1.0)
    far = signals.domain_similarity(rng.normal(size=(200, 16)) + 3.0, reference, seed=0)
    assert far["similarity"] < 0.05 and far["classifier_accuracy"] > 0.97


def test_unknown_scripts_have_a_high_unknown_rate(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    english = signals.token_stats(tokenizer, ["the cat sat on the mat", "a good film about people"])
    assert english["unk_rate"] == 0.0 and english["tokens_per_word"] == pytest.approx(1.0)
    foreign = signals.token_stats(tokenizer, ["ᚠᚢᚦᚨᚱᚲ ᚷᚹᚺᚾ", "ꦲꦏ꧀ꦱꦫ ꦗꦮ"])  # runes and Javanese: not in the vocab
    assert foreign["unk_rate"] > 0.9


def test_perplexity_is_exp_of_the_mean_token_loss():
    losses = np.array([0.5, 1.5, 2.0, 4.0])
    assert signals.perplexity(losses) == pytest.approx(math.exp(2.0))
    assert signals.perplexity(np.array([3.0, 5.0]), np.array([2, 2])) == pytest.approx(math.exp(2.0))
    floor = signals.unigram_perplexity([[1, 1, 2]], np.array([1, 2]), vocab_size=4)  # add-one: p = 3/7, 2/7
    assert floor == pytest.approx(math.exp(-(math.log(3 / 7) + math.log(2 / 7)) / 2))
    assert signals.knowledge(floor, floor) == pytest.approx(0.0)


def test_lm_probe_perplexity_matches_the_decoder_by_hand(tiny_gpt2):
    from transformers import AutoModel, AutoTokenizer

    from hf_tl.advisor.lm_probe import lm_perplexities

    model, tokenizer = AutoModel.from_pretrained(tiny_gpt2).eval(), AutoTokenizer.from_pretrained(tiny_gpt2)
    texts = ["the cat sat on the mat", "a film about two people and a dog"]
    out = lm_perplexities(model, tokenizer, tiny_gpt2, texts, [], texts, texts, 32, is_decoder=True,
                          random_init=False, fit_steps=0, seed=0, deadline=0.0)
    losses = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            logits = model(input_ids=ids).last_hidden_state @ model.get_input_embeddings().weight.T
            losses.append(torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="none"))
    assert out["pretrained_head"] and out["fit_steps"] == 0
    assert out["task_ppl"] == pytest.approx(math.exp(torch.cat(losses).mean().item()), rel=1e-5)
    assert out["ppl_ratio"] == pytest.approx(1.0)


def test_learning_curve_rises_on_separable_features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    x = rng.normal(size=(600, 8)) + y[:, None] * 1.0  # Bayes accuracy 0.92

    def accuracy(predictions, references):
        return float((predictions.argmax(-1) == references).mean())

    sizes = signals.curve_sizes(400)
    assert sizes[0] == 32 and sizes[-1] == 400
    curve = signals.linear_curve(x[:400], y[:400], x[400:], y[400:], sizes, accuracy, regression=False)
    assert curve[-1]["mean"] > 0.85 and curve[-1]["mean"] >= curve[0]["mean"]
    assert signals.curve_slope(curve) == pytest.approx(
        (curve[-1]["mean"] - curve[-2]["mean"]) / math.log2(curve[-1]["rows"] / curve[-2]["rows"]))


def test_data_size_counts_rows_per_label_and_score_bin():
    classes = signals.data_size([0, 0, 1, 2, 2, 2], regression=False, lengths=[3, 4, 5, 6, 7, 8])
    assert classes["groups"] == {"0": 2, "1": 1, "2": 3} and classes["min_per_group"] == 1
    scores = signals.data_size([0.0, 1.0, 2.5, 5.0], regression=True, lengths=[1, 2, 3, 4])
    assert sum(scores["groups"].values()) == 4 and scores["groups"]["bin 5"] == 1


def evidence(rows=5000, knowledge=0.5, ratio=1.5, zero=0.70, probe=0.75, random_init=False, regression=False,
             sentence_transformers=False, decoder=False, unk=0.0):
    """Hand-made measurements, as hf_tl.advisor.measure returns them."""
    return {"task": {"metric": "accuracy", "greater_is_better": True, "regression": regression, "pair": False,
                     "dev_rows": 500},
            "backbone": {"random_init": random_init, "sentence_transformers": sentence_transformers,
                         "decoder": decoder, "nli": False},
            "data": {"rows": rows, "groups": {"0": rows // 2, "1": rows - rows // 2}},
            "tokenizer": {"task": {"unk_rate": unk, "tokens_per_word": 1.2},
                          "reference": {"unk_rate": 0.0, "tokens_per_word": 1.1}},
            "lm": {"pretrained_head": True, "task_knowledge": knowledge, "ppl_ratio": ratio},
            "zero_shot_run": {"score": zero},
            "curve": [{"rows": 100, "mean": probe - 0.02, "std": 0.01}, {"rows": 200, "mean": probe, "std": 0.01}],
            "speed": {"texts_per_s": 100.0, "load_s": 2.0}}


@pytest.mark.parametrize("case, quadrant, top", [
    (dict(rows=100), "little data, similar domain", "setfit"),
    (dict(rows=50_000), "lots of data, similar domain", "full"),
    (dict(rows=50_000, knowledge=0.05), "lots of data, dissimilar domain", "full"),
    (dict(rows=100, knowledge=0.05), "little data, dissimilar domain", "full"),
    (dict(rows=100, unk=0.2), "little data, dissimilar domain", "full"),
    (dict(rows=100, random_init=True), "dissimilar", "features"),
    (dict(rows=50_000, random_init=True), "dissimilar", "full"),
    (dict(rows=200, regression=True, sentence_transformers=True, zero=0.86, probe=0.3),
     "little data, similar domain", "full"),
    (dict(rows=200, decoder=True, zero=0.78, probe=0.70), "little data, similar domain", "zero_shot"),
])
def test_matrix_placement_at_each_corner(case, quadrant, top):
    advice = recommend(evidence(**case))
    assert advice["quadrant"] == quadrant
    assert advice["options"][0]["strategy"] == top
    assert all(o["cost_s"] > 0 for o in advice["options"])
    if "dissimilar" in quadrant and case["rows"] < LITTLE_DATA_ROWS:
        assert advice["stop"]  # in trouble, or random weights: it says what to do first


def test_a_clearly_better_measurement_outranks_the_table_order():
    # Little data, similar: the table puts setfit first and zero-shot last; a zero-shot score far above what the
    # linear head predicts for setfit comes first, and the advice says to try it first.
    assert recommend(evidence(rows=100))["options"][0]["strategy"] == "setfit"
    advice = recommend(evidence(rows=100, zero=0.95, probe=0.60))
    assert advice["options"][0]["strategy"] == "zero_shot"
    assert "Zero-shot (0.9500) is within noise of or above" in advice["stop"]


@pytest.mark.parametrize("dev_rows, top", [(78, "zero_shot"), (2000, "features")])
def test_a_curve_on_few_dev_rows_does_not_overrule_the_table(dev_rows, top):
    # A decoder with 100 rows: the table puts zero-shot first. A linear head 0.06 above it on 78 dev rows is within
    # twice that score's sampling error (0.04 each); on 2,000 dev rows (0.008) it is not, and features moves up.
    measured = {**evidence(rows=100, decoder=True, zero=0.782, probe=0.846), "curve_dev_rows": dev_rows}
    facts_ = facts(measured)
    assert facts_["probe_se"] == pytest.approx((0.846 * 0.154 / dev_rows) ** 0.5)
    assert recommend(measured)["options"][0]["strategy"] == top


def test_zero_shot_skipped_for_time_stays_ranked_and_one_refused_is_dropped():
    skipped = {**evidence(rows=100, decoder=True), "zero_shot_run": {"score": None, "reason": SKIPPED_FOR_TIME}}
    top = recommend(skipped)["options"][0]
    assert top["strategy"] == "zero_shot" and top["predicted"] is None
    refused = {**evidence(rows=100, decoder=True), "zero_shot_run": {"score": None, "reason": "no zero-shot form"}}
    assert "zero_shot" not in [o["strategy"] for o in recommend(refused)["options"]]


def test_sampling_error_of_a_correlation_and_an_accuracy():
    assert sampling_error(0.8, 103, regression=True) == pytest.approx(0.036)
    assert sampling_error(0.5, 100, regression=False) == pytest.approx(0.05)
    assert sampling_error(0.9, 0, regression=False) == 0.0


def test_every_rule_cites_measurements_and_the_last_always_applies():
    assert all(rule.evidence and ".md" in rule.evidence for rule in RULES)
    assert RULES[-1].when(facts(evidence()))


def test_reference_sentences_cut_paragraphs_and_drop_wikitext_marks(tmp_path):
    path = tmp_path / "ref.tokens"
    path.write_text(" = Title = \n\nThe river is 3 @,@ 000 km long and well @-@ known . It flows into the sea here "
                    "today .\nA line with an <unk> word in it somewhere .\n")
    sentences = reference_sentences(path, 10, seed=0)
    assert sorted(sentences) == ["It flows into the sea here today .", "The river is 3,000 km long and well-known ."]
    with pytest.raises(HfTlError, match="no sentence"):
        (tmp_path / "empty.tokens").write_text(" = Only a heading = \n")
        reference_sentences(tmp_path / "empty.tokens", 10, seed=0)


@pytest.fixture
def config_file(tmp_path, tiny_bert):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_name_or_path": tiny_bert, "task": "similarity", "train_file": STSB_ARGS[1],
        "validation_file": STSB_ARGS[3], "column_names": STSB_ARGS[5], "max_train_samples": 120,
        "max_eval_samples": 40, "num_train_epochs": 1, "per_device_train_batch_size": 8,
        "output_dir": str(tmp_path / "run")}))
    return path


@pytest.mark.real_data
def test_advise_writes_advice_and_a_config_that_trains(config_file, corpus, tmp_path, capsys):
    from hf_tl.cli import main
    from hf_tl.config_io import parse_args
    from hf_tl.runs import train

    out = tmp_path / "advice"
    main(["advise", str(config_file), "--budget", "2", "--output_dir", str(out), "--reference_file",
          str(corpus / "train.tokens")])
    printed = capsys.readouterr().out
    assert "## Data size: little" in printed and f"train the top pick with hf-tl train --config {out}" in printed
    import json

    saved = json.loads((out / "advice.json").read_text())
    assert saved["evidence"]["data"]["rows"] == 120
    assert saved["evidence"]["zero_shot_run"]["score"] is not None  # a tiny BERT scores pairs by cosine
    assert saved["evidence"]["curve"] and saved["evidence"]["lm"]["fit_steps"] > 0  # no MLM head: fitted
    assert (out / "learning_curve.png").stat().st_size > 0
    written = (out / "recommended.yaml").read_text()
    assert written.startswith(f"# hf-tl train --config {out / 'recommended.yaml'}")
    config = parse_args(["--config", str(out / "recommended.yaml"), "--max_steps", "2"])
    assert config.strategy.strategy == saved["advice"]["options"][0]["strategy"]
    results = train(config)
    assert f"eval_{saved['evidence']['task']['metric']}" in results


@pytest.mark.real_data
def test_advise_respects_its_budget(config_file, corpus, tmp_path):
    # A budget too small for any optional measurement: each is skipped, saying why, and the advice still comes.
    result = advise(str(config_file), budget_minutes=0.001, output_dir=str(tmp_path / "advice"),
                    reference_file=str(corpus / "train.tokens"), say=lambda line: None)
    evidence = result["evidence"]
    assert set(evidence["skipped"]) == {"zero_shot_run", "curve", "lm", "domain"}
    assert evidence["wall_s"] < 0.001 * 60 + 5  # only the data reading and the backbone load, which always happen
    assert result["advice"]["options"]


def test_advise_refuses_a_bad_budget_and_a_missing_reference(config_file, tmp_path):
    import hf_tl

    assert hf_tl.advise is advise  # the notebook entry point
    with pytest.raises(HfTlError, match="--budget must be a positive"):
        advise(str(config_file), budget_minutes=0)
    with pytest.raises(HfTlError, match="No reference corpus at 'nowhere.tokens'.*--reference_file"):
        advise(str(config_file), output_dir=str(tmp_path / "a"), reference_file="nowhere.tokens")
