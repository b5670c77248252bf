"""How well the backbone predicts the task's text against a generic reference corpus: its language-model
perplexity on both, and how far it beats token frequencies.

A decoder (and an encoder that ships its masked-LM head) is scored with its own head. An encoder without one
(all-MiniLM-L6-v2 ships the encoder alone) gets its family's new head, fitted for a few hundred steps on the
reference corpus with the backbone frozen: the backbone runs once, over masked texts, and the head trains on the
stored hidden states of the masked positions. Such a head learns from a few thousand positions, not the billions
the checkpoint's own head saw, so its perplexities are reported but the advisor's rules read only a checkpoint's
own head (measured on all-MiniLM-L6-v2: 300 steps left the fitted head above the token-frequency floor).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from hf_tl.advisor.signals import knowledge, perplexity, unigram_perplexity
from hf_tl.data.lm_data import IGNORE_INDEX, mask_tokens

MLM_PROBABILITY = 0.15
FIT_BATCH = 128  # masked positions per step of the head-only fit
FIT_LR = 3e-3
CHUNK = 512  # positions per vocabulary projection when scoring (bounds the logits' memory)


def _token_rows(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"] if texts else []


def _masked(tokenizer, rows: list[list[int]], seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each row with 15% of its ordinary tokens replaced by the mask token (at least one), and its targets."""
    special = set(tokenizer.all_special_ids)
    inputs, targets = [], []
    for i, ids in enumerate(rows):
        ids = np.asarray(ids, dtype=np.int64)
        candidates = np.array([t not in special for t in ids.tolist()])
        if not candidates.any():
            continue
        rng = np.random.default_rng([seed, i])
        x, y = mask_tokens(ids, candidates, rng, MLM_PROBABILITY, 1.0, 0.0, tokenizer.mask_token_id,
                           len(tokenizer))
        if (y == IGNORE_INDEX).all():  # a short row drew no token: predict one anyway
            j = int(rng.choice(np.flatnonzero(candidates)))
            x[j], y[j] = tokenizer.mask_token_id, ids[j]
        inputs.append(x)
        targets.append(y)
    return inputs, targets


@torch.no_grad()  # not inference mode: the head-only fit trains on these tensors
def _hidden_at_targets(backbone, tokenizer, inputs: list[np.ndarray], targets: list[np.ndarray], causal: bool,
                       batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The backbone's last hidden state at every predicted position, and the token it should predict there."""
    device = next(backbone.parameters()).device
    hidden, wanted = [], []
    order = np.argsort([len(x) for x in inputs], kind="stable")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        width = max(len(inputs[i]) for i in index)
        ids = torch.full((len(index), width), pad, dtype=torch.long)
        mask = torch.zeros((len(index), width), dtype=torch.long)
        goal = torch.full((len(index), width), IGNORE_INDEX, dtype=torch.long)
        for row, i in enumerate(index):  # right padding: positions count from each row's first token
            ids[row, :len(inputs[i])] = torch.as_tensor(inputs[i])
            mask[row, :len(inputs[i])] = 1
            goal[row, :len(inputs[i])] = torch.as_tensor(targets[i])
        states = backbone(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state.float().cpu()
        if causal:  # each position predicts the next token
            states, goal = states[:, :-1], goal[:, 1:]
        keep = goal != IGNORE_INDEX
        hidden.append(states[keep])
        wanted.append(goal[keep])
    return torch.cat(hidden), torch.cat(wanted)


@torch.no_grad()
def token_losses(head, hidden: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Cross-entropy of each predicted token under ``head`` (a :class:`hf_tl.lm_head.LanguageModelHead`)."""
    out = []
    for start in range(0, len(targets), CHUNK):
        logits = head(hidden[start:start + CHUNK].to(next(iter(head.parameters()), hidden).device)).float().cpu()
        out.append(torch.nn.functional.cross_entropy(logits, targets[start:start + CHUNK], reduction="none"))
    return torch.cat(out).numpy() if out else np.zeros(0)


def fit_head(head, hidden: torch.Tensor, targets: torch.Tensor, steps: int, seed: int, deadline: float) -> int:
    """Train the head's own weights (the backbone's embeddings it reads stay as they are) on stored hidden states.

    Args:
        head: The :class:`hf_tl.lm_head.LanguageModelHead`.
        hidden, targets: Hidden states at the predicted positions and the tokens to predict.
        steps: Steps at most.
        seed: Batch-drawing seed.
        deadline: ``time.monotonic()`` value after which no further step starts.

    Returns:
        The steps taken.
    """
    params = [p for p in head.parameters() if p.requires_grad]
    if not params or not len(targets):
        return 0
    optimizer = torch.optim.AdamW(params, lr=FIT_LR, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    head.train()
    taken = 0
    for _ in range(steps):
        if time.monotonic() > deadline:
            break
        index = torch.randint(len(targets), (min(FIT_BATCH, len(targets)),), generator=generator)
        loss = torch.nn.functional.cross_entropy(head(hidden[index]).float(), targets[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        taken += 1
    head.eval()
    return taken


def lm_perplexities(backbone, tokenizer, source: str, task_texts: list[str], fit_texts: list[str],
                    reference_texts: list[str], count_texts: list[str], max_length: int, is_decoder: bool,
                    random_init: bool, fit_steps: int, seed: int, deadline: float, batch_size: int = 32) -> dict:
    """The backbone's perplexity on task text and on reference text, with the token-frequency floor of each.

    Args:
        backbone: The bare transformer (``AutoModel``), frozen.
        tokenizer: Its tokenizer.
        source: Where its weights came from (its LM head is read from there).
        task_texts: Texts of the task's train split, scored.
        fit_texts: Reference texts that fit a new head (when the checkpoint has none).
        reference_texts: Reference texts, scored.
        count_texts: Reference texts whose token frequencies make the floor (only tokenized).
        max_length: Tokens per text.
        is_decoder: Causal LM (next token) rather than masked LM.
        random_init: The backbone is the architecture's random initialisation (no head to read).
        fit_steps: Steps of head-only fitting for a checkpoint without its LM head.
        seed: Masking and batching seed.
        deadline: ``time.monotonic()`` value after which fitting stops.
        batch_size: Texts per forward pass.

    Returns:
        ``{"objective", "head", "pretrained_head", "fit_steps", "task_ppl", "reference_ppl", "ppl_ratio",
        "task_unigram_ppl", "reference_unigram_ppl", "task_knowledge", "reference_knowledge", "task_tokens",
        "reference_tokens"}``.
    """
    from hf_tl.lm_head import build_lm_head

    objective = "causal_lm" if is_decoder else "masked_lm"
    head = build_lm_head(backbone, objective, source, load_pretrained=not random_init).float()
    head.to(next(backbone.parameters()).device)
    needs_fit = not head.pretrained
    states = {}
    for name, texts in (("fit", fit_texts), ("reference", reference_texts), ("task", task_texts)):
        if name == "fit" and not needs_fit:
            continue
        rows = _token_rows(tokenizer, texts, max_length)
        if is_decoder:
            inputs = targets = [np.asarray(r, dtype=np.int64) for r in rows]
        else:
            inputs, targets = _masked(tokenizer, rows, seed)
        states[name] = _hidden_at_targets(backbone, tokenizer, inputs, targets, is_decoder, batch_size)
    steps = fit_head(head, *states["fit"], fit_steps, seed, deadline) if needs_fit else 0
    vocab = backbone.get_input_embeddings().weight.shape[0]
    counted = _token_rows(tokenizer, count_texts or fit_texts, max_length)
    out = {"objective": objective, "head": head.note, "pretrained_head": not needs_fit, "fit_steps": steps}
    for name in ("task", "reference"):
        hidden, targets = states[name]
        ppl = perplexity(token_losses(head, hidden, targets))
        floor = unigram_perplexity(counted, targets.numpy(), vocab)
        out.update({f"{name}_ppl": ppl, f"{name}_unigram_ppl": floor, f"{name}_knowledge": knowledge(ppl, floor),
                    f"{name}_tokens": int(len(targets))})
    out["ppl_ratio"] = out["task_ppl"] / out["reference_ppl"]
    return out
