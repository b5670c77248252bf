"""The ``hf-tl`` command: ``train``, ``trainable`` (dry run), ``predict``, ``compare``, ``push`` and ``embed``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hf_tl.errors import HfTlError, exit_on_user_error


def _trainable(argv: list[str]) -> None:
    from hf_tl.config_io import parse_args
    from hf_tl.dry_run import describe_config

    print(describe_config(parse_args(argv)))


def _train(argv: list[str]) -> None:
    from hf_tl.config_io import parse_args
    from hf_tl.runs import train

    config = parse_args(argv)
    if config.train.dry_run:
        _trainable(argv)
        return
    train(config)


def _predict(argv: list[str]) -> None:
    from hf_tl.predict import load_run
    from hf_tl.predict_io import predict_rows, read_rows, write_rows

    parser = argparse.ArgumentParser(prog="hf-tl predict", description="Predict for rows of a CSV/JSONL file with a "
                                     "run; rows that carry the label column are scored against it too.")
    parser.add_argument("--run", required=True, help="A finished run directory.")
    parser.add_argument("--input", required=True, help="CSV/TSV (with header) or JSONL file of rows.")
    parser.add_argument("--output", required=True, help="Where to write the rows with a 'prediction' column.")
    parser.add_argument("--task", default=None, help="The task to predict (needed for a multi-task run).")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args(argv)
    run = load_run(args.run)
    rows, metrics = predict_rows(run, read_rows(args.input), args.task, args.batch_size, source=args.input)
    write_rows(args.output, rows)
    print(f"Wrote {len(rows)} predictions to {args.output}")
    if metrics:
        print(", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))


def _embed(argv: list[str]) -> None:
    from transformers import HfArgumentParser

    from hf_tl.config import ModelArguments
    from hf_tl.embed import EmbedArguments, embed_file

    parser = HfArgumentParser((ModelArguments, EmbedArguments), prog="hf-tl embed", allow_abbrev=False,
                              description="Write a backbone's embeddings of a file's texts to Parquet or NumPy.")
    model_args, args = parser.parse_args_into_dataclasses(argv)
    out = embed_file(model_args, args)
    print(f"Wrote embeddings of {args.input} to {out}")


def _compare(argv: list[str]) -> None:
    from hf_tl.compare import compare

    parser = argparse.ArgumentParser(prog="hf-tl compare", description="Run several strategies x seeds on one "
                                     "config and write a comparison folder (table, charts, runs).")
    parser.add_argument("config", help="The recipe config (YAML) every run starts from.")
    parser.add_argument("--strategies", required=True, help="Comma-separated, e.g. zero_shot,frozen,full,lora.")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per strategy (the config's seed and on).")
    parser.add_argument("--output_dir", default=None, help="The comparison folder (default: runs/compare_CONFIG).")
    args, overrides = parser.parse_known_args(argv)  # the rest: --key value flags for every run
    output = args.output_dir or f"runs/compare_{Path(args.config).stem}"
    folder = compare(args.config, [s.strip() for s in args.strategies.split(",") if s.strip()], args.seeds, output,
                     overrides)
    print((folder / "table.md").read_text())
    print(f"Comparison written to {folder}")


def _push(argv: list[str]) -> None:
    from hf_tl.hub import push_folder

    parser = argparse.ArgumentParser(prog="hf-tl push", description="Upload a finished run directory or a comparison "
                                     "folder to the Hub (token: HF_TOKEN or huggingface-cli login).")
    parser.add_argument("folder", help="A run directory or a comparison folder.")
    parser.add_argument("repo_id", help="The Hub repo, e.g. user/name (created if missing).")
    parser.add_argument("--private", action="store_true", help="Create the repo as private.")
    args = parser.parse_args(argv)
    print(f"Pushed to {push_folder(args.folder, args.repo_id, private=args.private)}")


COMMANDS = {
    "train": (_train, "Train a run: hf-tl train --config FILE.yaml [--key value ...]"),
    "trainable": (_trainable, "Print what trains, without training: hf-tl trainable FILE.yaml [--key value ...]"),
    "predict": (_predict, "Score a file with a run: hf-tl predict --run DIR --input FILE --output FILE"),
    "compare": (_compare, "Compare strategies: hf-tl compare CONFIG --strategies a,b,c --seeds 3 [--key value]"),
    "push": (_push, "Upload a run or comparison to the Hub: hf-tl push FOLDER user/name [--private]"),
    "embed": (_embed, "Write embeddings: hf-tl embed --model_name_or_path M --input FILE --output OUT.parquet|.npy"),
}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hf-tl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
        print("usage: hf-tl COMMAND [ARGS]\n\ncommands:\n" + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            raise HfTlError(f"Unknown command '{argv[0]}'; choose one of {', '.join(COMMANDS)}.")
        return
    command, rest = argv[0], argv[1:]
    if command == "trainable" and rest and not rest[0].startswith("-"):
        rest = ["--config", rest[0], *rest[1:]]  # hf-tl trainable CONFIG [overrides]
    COMMANDS[command][0](rest)


if __name__ == "__main__":
    main()
