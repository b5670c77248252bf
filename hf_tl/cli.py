"""The ``hf-tl`` command: ``train``, ``trainable`` (dry run), ``predict``, ``compare``, ``advise``, ``tune``,
``ensemble``, ``push``, ``export`` and ``embed``."""

from __future__ import annotations

import sys
from pathlib import Path

from hf_tl.errors import HfTlError, exit_on_user_error, suggest
from hf_tl.flags import ArgumentParser


def _trainable(argv: list[str]) -> None:
    from hf_tl.config_io import parse_args
    from hf_tl.dry_run import describe_config

    print(describe_config(parse_args(argv, prog="hf-tl trainable", description="Print what a config would train "
                                     "(parameters, blocks, head), without training: hf-tl trainable FILE.yaml.")))


def _train(argv: list[str]) -> None:
    from hf_tl.config_io import parse_args

    config = parse_args(argv, prog="hf-tl train", description="Train a run from a YAML config and/or flags; the run "
                        "directory (output_dir) can be loaded back for prediction.")
    if config.train.dry_run:
        _trainable(argv)
        return
    from hf_tl.runs import train  # once the flags are read: --help does not wait for the training libraries

    train(config)


def _predict(argv: list[str]) -> None:
    from hf_tl.predict import load_run
    from hf_tl.predict_io import check_output_file, predict_rows, read_rows, write_rows

    parser = ArgumentParser(prog="hf-tl predict", description="Predict for rows of a CSV/TSV/JSONL file with a "
                            "run; rows that carry the label column are scored against it too.")
    parser.add_argument("--run", required=True, metavar="DIR", help="A finished run directory.")
    parser.add_argument("--input", required=True, metavar="FILE",
                        help="CSV/TSV (with a header row, or headerless with column names) or JSONL file of rows.")
    parser.add_argument("--output", required=True, metavar="FILE",
                        help="Where to write the rows with a 'prediction' column (.csv, .tsv or .jsonl).")
    parser.add_argument("--task", default=None, help="The task to predict (needed for a multi-task run).")
    parser.add_argument("--column_names", default=None, metavar="A,B,C",
                        help="Names of the columns of a headerless CSV/TSV, e.g. sentence1,sentence2,score "
                             "(default: the column_names the run trained with; a header row is recognised and "
                             "skipped).")
    parser.add_argument("--batch_size", type=int, default=64, help="Inputs per forward pass.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing --output file.")
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="Allow modelling code shipped with the run's checkpoint (off; the run's own files "
                             "cannot switch it on). Only for runs whose author you trust.")
    args = parser.parse_args(argv)
    if args.column_names and Path(args.input).suffix.lower() not in (".csv", ".tsv"):
        raise HfTlError(f"--column_names names the columns of a headerless .csv/.tsv file; '{args.input}' is not "
                        f"one, so drop --column_names.")
    check_output_file(args.output, args.overwrite, protected=[args.input])  # before the model loads
    run = load_run(args.run, trust_remote_code=args.trust_remote_code)
    name, spec = run.task(args.task)
    # Without the flag, read the file as the run's training files were read ('' = the file has a header row).
    names = spec.data.column_names if args.column_names is None else args.column_names
    rows = read_rows(args.input, [c.strip() for c in names.split(",")] if names else None)
    rows, metrics = predict_rows(run, rows, name, args.batch_size, source=args.input)
    write_rows(args.output, rows)
    print(f"Wrote {len(rows)} predictions to {args.output}")
    if metrics:
        print(", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))


def _embed(argv: list[str]) -> None:
    from hf_tl.config import ModelArguments
    from hf_tl.embed import EmbedArguments, embed_file
    from hf_tl.flags import dataclass_parser
    from hf_tl.run_config import unknown_option

    parser = dataclass_parser((ModelArguments, EmbedArguments), prog="hf-tl embed",
                              usage="%(prog)s --input FILE --output OUT.parquet|OUT.npy [--model_name_or_path M | "
                                    "--run DIR] [--OPTION VALUE ...]",
                              description="Write a backbone's embeddings of a file's texts to Parquet or NumPy.")
    model_args, args, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if remaining:
        raise HfTlError(unknown_option(remaining[0], [f"--{a.dest}" for a in parser._actions], flag=True))
    out = embed_file(model_args, args)
    print(f"Wrote embeddings of {args.input} to {out}")


def _compare(argv: list[str]) -> None:
    from hf_tl.compare import DEFAULT_EVAL_POINTS, compare, redraw
    from hf_tl.significance import N_BOOTSTRAP

    parser = ArgumentParser(prog="hf-tl compare", description="Run several strategies x seeds on one "
                                     "config and write a comparison folder (table, charts, runs).")
    parser.add_argument("config", nargs="?", help="The recipe config (YAML) every run starts from.")
    parser.add_argument("--strategies", help="Comma-separated, e.g. zero_shot,frozen,full,lora.")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds per strategy (the config's seed and on).")
    parser.add_argument("--output_dir", default=None, help="The comparison folder (default: runs/compare_CONFIG).")
    parser.add_argument("--eval_points", type=int, default=DEFAULT_EVAL_POINTS,
                        help="Evaluations per trained run, for its learning curve (0: the config's own schedule; "
                             "--eval_strategy or --eval_steps given as overrides win).")
    parser.add_argument("--bootstrap", type=int, default=N_BOOTSTRAP,
                        help="Replicates of the test of each pair of strategies (paired bootstrap over dev examples "
                             "and seeds; significance.md); 0 skips it.")
    parser.add_argument("--redraw", metavar="FOLDER", default=None,
                        help="Rebuild the tables and charts of a comparison folder (or its JSON) from its recorded "
                             "numbers, training nothing; CONFIG, if given, tells architectures the JSON lacks.")
    args, overrides = parser.parse_known_args(argv)  # the rest: --key value flags for every run
    if args.redraw:
        if overrides or args.strategies:
            raise HfTlError(f"--redraw trains nothing and takes no --strategies or run flags; drop "
                            f"{' '.join(overrides) or '--strategies'}.")
        folder = redraw(args.redraw, args.config)
        print((folder / "table.md").read_text())
        print(f"Tables and charts redrawn in {folder}")
        return
    if not args.config or not args.strategies:
        raise HfTlError("hf-tl compare needs a CONFIG and --strategies (or --redraw FOLDER to redraw a comparison).")
    output = args.output_dir or f"runs/compare_{Path(args.config).stem}"
    folder = compare(args.config, [s.strip() for s in args.strategies.split(",") if s.strip()], args.seeds, output,
                     overrides, eval_points=args.eval_points, bootstrap=args.bootstrap)
    print((folder / "table.md").read_text())
    print(f"Comparison written to {folder}")


def _advise(argv: list[str]) -> None:
    from hf_tl.advisor import DEFAULT_BUDGET_MIN

    parser = ArgumentParser(prog="hf-tl advise", description="Measure a config's task and backbone within a time "
                            "budget (data size, domain similarity, zero-shot score, a linear head's learning curve), "
                            "place the task in the data-size x domain-similarity matrix and recommend strategies; "
                            "the top one is written as a config.")
    parser.add_argument("config", help="The recipe config (YAML) of the task and backbone.")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_MIN, metavar="MINUTES",
                        help="Wall-clock minutes the measurements may take on this machine.")
    parser.add_argument("--output_dir", default=None, help="The advice folder (default: runs/advise_CONFIG).")
    parser.add_argument("--reference_file", default=None, metavar="FILE",
                        help="Generic reference text, one paragraph a line (default: $HF_TL_REFERENCE_CORPUS, else "
                             "wikitext-2/wiki.valid.tokens under $HF_TL_DATA_DIR).")
    args, overrides = parser.parse_known_args(argv)  # the rest: --key value flags applied to the config
    from hf_tl.advisor import advise
    from hf_tl.advisor.report import REPORT_FILE

    result = advise(args.config, args.budget, args.output_dir, overrides, args.reference_file)
    folder = result["folder"]
    print((folder / REPORT_FILE).read_text())
    if result["config"]:
        print(f"Advice written to {folder}; train the top pick with hf-tl train --config {result['config']}")
    else:
        print(f"Advice written to {folder}")


def _push(argv: list[str]) -> None:
    from hf_tl.hub import push_folder

    parser = ArgumentParser(prog="hf-tl push", description="Upload a finished run directory or a comparison "
                                     "folder to the Hub (token: HF_TOKEN or huggingface-cli login).")
    parser.add_argument("folder", help="A run directory or a comparison folder.")
    parser.add_argument("repo_id", help="The Hub repo, e.g. user/name (created if missing).")
    parser.add_argument("--private", action="store_true", help="Create the repo as private.")
    args = parser.parse_args(argv)
    print(f"Pushed to {push_folder(args.folder, args.repo_id, private=args.private)}")


def _export(argv: list[str]) -> None:
    from hf_tl.standard.plan import FORMATS, LOADERS

    parser = ArgumentParser(prog="hf-tl export", description="Write a finished run's model in a standard form that "
                            "its library loads without hf_tl; a form that cannot express the run exactly is refused, "
                            "saying why.")
    parser.add_argument("run", help="A finished run directory (or its Hub repo id).")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="sentence-transformers (SentenceTransformer), cross-encoder (CrossEncoder), "
                             "transformers (AutoModelForSequenceClassification, pipeline) or peft "
                             "(AutoPeftModelForSequenceClassification).")
    parser.add_argument("--output", required=True, metavar="DIR", help="The folder to write (must not exist).")
    parser.add_argument("--merge", action="store_true",
                        help="Fold a LoRA/IA3 adapter into the backbone (the non-PEFT forms of an adapter run).")
    parser.add_argument("--overwrite", action="store_true", help="Replace an earlier export in --output.")
    args = parser.parse_args(argv)
    from hf_tl.standard.export import export

    out = export(args.run, args.format, args.output, merge=args.merge, overwrite=args.overwrite)
    print(f"Wrote the {args.format} form of {args.run} to {out}; load it with {LOADERS[args.format]}(\"{out}\")")


def _tune(argv: list[str]) -> None:
    parser = ArgumentParser(prog="hf-tl tune", description="Search a config's hyperparameters with Optuna: each "
                            "trial a child run, pruned on its eval log; writes a table, a chart and the best config.")
    parser.add_argument("config", help="The recipe config (YAML) every trial starts from.")
    parser.add_argument("--search_space", required=True, help="YAML: option -> {type: float|int|categorical, low, "
                                                              "high, log} or {type: categorical, choices: [...]}.")
    parser.add_argument("--n_trials", type=int, default=20, help="Trials in all (an interrupted search continues).")
    parser.add_argument("--output_dir", default=None, help="The tuning folder (default: runs/tune_CONFIG).")
    parser.add_argument("--timeout", type=float, default=None, help="Start no trial after this many seconds.")
    args, overrides = parser.parse_known_args(argv)  # the rest: --key value flags for every trial
    from hf_tl.tune import tune

    output = args.output_dir or f"runs/tune_{Path(args.config).stem}"
    folder = tune(args.config, args.search_space, args.n_trials, output, overrides, args.timeout)
    print((folder / "trials.md").read_text())
    print(f"Search written to {folder}; train the best config with hf-tl train --config {folder / 'best_config.yaml'}")


def _ensemble(argv: list[str]) -> None:
    parser = ArgumentParser(prog="hf-tl ensemble", description="Make a run directory whose predictions are the "
                            "averaged predictions of finished runs (copied into it); it loads with hf_tl.load_run, "
                            "predicts, and pushes like any run.")
    parser.add_argument("runs", nargs="+", help="Finished run directories of one task (a cross-validation run "
                                                "stands for its folds).")
    parser.add_argument("--output_dir", required=True, help="The ensemble's run directory.")
    parser.add_argument("--weights", default="equal", choices=("equal", "dev"),
                        help="equal, or dev: non-negative weights fitted on the dev split (its dev score is then "
                             "optimistic).")
    args, rest = parser.parse_known_args(argv)  # the rest: run options, e.g. --push_to_hub true --hub_model_id u/m
    from hf_tl.config_io import parse_args
    from hf_tl.runs import train
    from hf_tl.strategies.ensemble import ensemble_flags

    train(parse_args([*ensemble_flags(args.runs, args.weights), "--output_dir", args.output_dir, *rest]))


COMMANDS = {
    "train": (_train, "Train a run: hf-tl train --config FILE.yaml [--key value ...]"),
    "trainable": (_trainable, "Print what trains, without training: hf-tl trainable FILE.yaml [--key value ...]"),
    "predict": (_predict, "Score a file with a run: hf-tl predict --run DIR --input FILE --output FILE"),
    "compare": (_compare, "Compare strategies: hf-tl compare CONFIG --strategies a,b,c --seeds 3 [--key value]"),
    "advise": (_advise, "Recommend strategies from measurements: hf-tl advise CONFIG [--budget MINUTES]"),
    "tune": (_tune, "Search hyperparameters: hf-tl tune CONFIG --search_space FILE --n_trials N [--key value]"),
    "ensemble": (_ensemble, "Average finished runs: hf-tl ensemble RUN RUN ... --output_dir DIR [--weights dev]"),
    "push": (_push, "Upload a run or comparison to the Hub: hf-tl push FOLDER user/name [--private]"),
    "export": (_export, "Write a run as a standard model: hf-tl export RUN --format FORMAT --output DIR [--merge]"),
    "embed": (_embed, "Write embeddings: hf-tl embed --model_name_or_path M --input FILE --output OUT.parquet|.npy"),
}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hf-tl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        raise HfTlError(f"Unknown command '{argv[0]}'; choose one of {', '.join(COMMANDS)} (hf-tl --help lists "
                        f"them)." + suggest(argv[0], COMMANDS))
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
        print("usage: hf-tl COMMAND [ARGS]\n\ncommands:\n" + "\n".join(lines)
              + "\n\nhf-tl COMMAND --help shows the options of one command.")
        return
    command, rest = argv[0], argv[1:]
    if command == "trainable" and rest and not rest[0].startswith("-"):
        rest = ["--config", rest[0], *rest[1:]]  # hf-tl trainable CONFIG [overrides]
    COMMANDS[command][0](rest)


def entry() -> None:
    """The ``hf-tl`` console script: :func:`main`, then the process ends at once (see
    :func:`hf_tl.process.exit_when_done`)."""
    from hf_tl.process import exit_when_done

    exit_when_done(main)


if __name__ == "__main__":
    entry()
