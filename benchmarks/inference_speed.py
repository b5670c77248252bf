"""Benchmark: prediction and embedding speed of hf_tl against sentence-transformers on the same model, whole processes.

    HF_TL_DATA_DIR=../shared/data python benchmarks/inference_speed.py --output_root /tmp/infer --repeats 3

Two STS-B runs of all-MiniLM-L6-v2 are trained first (40 steps each, as `python recipes/text_similarity.py`): a
cross-encoder (stsb_full.yaml) and a bi-encoder (stsb_bi_encoder_full.yaml). Both are also standard
sentence-transformers models at their root, so the peer library loads the very same weights. Then, each in its own
child process, alternating (a b, b a, ...), --repeats times each:
  predict_cross   hf_tl.load_run(run).predict on 10,000 STS-B pairs   vs  CrossEncoder(run).predict
  predict_bi      hf_tl.load_run(run).predict_raw (cosine)             vs  SentenceTransformer(run).encode of both
                                                                           columns + cosine
  embed           hf-tl embed of SST-2 train's 67,349 sentences to .npy vs  SentenceTransformer.encode + np.save
                  (the packaged all-MiniLM-L6-v2; --normalize true, as its Normalize module does)
Each library at its own default batch size. Reported: median whole-process wall time (what the user waits for),
median in-process seconds of the predict/encode call alone, the ratio peer / hf_tl of both (> 1: hf_tl is faster),
and the largest difference between the two libraries' outputs. Writes OUTPUT_ROOT/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from runner import ROOT, run_process

PAIRS = 10_000
STSB = ("stsb/train.csv", "stsb/dev.csv")
SST2 = "sst2/train.tsv"


def data_dir() -> Path:
    return Path(os.environ.get("HF_TL_DATA_DIR", ROOT.parent / "shared" / "data"))


def pairs() -> list[tuple[str, str]]:
    """10,000 STS-B pairs: train, then dev, then train again from its start."""
    import csv

    rows = []
    for name in STSB:
        with (data_dir() / name).open(newline="", encoding="utf-8") as fh:
            rows += [(r[0], r[1]) for r in csv.reader(fh)]
    return (rows * (PAIRS // len(rows) + 1))[:PAIRS]


def sentences() -> list[str]:
    import csv

    with (data_dir() / SST2).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [r[0] for r in reader if r]


def _hf_tl(target: str, raw: bool):
    import hf_tl

    run = hf_tl.load_run(target)
    return pairs, run.predict_raw if raw else run.predict


def _st_cross(target: str):
    from sentence_transformers import CrossEncoder

    return pairs, CrossEncoder(target).predict


def _st_bi(target: str):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(target)

    def cosine(inputs):
        a = model.encode([p[0] for p in inputs], convert_to_tensor=True)
        b = model.encode([p[1] for p in inputs], convert_to_tensor=True)
        return model.similarity_pairwise(a, b).numpy()

    return pairs, cosine


def _st_embed(target: str):
    from sentence_transformers import SentenceTransformer

    return sentences, SentenceTransformer(target).encode


# mode -> (target -> (what reads the inputs, the call that is timed)); the model loads before the clock starts.
MODES = {"hf_tl_cross": lambda t: _hf_tl(t, raw=False), "hf_tl_bi": lambda t: _hf_tl(t, raw=True),
         "st_cross": _st_cross, "st_bi": _st_bi, "st_embed": _st_embed}


def child(mode: str, target: str, out: Path) -> None:
    """One measured job (runs in the child process): writes OUT.npy and OUT.json (seconds of the call alone)."""
    read, call = MODES[mode](target)
    inputs = read()
    start = time.perf_counter()
    scores = call(inputs)
    seconds = time.perf_counter() - start
    np.save(out.with_suffix(".npy"), np.asarray(scores, dtype=np.float32))
    out.with_suffix(".json").write_text(json.dumps({"call_s": seconds}))


def measured(name: str, cmd: list[str], out: Path) -> dict:
    wall, rss = run_process(cmd, name)
    call = json.loads(out.with_suffix(".json").read_text())["call_s"] if out.with_suffix(".json").is_file() else None
    return {"wall_s": wall, "call_s": call, "peak_rss_mib": rss}


def train_runs(root: Path) -> dict[str, Path]:
    """The cross-encoder and bi-encoder runs the comparisons load (trained once, reused by later invocations)."""
    runs = {"cross": (root / "run_cross", "stsb_full"), "bi": (root / "run_bi", "stsb_bi_encoder_full")}
    for path, config in runs.values():
        if not (path / "eval_results.json").is_file():
            run_process([sys.executable, str(ROOT / "recipes" / "text_similarity.py"), "--config",
                         str(ROOT / "recipes" / "configs" / f"{config}.yaml"), "--output_dir", str(path),
                         "--overwrite_output_dir", "true", "--max_steps", "40", "--save_total_limit", "0"], config)
    return {k: v[0] for k, v in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", type=Path, help="Where the runs, outputs and results.json go (required).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", nargs="+", default=["predict_cross", "predict_bi", "embed"])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], Path(args.child[2]))
    if args.output_root is None:
        parser.error("the following arguments are required: --output_root")
    root = args.output_root
    root.mkdir(parents=True, exist_ok=True)
    runs = train_runs(root)
    from hf_tl.backbone import resolve_checkpoint

    minilm = resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2")
    me = [sys.executable, __file__, "--child"]
    jobs = {
        "predict_cross": (("hf_tl", lambda o: [*me, "hf_tl_cross", str(runs["cross"]), str(o)]),
                          ("sentence-transformers", lambda o: [*me, "st_cross", str(runs["cross"]), str(o)])),
        "predict_bi": (("hf_tl", lambda o: [*me, "hf_tl_bi", str(runs["bi"]), str(o)]),
                       ("sentence-transformers", lambda o: [*me, "st_bi", str(runs["bi"]), str(o)])),
        "embed": (("hf_tl", lambda o: [sys.executable, "-m", "hf_tl.cli", "embed", "--model_name_or_path",
                                       "sentence-transformers/all-MiniLM-L6-v2", "--input", str(data_dir() / SST2),
                                       "--text_column", "sentence", "--normalize", "true", "--overwrite",
                                       "--output", str(o.with_suffix(".npy"))]),
                  ("sentence-transformers", lambda o: [*me, "st_embed", minilm, str(o)])),
    }
    result = {"repeats": args.repeats, "jobs": {}}
    for job in args.jobs:
        tries: dict[str, list[dict]] = {}
        for attempt in range(args.repeats):
            order = jobs[job] if attempt % 2 == 0 else jobs[job][::-1]
            for who, command in order:
                out = root / job / f"{who}"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.with_suffix(".json").unlink(missing_ok=True)
                row = measured(f"{job} {who}", command(out), out)
                tries.setdefault(who, []).append(row)
                print(json.dumps({"job": job, "attempt": attempt + 1, "who": who, **row}), flush=True)
        ours, theirs = (np.load(root / job / f"{who}.npy") for who in ("hf_tl", "sentence-transformers"))
        medians = {who: {k: statistics.median(r[k] for r in rows) if rows[0][k] is not None else None
                         for k in rows[0]} for who, rows in tries.items()}
        a, b = medians["hf_tl"], medians["sentence-transformers"]
        result["jobs"][job] = {
            "medians": medians, "attempts": tries,
            "wall_speedup_x_peer": round(b["wall_s"] / a["wall_s"], 3),
            "call_speedup_x_peer": round(b["call_s"] / a["call_s"], 3) if a["call_s"] and b["call_s"] else None,
            "max_abs_difference": float(np.abs(ours.reshape(theirs.shape) - theirs).max()),
            "rows": int(theirs.shape[0])}
        print(json.dumps({job: {k: v for k, v in result["jobs"][job].items() if k != "attempts"}}), flush=True)
    (root / "results.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
