"""Pooling on tensors: CLS, mean and last real token, with right and left padding."""

import pytest
import torch

from hf_tl.errors import HfTlError
from hf_tl.pooling import pool


def test_last_token_is_found_with_right_and_left_padding():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float).reshape(2, 4, 3)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert torch.equal(pool(hidden, right, "last"), torch.stack([hidden[0, 1], hidden[1, 3]]))
    assert torch.equal(pool(hidden, left, "last"), torch.stack([hidden[0, 3], hidden[1, 3]]))


def test_mean_ignores_padding_and_cls_takes_the_first_token():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").item() == pytest.approx(2.0)
    assert pool(hidden, mask, "cls").item() == 1.0


def test_virtual_tokens_extend_the_mask():
    hidden = torch.ones(1, 5, 2)  # 2 prompt-tuning tokens + 3 real positions, the last one padding
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden * torch.arange(5.0).view(1, 5, 1), mask, "last")[0, 0].item() == 3.0


def test_unknown_mode():
    with pytest.raises(HfTlError, match="Unknown pooling"):
        pool(torch.ones(1, 1, 1), torch.ones(1, 1), "max")


def test_decoder_last_token_pooling_is_the_same_with_left_and_right_padding(tiny_gpt2):
    from hf_tl import RunConfig
    from hf_tl.builder import build
    from hf_tl.data import PaddingCollator

    texts = ["a short one", "a much longer sentence than the other one here"]
    outputs = []
    for side in ("right", "left"):
        torch.manual_seed(0)
        built = build(RunConfig.from_flat_dict({"model_name_or_path": tiny_gpt2, "padding_side": side,
                                                "strategy": "frozen"}))
        tok = built.backbone.tokenizer
        assert tok.pad_token is not None  # GPT-2 has none of its own: EOS serves
        enc = built.tasks["similarity"].encode(texts, texts)
        batch = PaddingCollator(tok.pad_token_id, side)([{k: v[i] for k, v in enc.items()} for i in range(2)])
        built.model.eval()
        with torch.no_grad():
            outputs.append(built.model.encode(batch["input_ids"], batch["attention_mask"]))
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5)


def test_cls_is_the_first_real_token_with_left_padding_and_virtual_tokens():
    hidden = torch.arange(2 * 5 * 1, dtype=torch.float).reshape(2, 5, 1)
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert pool(hidden, left, "cls")[:, 0].tolist() == [2.0, 5.0]
    # 2 virtual tokens before 3 real positions (the first row left-padded by one)
    assert pool(hidden, torch.tensor([[0, 1, 1], [1, 1, 1]]), "cls")[:, 0].tolist() == [3.0, 7.0]
