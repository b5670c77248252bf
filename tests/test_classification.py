"""Paraphrase (pair classification) and sentiment (classification) recipes: data as it lies, labels, prediction."""

import csv
import json

import pytest
from conftest import DATA_DIR, MRPC_ARGS, SST2_ARGS, cases, run_recipe, tiny_args

import hf_tl
from hf_tl.cli import main as cli_main
from hf_tl.config import DataArguments
from hf_tl.tasks import ClassificationTask, PairClassificationTask

STRATEGIES = ["frozen", "partial", "full", "gradual", "lora", "ia3", "prompt_tuning", "prefix_tuning"]


def read_tsv(path, rows):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row for _, row in zip(range(rows), reader)]


def accuracy(predicted, gold):
    return sum(p == g for p, g in zip(predicted, gold)) / len(gold)


@pytest.mark.real_data
def test_paraphrase_recipe_reads_mrpc_as_it_lies_and_predicts_label_names(tiny_model, tmp_path):
    out = tmp_path / "mrpc"
    results = run_recipe(tiny_args(tiny_model, out, "--strategy", "full", train=32, dev=20, data=MRPC_ARGS),
                         recipe="paraphrase")
    assert {"eval_accuracy", "eval_f1"} <= set(results) and results["eval_samples"] == 20
    config = hf_tl.load_config(out / "config.yaml")
    assert config.data.task == "pair_classification" and config.data.label_names == ["0", "1"]
    run = hf_tl.load_run(out)
    dev = read_tsv(DATA_DIR / "mrpc" / "dev.tsv", 20)
    predicted = run.predict([(r["#1 String"], r["#2 String"]) for r in dev])
    assert set(predicted) <= {"0", "1"}
    # Reloaded from the run directory, the model reproduces the dev accuracy it was selected with.
    assert accuracy(predicted, [r["Quality"] for r in dev]) == pytest.approx(results["eval_accuracy"])


@pytest.mark.real_data
def test_sentiment_recipe_keeps_label_names_and_predicts_them(tiny_model, tmp_path):
    out = tmp_path / "sst2"
    results = run_recipe(tiny_args(tiny_model, out, "--strategy", "lora", train=32, dev=20, data=SST2_ARGS),
                         recipe="sentiment")
    run = hf_tl.load_run(out)
    dev = read_tsv(DATA_DIR / "sst2" / "dev.tsv", 20)
    predicted = run.predict([r["sentence"] for r in dev])
    assert set(predicted) <= {"negative", "positive"}
    gold = [["negative", "positive"][int(r["label"])] for r in dev]
    assert accuracy(predicted, gold) == pytest.approx(results["eval_accuracy"])


@pytest.mark.real_data
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_trains_a_classifier_on_both_families(tiny_model, tmp_path, strategy):
    extra = {"partial": ["--num_layers", "1"], "gradual": ["--unfreeze_every", "steps", "--unfreeze_steps", "1"],
             "prompt_tuning": ["--num_virtual_tokens", "4"], "prefix_tuning": ["--num_virtual_tokens", "4"]}
    out = tmp_path / strategy
    run_recipe(tiny_args(tiny_model, out, "--strategy", strategy, *extra.get(strategy, []), "--num_train_epochs",
                         "2", train=16, dev=8, data=SST2_ARGS), recipe="sentiment")
    log = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(0.0 <= r["accuracy"] <= 1.0 for r in log)
    assert hf_tl.load_run(out).predict(["fine", "bad"]) and (out / "heads" / "classification.safetensors").is_file()


def test_any_number_of_labels_named_from_the_data(tiny_bert, tmp_path):
    rows = [("great fun", "positive"), ("dull and slow", "negative"), ("it is a film", "neutral")] * 6
    for name in ("train", "dev"):
        with open(tmp_path / f"{name}.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "sentiment"])
            writer.writerows(rows)
    out = tmp_path / "three"
    results = run_recipe(tiny_args(tiny_bert, out, "--train_file", str(tmp_path / "train.csv"), "--validation_file",
                                   str(tmp_path / "dev.csv"), "--text_column", "text", "--label_column", "sentiment",
                                   "--num_train_epochs", "15", "--learning_rate", "1e-2", train=18, dev=18, data=[]),
                         recipe="sentiment")
    assert hf_tl.load_config(out / "config.yaml").data.label_names == ["negative", "neutral", "positive"]
    assert results["eval_accuracy"] == 1.0  # three texts, each seen six times: learnable
    assert hf_tl.load_run(out).predict(["great fun", "dull and slow", "it is a film"]) == \
        ["positive", "negative", "neutral"]


def test_label_names_come_from_a_hub_class_label_column():
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    train = Dataset.from_dict({"sentence": ["a", "b"], "label": [0, 1]}, features=features)
    data = ClassificationTask.resolve(DataArguments(task="classification", dataset_name="glue"), {"train": train})
    assert data.label_names == ["negative", "positive"] and data.text_column == "sentence"
    pair = PairClassificationTask.resolve(DataArguments(task="pair_classification"))
    assert (pair.text_column, pair.text_pair_column, pair.label_column) == ("sentence1", "sentence2", "label")


@pytest.mark.real_data
def test_predict_command_writes_label_names_and_scores_labelled_rows(tiny_bert, tmp_path, capsys):
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, out, train=16, dev=8, data=SST2_ARGS), recipe="sentiment")
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"sentence": "a joy", "label": "positive"}\n{"sentence": "a bore", "label": 0}\n')
    cli_main(["predict", "--run", str(out), "--input", str(rows), "--output", str(tmp_path / "p.jsonl")])
    printed = capsys.readouterr().out
    assert "accuracy=" in printed and "f1=" in printed
    written = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["prediction"] in ("negative", "positive") for r in written] == [True, True]


@pytest.mark.real_data
@pytest.mark.real_model
def test_real_minilm_paraphrase_and_sentiment_for_a_few_steps(minilm, tmp_path):
    for recipe, data in (("paraphrase", MRPC_ARGS), ("sentiment", SST2_ARGS)):
        out = tmp_path / recipe
        results = run_recipe(tiny_args(minilm, out, "--max_steps", "3", "--learning_rate", "5e-5", train=48, dev=32,
                                       data=data), recipe=recipe)
        assert results["best_step"] == 3 and 0.0 <= results["eval_accuracy"] <= 1.0
        assert len(hf_tl.load_run(out).predict([("a", "b")] if recipe == "paraphrase" else ["a"])) == 1


BAD_INPUTS = {
    "text-column-holds-labels": (["--text_column", "Quality", "--label_column", "#1 String", "--label_names", "no",
                                  "yes"],
                                 "Column 'Quality' of the train data holds only numbers, not text; check text_column"),
    "label-column-holds-ids": (["--label_column", "#1 ID"],
                               "Label column '#1 ID' has 3\\d{3} distinct values, which looks like text or scores"),
    "same-column-twice": (["--text_pair_column", "#1 String"],
                          "text_column, text_pair_column and label_column must be different columns"),
    "hub-dataset-offline": (["--dataset_name", "glue", "--dataset_config_name", "mrpc"],
                            "Cannot load dataset 'glue' from the Hub while offline"),
}


@pytest.mark.parametrize("flags, message", cases(BAD_INPUTS, real_data={"text-column-holds-labels",
                                                                        "label-column-holds-ids"}))
def test_mixed_up_column_mappings_are_named(tiny_bert, tmp_path, capsys, flags, message):
    argv = tiny_args(tiny_bert, tmp_path / "out", train=16, dev=8, data=MRPC_ARGS) + flags
    with pytest.raises(SystemExit):
        run_recipe(argv, recipe="paraphrase")
    expect_user_error_output(capsys, message)


def expect_user_error_output(capsys, message):
    import re

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("hf_tl error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert re.search(message, lines[0]), lines[0]


def test_a_label_the_run_never_saw_is_an_error_in_dev_data_and_at_predict_time(tiny_bert, tmp_path, capsys):
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    train.write_text("sentence,label\ngood,pos\nbad,neg\nfine,pos\n")
    dev.write_text("sentence,label\ngood,pos\nbad,neg\nso-so,neutral\n")
    flags = ["--train_file", str(train), "--validation_file", str(dev)]
    with pytest.raises(SystemExit):
        run_recipe(tiny_args(tiny_bert, tmp_path / "a", *flags, data=[]), recipe="sentiment")
    expect_user_error_output(capsys, "Row 3 of the validation data has label 'neutral' in column 'label', which is "
                                     "not one of the run's labels \\(neg, pos\\)")
    odd = tmp_path / "odd.csv"
    odd.write_text("sentence,label\ngood,pos\nhm,maybe\n")
    with pytest.raises(SystemExit):
        run_recipe(tiny_args(tiny_bert, tmp_path / "b", "--train_file", str(odd), "--validation_file", str(dev),
                             "--label_names", "neg", "pos", data=[]), recipe="sentiment")
    expect_user_error_output(capsys, "Row 2 of the train data has label 'maybe' in column 'label'")
    out = tmp_path / "ok"
    run_recipe(tiny_args(tiny_bert, out, "--train_file", str(train), "--validation_file", str(train), data=[]),
               recipe="sentiment")
    rows = tmp_path / "rows.csv"
    rows.write_text("sentence,label\nnice,pos\nmeh,meh\n")
    with pytest.raises(SystemExit):
        cli_main(["predict", "--run", str(out), "--input", str(rows), "--output", str(tmp_path / "p.csv")])
    expect_user_error_output(capsys, "Row 2 of the 'rows.csv' data has label 'meh'|Row 2 of the .*rows.csv' data has "
                                     "label 'meh'")
    assert not (tmp_path / "p.csv").exists()


def test_a_one_text_task_refuses_a_pair_column():
    with pytest.raises(hf_tl.HfTlError, match="reads one text, but text_pair_column is set"):
        ClassificationTask.resolve(DataArguments(task="classification", text_pair_column="sentence2"))
