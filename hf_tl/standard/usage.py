"""How to load a run: the standard loader's code (for the card), which loaders load it and why not (card and the
run's last line). Works from the run's config and ``standard_model.json`` only."""

from __future__ import annotations

from hf_tl.standard.plan import LOADERS

PAIR = ("A man is playing a guitar.", "A man plays the guitar.")
TEXT = "A gripping, beautifully acted film."


def loading_lines(info: dict, where: str) -> list[str]:
    """Which loaders load the run, and which do not and why, as card paragraphs."""
    if not info:
        return [f"This run was written before runs held a standard model: write one with `hf-tl export {where} "
                f"--format FORMAT --output DIR`, or load it with hf_tl."]
    if not info.get("format"):
        return [f"No standard loader loads this run exactly ({info.get('reason', 'no standard form')}); it loads "
                f"with hf_tl."]
    merged = " (its adapter merged into the backbone; the adapter alone is in `adapter/`)" if info.get("merged") \
        else ""
    also = " (and `transformers.pipeline`)" if info["format"] == "transformers" else ""
    return [f"Loads without hf_tl in `{LOADERS[info['format']]}`{also}{merged}, and with hf_tl."]


def standard_usage(fmt: str, where: str, data) -> list[str]:
    """Python lines that load the run with its standard loader and predict (``data``: the task's settings)."""
    if fmt in ("masked-lm", "causal-lm"):
        return ["from transformers import pipeline", "",
                f'fill = pipeline("fill-mask", model="{where}")',
                'print(fill(f"A man is playing a {fill.tokenizer.mask_token}."))'] if fmt == "masked-lm" else [
                "from transformers import pipeline", "", f'generate = pipeline("text-generation", model="{where}")',
                'print(generate("A man is playing", max_new_tokens=20)[0]["generated_text"])']
    labels = None if data.task == "similarity" else list(data.label_names or [])
    scale = f"on the data's {data.score_min:g}-{data.score_max:g} scale"
    if fmt == "sentence-transformers":
        span, low = data.score_max - data.score_min, data.score_min
        return ["from sentence_transformers import SentenceTransformer", "",
                f'model = SentenceTransformer("{where}")',
                f"embeddings = model.encode([{PAIR[0]!r}, {PAIR[1]!r}])",
                "cosine = model.similarity(embeddings[0:1], embeddings[1:2])",
                f"print(cosine * {span:g} + {low:g})  # hf_tl's score {scale}"]
    if fmt == "cross-encoder":
        lines = ["from sentence_transformers import CrossEncoder", "", f'model = CrossEncoder("{where}")',
                 f"scores = model.predict([({PAIR[0]!r}, {PAIR[1]!r})])"]
        if labels is None:
            return [*lines, f"print(scores)  # similarity {scale}"]
        return [*lines, "print([model.config.id2label[i] for i in scores.argmax(1)])  # " + ", ".join(labels)]
    if fmt == "transformers":
        text = f"{{'text': {PAIR[0]!r}, 'text_pair': {PAIR[1]!r}}}" if data.task != "classification" \
            else repr(TEXT)
        extra = ', function_to_apply="none"' if labels is None else ""
        return ["from transformers import pipeline", "",
                f'classifier = pipeline("text-classification", model="{where}")',
                f"print(classifier({text}{extra}))" + (f"  # similarity {scale}" if labels is None else "")]
    n = len(labels) if labels else 1
    id2label = "" if labels is None else f", id2label={dict(enumerate(labels))}"
    args = f"{PAIR[0]!r}, {PAIR[1]!r}" if data.task != "classification" else repr(TEXT)
    return ["from peft import AutoPeftModelForSequenceClassification", "from transformers import AutoTokenizer", "",
            f'model = AutoPeftModelForSequenceClassification.from_pretrained("{where}", num_labels={n}{id2label})',
            f'tokenizer = AutoTokenizer.from_pretrained("{where}")',
            f'logits = model(**tokenizer({args}, return_tensors="pt")).logits',
            "print(model.config.id2label[logits.argmax(-1).item()])" if labels else
            f"print(logits)  # similarity {scale}"]


def hf_tl_usage(where: str, data) -> list[str]:
    """Python lines that load the run with hf_tl and predict (a language model: start a task from it)."""
    if data.task in ("masked_lm", "causal_lm"):
        return ["# any task fine-tunes from this run's backbone (its LM head is dropped), e.g.:",
                f"# python recipes/text_similarity.py --config recipes/configs/stsb_full.yaml --init_from_run {where}"]
    example = f"[({PAIR[0]!r}, {PAIR[1]!r})]" if data.task != "classification" else f"[{TEXT!r}]"
    return ["import hf_tl", "", f'run = hf_tl.load_run("{where}")  # this folder, or its Hub repo id',
            f"print(run.predict({example}))"]


def final_hint(info: dict, run_dir: str) -> str:
    """The standard-loader part of a run's last line."""
    fmt = info.get("format")
    if not fmt:
        return f"; no standard loader ({info.get('reason', 'no standard form')})" if info else ""
    loader = LOADERS[fmt].split(" ")[0].rsplit(".", 1)[-1]
    return f", or without hf_tl: {loader}(\"{run_dir}\")" if fmt != "transformers" else \
        f", or without hf_tl: pipeline(\"text-classification\", model=\"{run_dir}\")"
