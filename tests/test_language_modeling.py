"""Language modelling (tasks masked_lm and causal_lm): masking, packing, the LM head, perplexity, the standard form,
and starting a task from a pretraining run."""

import json

import numpy as np
import pytest
import torch
from conftest import launch_two_processes, lm_args, log_of, pair_data, run_recipe
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from hf_tl.builder import build
from hf_tl.config_io import parse_args
from hf_tl.data import PaddingCollator
from hf_tl.data.lm_data import IGNORE_INDEX, LanguageModelingDataset, mask_tokens, pack_documents
from hf_tl.errors import HfTlError
from hf_tl.lm_head import standard_lm
from hf_tl.metrics import PerplexityEvaluator


def test_masking_follows_the_configured_rates_and_spares_special_and_padding_tokens():
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, 200_000)
    special = rng.random(len(ids)) < 0.1
    ids[special] = 101  # [CLS]
    inputs, targets = mask_tokens(ids, ids != 101, rng, 0.2, 0.7, 0.2, mask_id=103, vocab_size=30000)
    chosen = targets != IGNORE_INDEX
    assert not chosen[special].any() and (inputs[special] == 101).all()
    assert chosen[~special].mean() == pytest.approx(0.2, abs=0.005)
    assert (targets[chosen] == ids[chosen]).all()
    masked, kept = inputs[chosen] == 103, inputs[chosen] == ids[chosen]
    assert masked.mean() == pytest.approx(0.7, abs=0.01)
    assert kept.mean() == pytest.approx(0.1, abs=0.01)  # a random replacement equals the original 1 in 29,000
    assert (~masked & ~kept).mean() == pytest.approx(0.2, abs=0.01)
    assert (inputs[~chosen] == ids[~chosen]).all()


def test_whole_word_masking_chooses_all_tokens_of_a_word_together():
    rng = np.random.default_rng(1)
    starts = (rng.random(50_000) < 0.4).astype(int)
    starts[0] = 1
    ids = rng.integers(1000, 2000, len(starts))
    _, targets = mask_tokens(ids, np.ones(len(ids), bool), rng, 0.15, 0.8, 0.1, 103, 2000, word_starts=starts)
    word = np.cumsum(starts) - 1
    chosen = targets != IGNORE_INDEX
    per_word = np.bincount(word, weights=chosen) / np.bincount(word)
    assert set(np.unique(per_word)) <= {0.0, 1.0}
    assert per_word.mean() == pytest.approx(0.15, abs=0.01)


def test_rows_are_masked_by_seed_epoch_and_row_alone():
    from datasets import Dataset

    rows = Dataset.from_dict({"input_ids": [[101, *range(1000, 1030), 102]] * 4, "labels": [32] * 4})
    masking = (0.3, 0.8, 0.1, 103, 30000, False)
    a = LanguageModelingDataset(rows, True, {101, 102, 0}, masking, seed=7, train=True)
    b = LanguageModelingDataset(rows, True, {101, 102, 0}, masking, seed=7, train=True)
    assert [a[i] for i in range(4)] == [b[i] for i in range(4)]  # another process, or a resumed run, masks alike
    assert a[0]["lm_labels"] != a[1]["lm_labels"]  # rows differ
    first = a[0]
    a.set_epoch(1)
    assert a[0]["lm_labels"] != first["lm_labels"]  # every epoch masks afresh
    assert a[0]["lm_labels"][0] == a[0]["lm_labels"][-1] == IGNORE_INDEX  # [CLS] and [SEP] are never predicted
    dev = LanguageModelingDataset(rows, True, {101, 102, 0}, masking, seed=7, train=False)
    before = dev[2]
    dev.set_epoch(3)
    assert dev[2] == before  # held-out rows keep their masks, so perplexities compare across evaluations


def test_padding_is_never_a_target():
    batch = PaddingCollator(0)([{"input_ids": [5, 6, 7], "lm_labels": [5, -100, 7], "labels": 2},
                                {"input_ids": [5], "lm_labels": [5], "labels": 1}])
    assert batch["lm_labels"].tolist() == [[5, -100, 7], [5, -100, -100]]


def test_packing_keeps_document_boundaries_as_configured():
    docs = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10, 11, 12, 13, 14]]
    rows, _ = pack_documents(docs, 4, "concat", [0])
    assert sum(rows, []) == [1, 2, 3, 4, 5, 0, 6, 7, 0, 8, 9, 10, 11, 12, 13, 14][:16]  # EOS after each document
    assert all(len(r) == 4 for r in rows)
    rows, _ = pack_documents(docs, 4, "chunk", [0])
    assert rows == [[1, 2, 3, 4], [5], [6, 7], [8, 9, 10, 11], [12, 13, 14]]  # no row mixes two documents
    rows, starts = pack_documents(docs, 4, "none", [0], [[1] * 5, [1, 0], [1] * 7])
    assert rows == [[1, 2, 3, 4], [6, 7], [8, 9, 10, 11]] and starts[1] == [1, 0]


def test_causal_rows_join_documents_with_eos(tiny_gpt2, corpus):
    config = parse_args(lm_args(tiny_gpt2, corpus, "/tmp/unused", "causal_lm", "--packing", "concat"))
    built = build(config)
    task = built.tasks["causal_lm"]
    from datasets import Dataset

    docs = Dataset.from_dict({"text": ["a cat sat", "the dog slept here"]})
    packed = task.tokenize(docs)["input_ids"]
    tok = built.backbone.tokenizer
    expected = tok("a cat sat")["input_ids"] + [tok.eos_token_id] + tok("the dog slept here")["input_ids"] + \
        [tok.eos_token_id]
    assert sum(packed, []) == expected[:len(sum(packed, []))] and len(packed[0]) == len(expected)  # one short row


def test_perplexity_is_exp_of_the_mean_token_loss(tiny_bert, corpus):
    config = parse_args(lm_args(tiny_bert, corpus, "/tmp/unused"))
    built = build(config)
    model, head = built.model.eval(), built.model.heads["masked_lm"]
    rng = np.random.default_rng(0)
    ids = torch.tensor(rng.integers(1000, 5000, (3, 12)))
    targets = torch.full_like(ids, IGNORE_INDEX)
    targets[:, [2, 5, 7]] = ids[:, [2, 5, 7]]
    targets[1, 9] = ids[1, 9]
    mask = torch.ones_like(ids)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, lm_labels=targets, labels=torch.zeros(3))
        # By hand, through the LM class the run saves at its root.
        logits = standard_lm(model.backbone, head).eval()(input_ids=ids, attention_mask=mask).logits
    by_hand = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    metrics = PerplexityEvaluator()(out["predictions"].numpy(), None)
    assert metrics["lm_loss"] == pytest.approx(by_hand.item(), rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(float(torch.exp(by_hand)), rel=1e-5)
    assert out["loss"].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_a_checkpoint_without_an_lm_head_gets_one_tied_to_its_embeddings(tiny_bert, corpus):
    head = build(parse_args(lm_args(tiny_bert, corpus, "/tmp/unused"))).model.heads["masked_lm"]
    assert "no masked-lm head in the checkpoint" in head.note and head.layout["tied"]
    names = {n for n, _ in head.named_parameters()}
    assert "body.predictions.decoder.bias" in names and not any(n.endswith("decoder.weight") for n in names)


def test_pretraining_lowers_held_out_perplexity_and_saves_a_standard_masked_lm(tiny_bert, corpus, tmp_path):
    out = tmp_path / "mlm"
    run_recipe(lm_args(tiny_bert, corpus, out, "masked_lm", "--eval_strategy", "steps", "--eval_steps", "1",
                       "--num_train_epochs", "3"), "pretrain")
    log = log_of(out)
    assert log[-1]["perplexity"] < 0.5 * log[0]["perplexity"]
    results = json.loads((out / "eval_results.json").read_text())
    lowest = min(log, key=lambda r: r["perplexity"])  # the best checkpoint is the lowest perplexity, not the highest
    assert results["greater_is_better"] is False and results["best_step"] == lowest["step"]
    info = json.loads((out / "standard_model.json").read_text())
    assert info["format"] == "masked-lm" and info["holds_backbone"]
    assert "masked_lm" in results["lm_head"]
    # Loaded without hf_tl, it scores as the run did.
    import hf_tl

    run = hf_tl.load_run(out)
    standard = AutoModelForMaskedLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    batch = tok(["the cat sat on the [MASK]."], return_tensors="pt")
    with torch.no_grad():
        hidden = run.model.backbone(**batch).last_hidden_state
        mine = run.model.heads["masked_lm"](hidden)
        theirs = standard(**batch).logits
    assert torch.allclose(mine, theirs, atol=1e-5)
    from transformers import pipeline

    assert len(pipeline("fill-mask", model=str(out))("the cat sat on the [MASK].")) == 5
    card = (out / "README.md").read_text()
    assert "pipeline_tag: fill-mask" in card and "perplexity" in card


@pytest.mark.real_data
def test_a_task_starts_from_exactly_the_pretrained_encoder(tiny_bert, corpus, tmp_path):
    from conftest import backbone_state, tiny_args

    pre = tmp_path / "mlm"
    run_recipe(lm_args(tiny_bert, corpus, pre), "pretrain")
    standard = AutoModelForMaskedLM.from_pretrained(pre).base_model.state_dict()
    config = parse_args(tiny_args(tiny_bert, tmp_path / "sts", "--init_from_run", str(pre)))
    from hf_tl.transfer import load_init_backbone, resolve_init_from_run

    loaded = load_init_backbone(resolve_init_from_run(config).model).model.state_dict()
    assert loaded.keys() <= standard.keys()
    for name, tensor in loaded.items():
        assert torch.equal(tensor, standard[name]), name
    assert backbone_state(pre).keys() == loaded.keys()


def test_causal_lm_run_loads_in_auto_model_for_causal_lm(tiny_gpt2, corpus, tmp_path):
    out = tmp_path / "clm"
    run_recipe(lm_args(tiny_gpt2, corpus, out, "causal_lm"), "pretrain")
    import hf_tl

    run = hf_tl.load_run(out)
    standard = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.tensor([[464, 3797, 3332, 319, 262]])
    with torch.no_grad():
        mine = run.model.heads["causal_lm"](run.model.backbone(input_ids=ids).last_hidden_state)
        theirs = standard(input_ids=ids).logits
    assert torch.allclose(mine, theirs, atol=1e-5)
    # GPT-2's output layer is its input embeddings: nothing of the head is new.
    assert json.loads((out / "eval_results.json").read_text())["lm_head"]["causal_lm"] == \
        "the checkpoint's own output layer: its input embeddings (tied)"
    assert json.loads((out / "standard_model.json").read_text())["loader"] == "transformers.AutoModelForCausalLM"


@pytest.mark.parametrize("flags, message", [
    (["--task", "similarity", "--mlm_probability", "0.2"], "mlm_probability is read by tasks masked_lm"),
    (["--task", "causal_lm", "--whole_word_mask", "true"], "whole_word_mask is read by task masked_lm only"),
    (["--task", "masked_lm", "--strategy", "frozen"], "strategy frozen does not train that way"),
    (["--task", "masked_lm", "--config_overrides", "num_hidden_layers=1"], "Use strategy scratch"),
    (["--task", "masked_lm", "--mask_replace_prob", "0.95"], "must be at most 1"),
])
def test_bad_language_modelling_settings_stop_in_one_sentence(tiny_bert, flags, message):
    with pytest.raises(HfTlError, match=message):
        parse_args(["--model_name_or_path", tiny_bert, "--train_file", "x.tokens", "--output_dir", "/tmp/x", *flags])


def test_masked_lm_needs_a_mask_token(tiny_gpt2, corpus, tmp_path):
    with pytest.raises(SystemExit) as stop:
        run_recipe(lm_args(tiny_gpt2, corpus, tmp_path / "x", "masked_lm"), "pretrain")
    assert stop.value.code == 2


def test_resumed_pretraining_ends_like_an_uninterrupted_run(tiny_bert, corpus, tmp_path, monkeypatch):
    from hf_tl.training import loop

    common = ["--num_train_epochs", "2", "--eval_strategy", "steps", "--eval_steps", "4"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_recipe(lm_args(tiny_bert, corpus, straight, "masked_lm", *common), "pretrain")
    original = loop._evaluate_and_checkpoint

    def crash(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt("simulated crash after the first checkpoint")

    monkeypatch.setattr(loop, "_evaluate_and_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(lm_args(tiny_bert, corpus, resumed, "masked_lm", *common), "pretrain")
    monkeypatch.setattr(loop, "_evaluate_and_checkpoint", original)
    run_recipe(lm_args(tiny_bert, corpus, resumed, "masked_lm", *common, "--resume_from_checkpoint", "latest"),
               "pretrain")
    a, b = log_of(straight), log_of(resumed)
    assert [r["step"] for r in a] == [r["step"] for r in b] and len(a) >= 3
    for x, y in zip(a, b):
        assert y["perplexity"] == pytest.approx(x["perplexity"], rel=1e-6)


def test_two_processes_pretrain_as_one(tiny_bert, corpus, tmp_path):
    # Greedy layer-wise from scratch: its early stages leave the upper blocks unused, which DDP must be told.
    flags = ["--strategy", "greedy_layerwise", "--greedy_stage_steps", "3", "--eval_strategy", "steps",
             "--eval_steps", "3"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_recipe(lm_args(tiny_bert, corpus, one, "masked_lm", *flags), "pretrain")
    argv = lm_args(tiny_bert, corpus, two, "masked_lm", *flags)
    argv[argv.index("--per_device_train_batch_size") + 1] = "4"  # 2 processes x 4 = the 1-process batch of 8
    launch_two_processes("pretrain", argv, tmp_path)
    a, b = log_of(one), log_of(two)
    assert [r["step"] for r in a] == [r["step"] for r in b] and [r["stage"] for r in b][:3] == [0, 1, 2]
    for x, y in zip(a, b):
        assert y["eval_samples"] == x["eval_samples"]  # every held-out row once
        # The loss weighs every token of a step alike across processes, so full batches train exactly the same
        # steps (they were up to 6e-4 apart when each process averaged its own tokens). The epoch's last batch is
        # short: Accelerate evens it by repeating first rows in the second process, so the last step differs a little.
        last = y["step"] == b[-1]["step"]
        assert y["perplexity"] == pytest.approx(x["perplexity"], rel=5e-3 if last else 1e-6)


def test_a_checkpoint_with_its_masked_lm_head_keeps_it(tiny_bert, corpus, tmp_path):
    from transformers import BertForMaskedLM

    source = BertForMaskedLM.from_pretrained(tiny_bert)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in source.cls.parameters():
            p.add_(torch.randn_like(p))
    source.save_pretrained(tmp_path / "with_head")
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(tmp_path / "with_head")
    head = build(parse_args(lm_args(str(tmp_path / "with_head"), corpus, "/tmp/unused"))).model.heads["masked_lm"]
    assert head.note == "the checkpoint's own masked-lm head"
    mine = head.body.state_dict()
    saved = source.cls.state_dict()
    assert torch.equal(mine["predictions.transform.dense.weight"], saved["predictions.transform.dense.weight"])
    assert torch.equal(mine["predictions.decoder.bias"], saved["predictions.bias"])  # BERT's one bias, two names


def test_plain_txt_files_are_one_document_a_line_for_language_modelling(tiny_bert, corpus, tmp_path):
    from hf_tl.training.setup import resolve_config

    for name in ("train", "valid"):  # a tab inside a line is text, not a column separator
        lines = (corpus / f"{name}.tokens").read_text().splitlines()
        (tmp_path / f"{name}.txt").write_text("\n".join(line.replace(" ", "\t", 1) for line in lines) + "\n")
    argv = lm_args(tiny_bert, corpus, tmp_path / "out")
    argv[argv.index("--train_file") + 1] = str(tmp_path / "train.txt")
    argv[argv.index("--validation_file") + 1] = str(tmp_path / "valid.txt")
    _, raw = resolve_config(parse_args(argv), need_train=True)
    train = raw["masked_lm"]["train"]
    assert train.column_names == ["text"]
    assert train["text"][0] == (tmp_path / "train.txt").read_text().splitlines()[0]


def test_a_task_train_split_is_pretraining_text_and_its_labels_are_not_read(tiny_bert, pairs_csv, tmp_path):
    from hf_tl.tasks import TASKS
    from hf_tl.training.setup import resolve_config

    argv = ["--model_name_or_path", tiny_bert, "--task", "masked_lm", *pair_data(pairs_csv), "--output_dir",
            str(tmp_path / "out")]
    config, raw = resolve_config(parse_args(argv), need_train=True)
    data = config.task_data()["masked_lm"]
    task = TASKS["masked_lm"](data, AutoTokenizer.from_pretrained(tiny_bert), 32)
    docs = task.prepare_split(raw["masked_lm"]["train"], "train")["text"]
    first, second = raw["masked_lm"]["train"]["sentence1"], raw["masked_lm"]["train"]["sentence2"]
    assert docs == [*first, *second]  # both sentences of every pair, in order; no score
    assert not any(str(s) in docs for s in raw["masked_lm"]["train"]["score"])


def test_task_adaptive_pretraining_then_fine_tuning_records_the_chain(tiny_bert, pairs_csv, tmp_path):
    pre, sts = tmp_path / "tapt", tmp_path / "sts"
    run_recipe(["--model_name_or_path", tiny_bert, "--task", "masked_lm", *pair_data(pairs_csv), "--max_length",
                "32", "--per_device_train_batch_size", "8", "--learning_rate", "2e-3", "--num_train_epochs", "1",
                "--output_dir", str(pre)], "pretrain")
    encoder = AutoModelForMaskedLM.from_pretrained(pre).base_model.state_dict()
    data = [*pair_data(pairs_csv), "--label_column", "score"]
    from conftest import tiny_args

    from hf_tl.transfer import load_init_backbone, resolve_init_from_run

    argv = tiny_args(tiny_bert, sts, "--init_from_run", str(pre), data=data)
    loaded = load_init_backbone(resolve_init_from_run(parse_args(argv)).model).model.state_dict()
    assert loaded.keys() <= encoder.keys()
    for name, tensor in loaded.items():
        assert torch.equal(tensor, encoder[name]), name
    run_recipe(argv)
    chain = json.loads((sts / "lineage.json").read_text())
    assert chain["base_checkpoint"]["model_name_or_path"] == tiny_bert
    assert [r["tasks"] for r in chain["runs"]] == [{"masked_lm": "masked_lm"}, {"similarity": "similarity"}]
    assert chain["runs"][0]["path"] == str(pre.resolve()) and "eval_perplexity" in chain["runs"][0]["results"]


def test_early_stopping_reads_perplexity_as_lower_is_better(tiny_bert, corpus, tmp_path, monkeypatch):
    # Scripted held-out perplexities: 50 -> 40 improves, 45 does not; a patience of 1 stops there (at the third
    # evaluation). Read as greater-is-better, 40 would already be worse than 50 and the run would stop at the second.
    scripted = iter([50.0, 40.0, 45.0, 30.0, 20.0, 10.0])
    original = PerplexityEvaluator.__call__

    def scripted_call(self, predictions, references=None):
        return {**original(self, predictions, references), "perplexity": next(scripted)}

    monkeypatch.setattr(PerplexityEvaluator, "__call__", scripted_call)
    out = tmp_path / "es"
    run_recipe(lm_args(tiny_bert, corpus, out, "masked_lm", "--eval_strategy", "steps", "--eval_steps", "1",
                       "--num_train_epochs", "3", "--early_stopping_patience", "1"), "pretrain")
    log = log_of(out)
    assert [r["perplexity"] for r in log] == [50.0, 40.0, 45.0]
    assert json.loads((out / "eval_results.json").read_text())["best_step"] == log[1]["step"]
