"""Benchmark: training throughput of hf_tl against HF Trainer, same model, data, batch size and steps, one session.

    HF_TL_DATA_DIR=../shared/data python benchmarks/throughput.py --output_root /tmp/throughput
    # on a GPU: random-weight BERT-base or GPT-2-small sized models in bf16, with model FLOPs utilisation
    python benchmarks/throughput.py --output_root /tmp/tp_gpu --model bert-base --bf16 --steps 300 --batch_size 64
    # the README's main command (accelerate launch) against python recipes/..., whole processes, alternating
    HF_TL_DATA_DIR=../shared/data python benchmarks/throughput.py --output_root /tmp/tp_launch --steps 40 \
        --runs hf_tl hf_tl_launch --repeats 3

Every run trains the cross-encoder regression of STS-B train (full fine-tuning, AdamW, lr 2e-5, max length 128)
for --steps optimizer steps of --batch_size pairs, in its own child process (so peak memory is that run's alone):
  hf_tl             the text-similarity recipe as `python recipes/text_similarity.py` (dynamic padding; length
                    grouping is the recipe's default)
  hf_tl_random      the same with random batches (--group_by_length false)
  hf_tl_launch      the same recipe under `accelerate launch` with no launch flags and OMP_NUM_THREADS unset, as
                    the README's main command runs it (Accelerate then sets one thread per process on a CPU)
  hf_tl_keep0       the same with --save_total_limit 0 (the finished run keeps no checkpoint, so the last one is
                    not written)
  hf_tl_cold        the same with --cache_tokenized false (tokenizes in every run)
  hf_tl_grouped     the same as hf_tl (group_by_length true, named)
  hf_tl_grouped_pad8  + pad_to_multiple_of 8
  trainer_run_glue  HF Trainer as run_glue.py configures it by default: every pair padded to 128 tokens
  trainer_best      HF Trainer at its best: dynamic padding (DataCollatorWithPadding) and group_by_length
With --repeats N every run is repeated N times, the runs alternating (a, b, a, b, ...), and the medians are reported:
whole-process wall time (what the user waits for) and training samples/s. Throughput is measured over the training
steps only (from the first step to the last; start-up, evaluation and saving excluded) for all runs alike: hf_tl
reports it in eval_results.json, the Trainer runs are timed by a callback from on_train_begin to on_train_end.
Tokens/s counts real (unpadded) tokens. Then peak memory per strategy: hf_tl full, lora and frozen (CPU RSS; GPU
max allocated when on a GPU). Writes OUTPUT_ROOT/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from runner import ROOT, run_process

DENSE_BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense (no sparsity) per GPU
MODELS = {"minilm": None, "bert-base": ("bert", 768, 12, 12, 3072), "gpt2-small": ("gpt2", 768, 12, 12, 3072)}


def model_path(name: str, root: Path) -> str:
    """The all-MiniLM-L6-v2 checkpoint, or a random-weight BERT-base / GPT-2-small written under ``root``."""
    if MODELS[name] is None:
        return "sentence-transformers/all-MiniLM-L6-v2"
    from transformers import AutoTokenizer, BertConfig, BertModel, GPT2Config, GPT2Model

    family, hidden, layers, heads, inner = MODELS[name]
    path = root / f"random_{name}"
    if not path.is_dir():
        shared = Path(os.environ.get("HF_TL_SHARED_DIR", ROOT.parent / "shared"))
        if family == "bert":
            from hf_tl.backbone import resolve_checkpoint

            tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2"))
            BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                 num_attention_heads=heads, intermediate_size=inner)).save_pretrained(path)
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(shared / "tokenizers" / "gpt2"))
            GPT2Model(GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers, n_head=heads,
                                 n_inner=inner)).save_pretrained(path)
        tokenizer.save_pretrained(path)
    return str(path)


def hf_tl_run(name: str, model: str, out: Path, args, extra: list[str], launch: bool = False) -> dict:
    launcher = [sys.executable, "-m", "accelerate.commands.launch"] if launch else [sys.executable]
    cmd = [*launcher, str(ROOT / "recipes" / "text_similarity.py"), "--config",
           str(ROOT / "recipes" / "configs" / "stsb_full.yaml"), "--model_name_or_path", model,
           "--output_dir", str(out), "--overwrite_output_dir", "true", "--max_steps", str(args.steps),
           "--per_device_train_batch_size", str(args.batch_size), "--max_eval_samples", "64",
           "--eval_strategy", "steps", "--eval_steps", str(10 ** 9), "--logging_steps", "50",
           "--mixed_precision", "bf16" if args.bf16 else "no", *extra]
    # The README's command: whatever thread setting the launcher picks, not one inherited from this shell.
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} if launch else None
    # Tokens cached by this benchmark's runs alone: the first hf_tl run tokenizes, later ones read (see --repeats).
    env = {**(env or os.environ), "HF_TL_TOKENIZED_CACHE": str(args.output_root / "tokenized_cache")}
    wall, rss = run_process(cmd, name, env=env)
    r = json.loads((out / "eval_results.json").read_text())
    hardware = json.loads((out / "training_info.json").read_text()).get("hardware", {})
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    model = (out / "model.safetensors").stat().st_size if (out / "model.safetensors").is_file() else None
    return {"run": name, "wall_s": wall, "peak_rss_mib": rss, "samples_per_s": r.get("train_samples_per_second"),
            "tokens_per_s": r.get("train_tokens_per_second"), "peak_gpu_mib": r.get("peak_gpu_memory_mib"),
            "dev_spearmanr": r.get("eval_spearmanr"), "cpu_threads": hardware.get("cpu_threads"),
            "run_dir_mib": round(size / 2 ** 20, 1), "model_mib": round(model / 2 ** 20, 1) if model else None}


def trainer_child(mode: str, model: str, out: Path, steps: int, batch_size: int, bf16: bool) -> None:
    """HF Trainer on the same data and steps (runs in the child process); writes out/throughput.json."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    from hf_tl.backbone import resolve_checkpoint
    from hf_tl.data.loading import read_file, resolve_data_file

    source = resolve_checkpoint(model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    net = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    net.config.pad_token_id = tokenizer.pad_token_id
    rows = read_file(resolve_data_file("stsb/train.csv", None), ["sentence1", "sentence2", "score"])
    padding = "max_length" if mode == "trainer_run_glue" else False

    def encode(batch):
        joined = (batch["sentence1"], batch["sentence2"]) if tokenizer.sep_token else (
            [f"{a}{tokenizer.eos_token}{b}" for a, b in zip(batch["sentence1"], batch["sentence2"])],)
        out = tokenizer(*joined, truncation=True, max_length=128, padding=padding)
        out["labels"] = [float(s) / 5.0 for s in batch["score"]]
        return out

    data = rows.map(encode, batched=True, remove_columns=rows.column_names)
    real_tokens = sum(sum(m) for m in data["attention_mask"]) / len(data)  # real tokens per example

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_train_end(self, *a, **k):
            self.seconds = time.perf_counter() - self.start

    clock = Clock()
    args = TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=2e-5,
        warmup_steps=0.1, weight_decay=0.01, eval_strategy="no", save_strategy="no", logging_steps=50,
        report_to=[], seed=42, bf16=bf16, dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if mode == "trainer_best" else "random")
    collator = default_data_collator if mode == "trainer_run_glue" else DataCollatorWithPadding(tokenizer)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    Trainer(model=net, args=args, train_dataset=data, data_collator=collator, callbacks=[clock]).train()
    samples = steps * batch_size
    result = {"samples_per_s": round(samples / clock.seconds, 2),
              "tokens_per_s": round(samples * real_tokens / clock.seconds, 1),
              "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2 ** 20) if torch.cuda.is_available()
              else None}
    (out / "throughput.json").write_text(json.dumps(result))


def trainer_run(mode: str, model: str, out: Path, args) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--child", mode, "--model_path", model, "--output_root", str(out),
           "--steps", str(args.steps), "--batch_size", str(args.batch_size)] + (["--bf16"] if args.bf16 else [])
    wall, rss = run_process(cmd, mode)
    return {"run": mode, "wall_s": wall, "peak_rss_mib": rss, **json.loads((out / "throughput.json").read_text())}


def mfu(row: dict, model: str) -> float | None:
    """Model FLOPs utilisation: (6 x parameters + attention) per real token x tokens/s over the GPU's bf16 peak."""
    import torch

    if not torch.cuda.is_available() or not row.get("tokens_per_s"):
        return None
    from transformers import AutoConfig, AutoModel

    name = torch.cuda.get_device_name()
    peak = next((v for k, v in DENSE_BF16_PEAK_TFLOPS.items() if k in name), None)
    if peak is None:
        return None
    config = AutoConfig.from_pretrained(model)
    params = sum(p.numel() for p in AutoModel.from_config(config).parameters())
    layers, hidden = config.num_hidden_layers, config.hidden_size
    # 6N per token for forward + backward, plus attention scores and values: 12 x layers x hidden x sequence.
    flops_per_token = 6 * params + 12 * layers * hidden * 128
    return row["tokens_per_s"] * flops_per_token / (peak * 1e12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", type=Path, required=True)
    parser.add_argument("--model", choices=sorted(MODELS), default="minilm")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--runs", nargs="+", default=["hf_tl_random", "hf_tl", "hf_tl_grouped_pad8",
                                                      "trainer_run_glue", "trainer_best", "memory"])
    parser.add_argument("--repeats", type=int, default=1, help="Run each N times, alternating; report medians.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model_path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return trainer_child(args.child, args.model_path, args.output_root, args.steps, args.batch_size, args.bf16)
    args.output_root.mkdir(parents=True, exist_ok=True)
    model = model_path(args.model, args.output_root)
    hf_tl_flags = {"hf_tl": [], "hf_tl_launch": [], "hf_tl_random": ["--group_by_length", "false"],
                   "hf_tl_keep0": ["--save_total_limit", "0"], "hf_tl_cold": ["--cache_tokenized", "false"],
                   "hf_tl_grouped": ["--group_by_length", "true"],
                   "hf_tl_grouped_pad8": ["--group_by_length", "true", "--pad_to_multiple_of", "8"]}
    tries: dict[str, list[dict]] = {}
    for attempt in range(args.repeats):  # alternating, so a slow spell of the machine hits every run alike
        # Every other round in reverse order, so no run always follows the same one.
        for name in args.runs if attempt % 2 == 0 else args.runs[::-1]:
            if name in hf_tl_flags:
                row = hf_tl_run(name, model, args.output_root / name, args, hf_tl_flags[name],
                                launch=name == "hf_tl_launch")
            elif name.startswith("trainer"):
                row = trainer_run(name, model, args.output_root / name, args)
            else:
                continue
            tries.setdefault(name, []).append(row)
            print(json.dumps({"attempt": attempt + 1, **row}), flush=True)
    rows = [median_row(name, attempts) for name, attempts in tries.items()]
    by_name = {r["run"]: r for r in rows}
    for r in rows:
        r["mfu"] = mfu(r, model)
        for base in ("trainer_run_glue", "trainer_best"):
            if base in by_name and r.get("samples_per_s"):
                r[f"x_{base}"] = round(r["samples_per_s"] / by_name[base]["samples_per_s"], 2)
        if "trainer_best" in by_name and r["run"].startswith("hf_tl"):  # > 1: hf_tl's whole process is faster
            r["wall_speedup_x_trainer_best"] = round(by_name["trainer_best"]["wall_s"] / r["wall_s"], 3)
        if "hf_tl" in by_name and r["run"] == "hf_tl_launch":  # > 1: the launched command takes longer
            r["wall_x_python"] = round(r["wall_s"] / by_name["hf_tl"]["wall_s"], 3)
            r["speed_x_python"] = round(by_name["hf_tl"]["wall_s"] / r["wall_s"], 3)  # < 1: the launched is slower
    memory = []
    if "memory" in args.runs:
        for strategy, extra in (("full", []), ("lora", ["--strategy", "lora", "--learning_rate", "5e-4"]),
                                ("frozen", ["--strategy", "frozen", "--learning_rate", "1e-3"])):
            row = hf_tl_run(f"memory_{strategy}", model, args.output_root / f"memory_{strategy}", args,
                            ["--group_by_length", "true", *extra])
            memory.append({"strategy": strategy, **row})
    result = {"model": args.model, "steps": args.steps, "batch_size": args.batch_size, "bf16": args.bf16,
              "repeats": args.repeats, "machine": machine(), "runs": rows, "attempts": tries, "memory": memory}
    (args.output_root / "results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def median_row(name: str, attempts: list[dict]) -> dict:
    """One run's row: the median of every figure over its attempts."""
    import statistics

    row = {"run": name, "attempts": len(attempts)}
    for key in attempts[0]:
        values = [a[key] for a in attempts if isinstance(a.get(key), (int, float))]
        if key != "run" and values:
            row[key] = statistics.median(values)
    return row


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | cut -d: -f2"], capture_output=True, text=True)
    return f"{cpu.stdout.strip()} ({os.cpu_count()} cores), torch {torch.__version__}"


if __name__ == "__main__":
    main()
