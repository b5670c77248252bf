"""`hf-tl embed`: embeddings of a file's texts to Parquet or NumPy, per layer choice, from a checkpoint or a run."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import run_recipe, tiny_args

from hf_tl.cli import main as cli
from hf_tl.embed import embed_texts
from hf_tl.predict import load_run

TEXTS = ["a cat sits on the mat", "stocks fell sharply today", "a kitten is sitting on a rug", "hi"]


@pytest.fixture
def texts_file(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"id": i, "sentence": t}) + "\n" for i, t in enumerate(TEXTS)))
    return path


def reference(model_path: str, layer: str, pooling: str = "auto") -> torch.Tensor:
    """Embeddings through the training model's own encode (one padded batch)."""
    from hf_tl import RunConfig
    from hf_tl.builder import build

    built = build(RunConfig.from_flat_dict({"model_name_or_path": model_path, "strategy": "frozen", "layer": layer,
                                            "pooling": pooling}))
    tok = built.backbone.tokenizer
    batch = {k: torch.tensor(v) for k, v in tok(TEXTS, padding=True).items()}
    built.model.eval()
    with torch.no_grad():
        return built.model.encode(**batch)


@pytest.mark.parametrize("layer, shape", [("last", (4, 32)), ("second_to_last", (4, 32)), ("mean_last4", (4, 32)),
                                          ("concat_last4", (4, 128)), ("weighted", (4, 5, 32))])
def test_each_layer_choice_to_numpy(four_block_bert, texts_file, tmp_path, layer, shape):
    out = tmp_path / "emb.npy"
    cli(["embed", "--model_name_or_path", four_block_bert, "--input", str(texts_file), "--output", str(out),
         "--layer", layer, "--batch_size", "3"])
    embeddings = np.load(out)
    assert embeddings.shape == shape
    np.testing.assert_allclose(embeddings, reference(four_block_bert, layer).numpy(), atol=1e-5, rtol=1e-4)


def test_parquet_keeps_the_rows_and_gpt2_pools_the_last_token(tiny_gpt2, texts_file, tmp_path):
    out = tmp_path / "emb.parquet"
    cli(["embed", "--model_name_or_path", tiny_gpt2, "--input", str(texts_file), "--output", str(out),
         "--normalize", "true"])
    table = pq.read_table(out)
    assert table.column("sentence").to_pylist() == TEXTS and table.column("id").to_pylist() == [0, 1, 2, 3]
    embeddings = np.array(table.column("embedding").to_pylist())
    assert table.schema.metadata[b"hf_tl.pooling"] == b"last"
    expected = torch.nn.functional.normalize(reference(tiny_gpt2, "last"), dim=-1).numpy()
    np.testing.assert_allclose(embeddings, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.real_data
def test_a_finished_runs_backbone_embeds(tiny_bert, texts_file, tmp_path):
    run_dir = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, run_dir, "--strategy", "full", train=16, dev=8))
    out = tmp_path / "emb.npy"
    cli(["embed", "--run", str(run_dir), "--input", str(texts_file), "--output", str(out)])
    run = load_run(run_dir, device="cpu")
    expected = embed_texts(run.model, run.tokenizer, TEXTS, max_length=128)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)
    assert not np.allclose(np.load(out), reference(tiny_bert, "last").numpy(), atol=1e-4)  # fine-tuned weights


@pytest.mark.parametrize("flags, message", [
    (["--text_column", "text"], "Column 'text' is not in"),
    (["--output", "emb.txt"], "--output must end in .parquet or .npy"),
    (["--layer", "top4"], "layer must be one of"),
])
def test_mistakes_are_one_sentence(tiny_bert, texts_file, tmp_path, capsys, flags, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["embed", "--model_name_or_path", tiny_bert, "--input", str(texts_file), "--output", "emb.npy", *flags]
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_an_existing_output_is_not_overwritten(tiny_bert, texts_file, tmp_path, capsys):
    out = tmp_path / "emb.npy"
    np.save(out, np.zeros(3))
    with pytest.raises(SystemExit):
        cli(["embed", "--model_name_or_path", tiny_bert, "--input", str(texts_file), "--output", str(out)])
    assert "already exists" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(out), np.zeros(3))
