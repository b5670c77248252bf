"""Zero-shot classification: label descriptions (encoder), label-word likelihood (decoder) and NLI entailment."""

import json

import numpy as np
import pytest
import torch
from conftest import SST2_ARGS, run_recipe, train_argv

import hf_tl
from hf_tl.data.loading import read_file, resolve_data_file
from hf_tl.embed import embed_texts
from hf_tl.errors import HfTlError
from hf_tl.run_dir import RESULTS_FILE

DEV = 24
TEMPLATE = "Review: {text}\nSentiment:"


def sst2_dev(n: int = DEV):
    rows = read_file(resolve_data_file("sst2/dev.tsv", None), None).select(range(n))
    return list(rows["sentence"]), np.array([int(label) for label in rows["label"]])


def zero_shot_args(model: str, out, *extra: str) -> list[str]:
    return ["--model_name_or_path", model, *SST2_ARGS, "--max_eval_samples", str(DEV), "--strategy", "zero_shot",
            "--output_dir", str(out), *extra]


@pytest.mark.real_data
def test_label_description_ranks_labels_by_cosine(tiny_bert, tmp_path):
    out = tmp_path / "run"
    descriptions = ["a bad film", "a great film"]
    results = run_recipe(zero_shot_args(tiny_bert, out, "--label_descriptions", *descriptions), recipe="sentiment")
    run = hf_tl.load_run(out)
    texts, labels = sst2_dev()
    text_emb = embed_texts(run.model, run.tokenizer, texts, 128, normalize=True)
    label_emb = embed_texts(run.model, run.tokenizer, descriptions, 128, normalize=True)
    expected = (text_emb @ label_emb.T).argmax(-1)
    assert [["negative", "positive"].index(p) for p in run.predict(texts)] == expected.tolist()
    assert results["eval_accuracy"] == pytest.approx(float((expected == labels).mean()))
    head = run.model.heads["classification"].net[-1]
    assert torch.allclose(head.weight, torch.from_numpy(label_emb), atol=1e-5) and not head.bias.any()
    assert json.loads((out / "trainable_parameters.json").read_text())["trainable"] == 0


@pytest.mark.real_data
def test_label_likelihood_equals_the_language_model_logits_of_the_label_words(tiny_gpt2, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    run_recipe(zero_shot_args(tiny_gpt2, out, "--prompt_template", TEMPLATE, "--label_descriptions", "bad", "good"),
               recipe="sentiment")
    texts, _ = sst2_dev(6)
    scores = hf_tl.load_run(out).predict_raw(texts)
    # The reference: the causal LM itself (GPT-2 ties its output layer to the input embeddings).
    lm = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    tok = AutoTokenizer.from_pretrained(tiny_gpt2)
    word_ids = [tok(" bad")["input_ids"][0], tok(" good")["input_ids"][0]]
    for text, row in zip(texts, scores):
        ids = tok(TEMPLATE.replace("{text}", text), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            next_token = lm(ids).logits[0, -1]
        np.testing.assert_allclose(row, next_token[word_ids].numpy(), atol=1e-4)


@pytest.mark.real_data
def test_nli_matches_the_transformers_zero_shot_pipeline(tiny_nli, tmp_path):
    from transformers import pipeline

    out = tmp_path / "run"
    template = "This review is {}."
    results = run_recipe(zero_shot_args(tiny_nli, out, "--zero_shot_method", "nli", "--nli_hypothesis_template",
                                        template), recipe="sentiment")
    run = hf_tl.load_run(out)
    texts, labels = sst2_dev()
    logits = run.predict_raw(texts)
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    classifier = pipeline("zero-shot-classification", model=tiny_nli, tokenizer=tiny_nli, device="cpu")
    for text, row in zip(texts[:6], probs):
        ref = classifier(text, candidate_labels=["negative", "positive"], hypothesis_template=template)
        np.testing.assert_allclose(row, [ref["scores"][ref["labels"].index(n)] for n in ("negative", "positive")],
                                   atol=1e-5)
    assert results["eval_accuracy"] == pytest.approx(float((logits.argmax(-1) == labels).mean()))
    assert set(run.predict(texts[:4])) <= {"negative", "positive"}
    assert (out / "config.yaml").is_file() and (out / "tokenizer").is_dir()
    assert json.loads((out / RESULTS_FILE).read_text())["eval_samples"] == DEV


@pytest.mark.real_data
def test_nli_with_a_gpt2_checkpoint_pads_batches_without_changing_scores(tiny_gpt2, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, GPT2Config

    nli = tmp_path / "gpt2_nli"
    torch.manual_seed(2)
    config = GPT2Config.from_pretrained(tiny_gpt2, num_labels=2, id2label={0: "entailment", 1: "not_entailment"},
                                        label2id={"entailment": 0, "not_entailment": 1})
    AutoModelForSequenceClassification.from_config(config).save_pretrained(nli)
    AutoTokenizer.from_pretrained(tiny_gpt2).save_pretrained(nli)  # no pad token, as GPT-2 ships
    out = tmp_path / "run"
    run_recipe(zero_shot_args(str(nli), out, "--zero_shot_method", "nli"), recipe="sentiment")
    texts, _ = sst2_dev(5)
    batched = hf_tl.load_run(out).predict_raw(texts, batch_size=64)
    one_by_one = np.concatenate([hf_tl.load_run(out).predict_raw([t], batch_size=2) for t in texts[:2]])
    np.testing.assert_allclose(batched[:2], one_by_one, atol=1e-5)


@pytest.mark.real_data
def test_nli_under_two_processes_scores_each_text_once(tiny_nli, tmp_path):
    from conftest import launch_two_processes

    one, two = tmp_path / "one", tmp_path / "two"
    run_recipe(zero_shot_args(tiny_nli, one, "--zero_shot_method", "nli"), recipe="sentiment")
    launch_two_processes("sentiment", zero_shot_args(tiny_nli, two, "--zero_shot_method", "nli",
                                                     "--max_eval_samples", "23"), tmp_path)
    first, second = (json.loads((d / RESULTS_FILE).read_text()) for d in (one, two))
    assert second["eval_samples"] == 23 and second["num_processes"] == 2
    texts, labels = sst2_dev(23)
    logits = hf_tl.load_run(one).predict_raw(texts)
    assert second["eval_accuracy"] == pytest.approx(float((logits.argmax(-1) == labels).mean()))
    assert first["eval_samples"] == DEV


@pytest.mark.real_data
@pytest.mark.parametrize("model, flags, message", [
    ("bert", ["--zero_shot_method", "label_likelihood", "--prompt_template", TEMPLATE], "needs a GPT-style decoder"),
    ("gpt2", ["--zero_shot_method", "label_likelihood"], "needs a prompt_template"),
    ("gpt2", ["--prompt_template", TEMPLATE, "--pooling", "mean"], "set pooling last"),
    ("gpt2", ["--prompt_template", TEMPLATE, "--label_descriptions", "very good", "very bad"], "share their first"),
    ("bert", ["--zero_shot_method", "nli"], "have no 'entailment'"),
    ("bert", ["--zero_shot_method", "cosine"], "cosine scores pairs"),
    ("bert", ["--head_type", "mlp"], "set head_type linear"),
    ("bert", ["--label_descriptions", "one", "two", "three"], "give one description per label"),
])
def test_zero_shot_refusals(tiny_bert, tiny_gpt2, tmp_path, model, flags, message):
    path = tiny_bert if model == "bert" else tiny_gpt2
    with pytest.raises(HfTlError, match=message):
        train_argv(zero_shot_args(path, tmp_path / "run", *flags))


@pytest.mark.real_data
def test_pair_tasks_refuse_label_descriptions_and_nli(tiny_bert, tiny_nli, tmp_path):
    from conftest import MRPC_ARGS

    base = ["--max_eval_samples", "8", "--strategy", "zero_shot", "--output_dir", str(tmp_path / "run")]
    with pytest.raises(HfTlError, match="has pairs"):
        train_argv(["--model_name_or_path", tiny_bert, *MRPC_ARGS, *base], "pair_classification")
    with pytest.raises(HfTlError, match="classifies one text"):
        train_argv(["--model_name_or_path", tiny_nli, *MRPC_ARGS, *base, "--zero_shot_method", "nli"],
                   "pair_classification")


def test_prompt_template_must_name_the_text():
    from hf_tl.config import DataArguments

    with pytest.raises(HfTlError, match="must contain {text}"):
        DataArguments(prompt_template="Review:")


@pytest.mark.real_data
def test_label_description_under_two_processes_matches_one(tiny_bert, tmp_path):
    from conftest import launch_two_processes

    one, two = tmp_path / "one", tmp_path / "two"
    first = run_recipe(zero_shot_args(tiny_bert, one), recipe="sentiment")
    launch_two_processes("sentiment", zero_shot_args(tiny_bert, two), tmp_path)
    second = json.loads((two / RESULTS_FILE).read_text())
    assert second["num_processes"] == 2 and second["eval_samples"] == DEV
    assert second["eval_accuracy"] == pytest.approx(first["eval_accuracy"])
