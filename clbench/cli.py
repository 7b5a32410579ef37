"""The `clbench` command line: list, run, protocol, sweep, report, bench (sweep + report),
new-strategy, bench-svd, bench-overhead, bench-memory.

Expected errors (bad names or values, missing data) print one line and exit with status 2; no
traceback. Each command imports what it needs when it runs: listing, help and errors in names
import no training code (Avalanche), so they answer in about the time of importing torch
(`python -m clbench.startup` times them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from clbench.arguments import OneLineParser, check_seed, folder, positive_int, seed, summary
from clbench.errors import ClbenchError

LISTABLE = ("all", "benchmarks", "models", "strategies", "protocol", "suites")


def _list_suites() -> None:
    from clbench.sweep import expand, load_suite, shipped_suites

    print("suites (clbench sweep NAME / make bench SUITE=NAME):")
    for name in shipped_suites():
        suite = load_suite(name)
        strategies = suite.get("strategies", "all")
        shown = "every registered strategy" if strategies == "all" else ", ".join(strategies)
        print(
            f"  {name:18} {len(expand(suite))} runs: {', '.join(suite.get('benchmarks', []))}; "
            f"{shown}; seeds {', '.join(map(str, suite.get('seeds', [0])))}"
        )


def _list_benchmarks() -> dict[str, str]:
    """Print the benchmarks; return those that could not be loaded, with why."""
    from clbench.data import BENCHMARKS

    print("benchmarks:")
    for name, bench in BENCHMARKS.items():
        print(f"  {name:18} {bench.summary}")
    return BENCHMARKS.broken()


def _list_models() -> None:
    from clbench.models import MODELS

    print("models:")
    for name, entry in MODELS.items():
        print(f"  {name:18} {entry.summary}")


def _list_strategies() -> dict[str, str]:
    """Print the strategies and their parameters; return those that could not be loaded."""
    from clbench.params import describe_type, field_types
    from clbench.strategies import STRATEGIES

    print("strategies ([display name; family; role] summary; parameters: name: type = default):")
    for name, strategy in STRATEGIES.items():
        info = strategy.info
        shown = f"[{info.display_name}; {info.family}; {info.role}]"
        print(f"  {name:18} {shown} {strategy.summary}")
        for params_type in strategy.params_types:
            types = field_types(params_type)
            defaults = params_type()
            if strategy.selector is not None:
                chosen = getattr(defaults, strategy.selector)
                print(f"  {'':18}   with {strategy.selector} = {chosen!r}:")
            for f in fields(params_type):
                value = getattr(defaults, f.name)
                print(f"  {'':18}   {f.name}: {describe_type(types[f.name])} = {value!r}")
    from clbench.presets import broken_presets

    return {**STRATEGIES.broken(), **broken_presets()}


def _list_protocol() -> None:
    from clbench.params import describe_type, field_types
    from clbench.protocol import ProtocolParams

    print(
        "protocol (every strategy; per-benchmark presets apply, a strategy's own preset "
        "settings win over shared ones, and what --set types wins over both; "
        "clbench protocol shows a run's values and their sources):"
    )
    types = field_types(ProtocolParams)
    for f in fields(ProtocolParams):
        print(f"  {'':18}   {f.name}: {describe_type(types[f.name])} = {f.default!r}")


def cmd_list(args: argparse.Namespace) -> int:
    """Print what `args.what` names; each part imports only its own registry."""
    what = args.what
    broken: dict[str, str] = {}
    if what in ("all", "benchmarks"):
        broken |= _list_benchmarks()
    if what in ("all", "models"):
        _list_models()
    if what in ("all", "strategies"):
        broken |= _list_strategies()
    if what in ("all", "protocol"):
        _list_protocol()
    if what in ("all", "suites"):
        _list_suites()
    if broken:
        print("could not be loaded:")
        for name, why in sorted(broken.items()):
            print(f"  {name:18} {why}")
    return 0


def _check_names(benchmark: str, strategy: str) -> None:
    """The first checks of `clbench.resolution.resolve`, made before the training code is
    imported: a wrong benchmark name is reported without importing any strategy or Avalanche."""
    from clbench.data import BENCHMARKS

    BENCHMARKS.get(benchmark)
    from clbench.strategies import STRATEGIES

    STRATEGIES.get(strategy)


def cmd_run(args: argparse.Namespace) -> int:
    import torch

    from clbench.params import overrides_from_assignments

    torch.set_num_threads(args.threads)
    typed = overrides_from_assignments(args.set)
    _check_names(args.benchmark, args.strategy)
    from clbench.resolution import RunSpec
    from clbench.runner import run

    spec = RunSpec(
        benchmark=args.benchmark,
        strategy=args.strategy,
        seed=args.seed,
        model=args.model,
        device=args.device,
        data_root=args.data_root,
        download=not args.no_download,
        typed=typed,
    )
    say = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    result = run(spec, Path(args.results), progress=say, checkpoints=args.checkpoints, log=args.log)
    m = result["metrics"]
    print(
        f"{result['name']}: ACC {m['acc']:.2f}  BWT {m['bwt']:+.2f}  "
        f"forgetting {m['forgetting']:.2f} (points)  -> {Path(args.results) / result['name']}.json"
    )
    return 0


def cmd_protocol(args: argparse.Namespace) -> int:
    from clbench.params import overrides_from_assignments

    if args.paper_page:
        from clbench.protocol_card import paper_page

        sys.stdout.write(paper_page())
        return 0
    if not args.benchmark or not args.strategy:
        raise ClbenchError("clbench protocol needs --benchmark and --strategy (or --paper-page)")
    typed = overrides_from_assignments(args.set)
    _check_names(args.benchmark, args.strategy)
    from clbench.protocol_card import card_markdown, card_text
    from clbench.resolution import RunSpec, resolve

    spec = RunSpec(
        benchmark=args.benchmark,
        strategy=args.strategy,
        seed=args.seed,
        model=args.model,
        typed=typed,
    )
    resolved = resolve(spec)
    if args.json:
        document = {"name": resolved.name, "spec": resolved.config, "card": resolved.card_dicts()}
        print(json.dumps(document, indent=1))
    elif args.markdown:
        sys.stdout.write(card_markdown(resolved))
    else:
        sys.stdout.write(card_text(resolved))
    return 0


def _print_report(summary) -> None:
    from clbench.report.text import one_line

    for benchmark, table in summary.tables.items():
        print(f"\n{one_line(benchmark)}\n{table.markdown}")
    for line in summary.problems:
        print(f"  {line}")
    print(f"report: {summary.index}")


def _names(text: str | None) -> list[str] | None:
    """A comma-separated list of names, None when not given."""
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def cmd_report(args: argparse.Namespace) -> int:
    from clbench.report import write_report
    from clbench.report.build import ReportOptions
    from clbench.report.figures import FIGURES
    from clbench.report.layout import Selection, load_labels

    selection = Selection(
        strategies=_names(args.strategies),
        benchmarks=_names(args.benchmarks),
        labels=load_labels(Path(args.labels)) if args.labels else {},
    )
    options = ReportOptions(
        selection=selection,
        spread=args.spread,
        alpha=args.alpha,
        figures=tuple(_names(args.figures) or []) if args.figures is not None else tuple(FIGURES),
        allow_mixed=args.allow_mixed,
        tuning=Path(args.tuning) if args.tuning else None,
    )
    out = Path(args.out) if args.out else Path(args.results_dir) / "report"
    _print_report(write_report(Path(args.results_dir), out, options))
    return 0


def _suite_from_arguments(args: argparse.Namespace) -> tuple[dict, dict]:
    """The suite named on the command line, with `--strategies` and `--seeds` applied, and what
    `--set` typed (`{owner: {field: value}}`: benchmark-wide for `protocol`, or a strategy's),
    which applies to every run over the suite's own settings (`clbench.resolution`)."""
    from clbench.params import coerce, overrides_from_assignments
    from clbench.resolution import check_owners
    from clbench.sweep import load_suite, suite_strategies

    suite = load_suite(args.suite)
    if args.strategies:
        suite["strategies"] = _names(args.strategies)
    if args.seeds:
        suite["seeds"] = coerce(list[int], args.seeds, "--seeds")
        for value in suite["seeds"]:
            check_seed(value, "--seeds entry")
    typed = overrides_from_assignments(args.set)
    check_owners(typed, suite_strategies(suite))
    return suite, typed


def _dry_run(specs, results: Path, reuse_stale: bool) -> None:
    from clbench.sweep import plan

    planned = plan(specs, results, reuse_stale)
    present, stale = set(planned.present), set(planned.stale)
    for name in dict.fromkeys(planned.names):
        state = "present" if name in present else "stale: re-run" if name in stale else "to run"
        print(f"  {name}  [{state}]")
    print(
        f"{len(planned.todo)} to run ({len(planned.stale)} of them stale), "
        f"{len(planned.present)} present, in {results}"
    )


def _executor(args: argparse.Namespace):
    """The executor `_executor_arguments` describe."""
    from clbench.executors import ExecutorOptions, make_executor

    return make_executor(
        ExecutorOptions(
            name=args.executor,
            jobs=args.jobs,
            threads=args.threads,
            address=args.address,
            submitit_cluster=args.submitit_cluster,
            partition=args.partition,
            timeout_min=args.timeout_min,
            log=tuple(args.log),
        )
    )


def _sweep(args: argparse.Namespace):
    """Expand the suite and run it on the chosen executor; print the summary (None: dry run)."""
    from clbench.sweep import expand, run_sweep

    suite, typed = _suite_from_arguments(args)
    specs = expand(
        suite,
        data_root=args.data_root,
        device=args.device,
        typed=typed,
        origin=f"suite {args.suite}",
    )
    if args.dry_run:
        _dry_run(specs, Path(args.results), args.reuse_stale)
        return None
    executor = _executor(args)
    summary = run_sweep(specs, Path(args.results), executor, reuse_stale=args.reuse_stale)
    print(
        f"{len(summary.done)} runs done ({len(summary.stale)} of them stale results re-run), "
        f"{len(summary.skipped)} already present, {len(summary.failed)} failed"
    )
    for name, error in summary.failed.items():
        print(f"  failed: {name}: {error}")
    return summary


def cmd_sweep(args: argparse.Namespace) -> int:
    summary = _sweep(args)
    return 1 if summary is not None and summary.failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from clbench.report import write_report
    from clbench.report.build import ensure_report_folder

    results = Path(args.results)
    report = Path(args.report or results / "report")
    if not args.dry_run:
        ensure_report_folder(report)  # before the sweep, not after it
    summary = _sweep(args)
    if summary is None:
        return 0
    if summary.done or summary.skipped:
        _print_report(write_report(results, report))
    return 1 if summary.failed else 0


def _log_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log",
        action="append",
        default=[],
        metavar="KIND",
        help="write training logs (repeatable): csv, tensorboard or wandb, under "
        "RESULTS/NAME.logs/KIND/; per epoch the training and validation loss and the learning "
        "rate, per task the accuracies (docs/usage.md, Training logs)",
    )


def _sweep_arguments(parser: argparse.ArgumentParser, results: str | None) -> None:
    parser.add_argument(
        "--results",
        type=folder,
        default=results,
        required=results is None,
        help="folder of the result files" + (f" (default {results})" if results else ""),
    )
    parser.add_argument(
        "--data-root", type=folder, default="data", help="where datasets live (default ./data)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument(
        "--strategies", default=None, help="comma-separated strategies instead of the suite's"
    )
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds instead of the suite's"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OWNER.FIELD=VALUE",
        help="override a parameter in every run it applies to (repeatable); OWNER is protocol "
        "(benchmark-wide), model or a strategy, e.g. protocol.epochs=2 or ness.eps1=0.01",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs and whether each result is present, stale or to run; run nothing",
    )
    parser.add_argument(
        "--reuse-stale",
        action="store_true",
        help="keep results made by other code (a different code digest) instead of re-running",
    )
    _executor_arguments(parser)


def _executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Where and how many runs at a time: the options of `_executor`."""
    parser.add_argument("--executor", default="local", help="local (default), ray or submitit")
    parser.add_argument("--jobs", type=positive_int, default=1, help="runs at a time (default 1)")
    parser.add_argument(
        "--threads", type=positive_int, default=1, help="torch threads per run (default 1)"
    )
    parser.add_argument(
        "--address", default=None, help="ray: the cluster address (default: start a local Ray)"
    )
    parser.add_argument(
        "--submitit-cluster", default="slurm", help="submitit: slurm (default) or local"
    )
    parser.add_argument("--partition", default=None, help="submitit: the SLURM partition")
    parser.add_argument(
        "--timeout-min", type=positive_int, default=240, help="submitit: minutes per run"
    )
    _log_argument(parser)


def cmd_tune(args: argparse.Namespace) -> int:
    from clbench.params import coerce, overrides_from_assignments
    from clbench.resolution import check_owners
    from clbench.sweep import load_suite
    from clbench.tuning.objective import Objective, shown_score
    from clbench.tuning.study import TuneOptions, study_name, tune

    strategies = tuple(_names(args.strategies) or [])
    if not strategies:
        raise ClbenchError("--strategies is empty; name at least one strategy, e.g. naive,ewc")
    typed = overrides_from_assignments(args.set)
    check_owners(typed, strategies)
    seeds = tuple(coerce(list[int], args.seeds, "--seeds")) if args.seeds else None
    for value in seeds or ():
        check_seed(value, "--seeds entry")
    options = TuneOptions(
        benchmark=args.benchmark,
        strategies=strategies,
        trials=args.trials,
        results=Path(args.results),
        **({"seeds": seeds} if seeds else {}),
        suite=load_suite(args.suite) if args.suite else {},
        suite_name=args.suite or "",
        typed=typed,
        storage=args.storage,
        objective=Objective.parse(args.objective),
        data_root=args.data_root,
        device=args.device,
    )
    summary = tune(options, _executor(args))
    for name in (study_name(args.benchmark, s) for s in strategies):
        study = summary.get(name)
        if study is not None:
            print(
                f"{name}: best {study['objective']} {shown_score(study['best_score'])} (trial "
                f"{study['best_trial']}), presets {shown_score(study['preset_score'])}, "
                f"{study['finished']} trials ({study['failed']} failed)"
            )
    print(f"tuned suite: {Path(args.results) / 'tuned.toml'} (clbench sweep it on the test split)")
    return 0


def cmd_bench_svd(args: argparse.Namespace) -> int:
    from clbench.linalg import bench

    return bench.main(args.extra)


def cmd_bench_overhead(args: argparse.Namespace) -> int:
    from clbench import overhead

    return overhead.main(args.extra)


def cmd_new_strategy(args: argparse.Namespace) -> int:
    from clbench.scaffold import new_strategy

    target = new_strategy(args.name, Path(args.dir))
    print(f"wrote {target}; next:")
    print(f"  pip install -e {target}")
    print(f"  clbench run --benchmark split-digits --strategy {args.name}")
    return 0


def cmd_bench_memory(args: argparse.Namespace) -> int:
    from clbench import membench

    return membench.main(args.extra)


def _version() -> str:
    from importlib import metadata

    return metadata.version("clbench")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="clbench", description=summary(__doc__))
    parser.add_argument("--version", action="version", version=f"clbench {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    listing = commands.add_parser(
        "list", help="benchmarks, models, strategies (with their parameters), protocol, suites"
    )
    listing.add_argument(
        "what", nargs="?", default="all", choices=LISTABLE, help="what to list (default all)"
    )
    listing.set_defaults(handler=cmd_list)

    one = commands.add_parser("run", help="train one strategy on one benchmark, write its result")
    one.add_argument("--benchmark", required=True, help="a benchmark name (clbench list)")
    one.add_argument("--strategy", required=True, help="a strategy name (clbench list)")
    one.add_argument("--seed", type=seed, default=0, help="seed of data splits and training (0)")
    one.add_argument("--model", default=None, help="a model name; default: the benchmark's preset")
    one.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    one.add_argument(
        "--data-root", type=folder, default="data", help="where datasets live (default ./data)"
    )
    one.add_argument("--no-download", action="store_true", help="never try to download data")
    one.add_argument(
        "--results", type=folder, default="runs", help="folder for the result file (default ./runs)"
    )
    one.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OWNER.FIELD=VALUE",
        help="override a parameter (repeatable): protocol.lr=0.1 (benchmark-wide), "
        "ewc.ewc_lambda=10 (the strategy's), ness.protocol.lr=0.01 (the strategy's own protocol, "
        "which wins over benchmark-wide values), model.track_running_stats=true",
    )
    one.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch threads (default 1, as in sweeps; recorded in the result's environment)",
    )
    one.add_argument("--quiet", action="store_true", help="no per-task progress lines")
    one.add_argument(
        "--checkpoints",
        action="store_true",
        help="save the model after every task (RESULTS/NAME.ckpt/taskT.pt, T from 1, weights_only)",
    )
    _log_argument(one)
    one.set_defaults(handler=cmd_run)

    card = commands.add_parser(
        "protocol",
        help="print a run's protocol card: every setting with its value and source (no data, "
        "no training)",
    )
    card.add_argument("--benchmark", help="a benchmark name (clbench list)")
    card.add_argument("--strategy", help="a strategy name (clbench list)")
    card.add_argument("--seed", type=seed, default=0, help="the run's seed (default 0)")
    card.add_argument("--model", default=None, help="a model name; default: the preset's")
    card.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OWNER.FIELD=VALUE",
        help="override a parameter, as clbench run --set does (repeatable)",
    )
    shape = card.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the card as JSON (as result files)")
    shape.add_argument("--markdown", action="store_true", help="the card as a Markdown table")
    shape.add_argument(
        "--paper-page",
        action="store_true",
        help="the Markdown page of every paper benchmark's cards (docs/protocols.md)",
    )
    card.set_defaults(handler=cmd_protocol)

    sweep = commands.add_parser("sweep", help="run a suite's runs (resumable, parallel)")
    sweep.add_argument("suite", metavar="SUITE", help="a shipped suite's name or a .toml path")
    _sweep_arguments(sweep, results=None)
    sweep.set_defaults(handler=cmd_sweep)

    suite = commands.add_parser("bench", help="sweep a suite, then write its report")
    suite.add_argument("--suite", default="default", help="a shipped suite's name or a .toml path")
    _sweep_arguments(suite, results="runs/default")
    suite.add_argument(
        "--report", type=folder, default=None, help="report folder (default RESULTS/report)"
    )
    suite.set_defaults(handler=cmd_bench)

    tuning = commands.add_parser(
        "tune", help="the same search budget for every strategy, scored on validation data"
    )
    tuning.add_argument("--benchmark", required=True, help="the benchmark to tune on")
    tuning.add_argument(
        "--strategies", required=True, help="comma-separated strategies, each a study of its own"
    )
    tuning.add_argument(
        "--trials", type=positive_int, required=True, help="finished trials per strategy"
    )
    tuning.add_argument(
        "--results", type=folder, default="runs/tuning",
        help="folder of the studies, their runs and the tuned suite (default runs/tuning)",
    )  # fmt: skip
    tuning.add_argument(
        "--storage", default=None,
        help="an Optuna RDB URL that processes or machines share (default RESULTS/studies.db)",
    )  # fmt: skip
    tuning.add_argument(
        "--seeds", default=None, help="comma-separated seeds every trial trains (default 100)"
    )
    tuning.add_argument(
        "--suite", default=None,
        help="a suite whose presets and overrides every trial starts from (default: the presets)",
    )  # fmt: skip
    tuning.add_argument(
        "--objective", default="acc",
        help="acc (default: final validation ACC) or acc:forgetting<=F (ACC within F points of "
        "forgetting)",
    )  # fmt: skip
    tuning.add_argument(
        "--set", action="append", default=[], metavar="OWNER.FIELD=VALUE",
        help="fix a value in every trial (repeatable); a fixed field is not searched",
    )  # fmt: skip
    tuning.add_argument(
        "--data-root", type=folder, default="data", help="where datasets live (default ./data)"
    )
    tuning.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    _executor_arguments(tuning)
    tuning.set_defaults(handler=cmd_tune)

    report = commands.add_parser("report", help="tables and figures from a results folder")
    report.add_argument("results_dir", metavar="RESULTS_DIR")
    report.add_argument(
        "--out", type=folder, default=None, help="report folder (default RESULTS_DIR/report)"
    )
    report.add_argument(
        "--strategies", default=None, help="strategies to show, in this order (comma-separated)"
    )
    report.add_argument("--benchmarks", default=None, help="benchmarks to show (comma-separated)")
    report.add_argument(
        "--labels",
        default=None,
        metavar="FILE",
        help='TOML file mapping run labels to display names, e.g. ness = "NESS (ours)"',
    )
    report.add_argument(
        "--figures",
        default=None,
        help="figures to draw (comma-separated names; empty for none; default all)",
    )
    report.add_argument(
        "--spread",
        choices=("std", "ci", "bootstrap"),
        default="std",
        help="spread shown after means and as error bars: std (default), ci (95 %% t-based "
        "confidence interval), bootstrap (95 %% percentile bootstrap)",
    )
    report.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level of the tests behind bold values and pairwise comparisons",
    )
    report.add_argument(
        "--allow-mixed",
        action="store_true",
        help="pool runs that conflict (duplicate seeds, mixed code, machines or threads) and "
        "list the conflicts in the report, instead of refusing",
    )
    report.add_argument(
        "--tuning", type=folder, default=None,
        help="the --results folder of clbench tune: add its tuned-against-presets comparison",
    )  # fmt: skip
    report.set_defaults(handler=cmd_report)

    svd = commands.add_parser(
        "bench-svd", help="time the SVD utility against numpy (bench-svd --help)", add_help=False
    )
    svd.set_defaults(handler=cmd_bench_svd, passes_extra=True)

    scaffold = commands.add_parser(
        "new-strategy", help="write a strategy package skeleton that installs and runs"
    )
    scaffold.add_argument("name", metavar="NAME", help="the strategy's name, e.g. my-method")
    scaffold.add_argument(
        "--dir", type=folder, default=".", help="where to write clbench-NAME/ (default .)"
    )
    scaffold.set_defaults(handler=cmd_new_strategy)

    steps = commands.add_parser(
        "bench-overhead",
        help="time a training step per strategy against naive (bench-overhead --help)",
        add_help=False,
    )
    steps.set_defaults(handler=cmd_bench_overhead, passes_extra=True)

    memory = commands.add_parser(
        "bench-memory",
        help="peak memory of a run per strategy, and bytes kept (bench-memory --help)",
        add_help=False,
    )
    memory.set_defaults(handler=cmd_bench_memory, passes_extra=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    args.extra = extra
    if args.extra and not getattr(args, "passes_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(args.extra)}")
    try:
        code = args.handler(args)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not at exit
        return code
    except ClbenchError as err:
        for line in getattr(err, "lines", ()):  # a report's conflicts, one line each
            print(f"clbench: conflict: {line}", file=sys.stderr)
        print(f"clbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C; a sweep's `Interrupted` (SIGTERM too) says more
        print(f"clbench: {str(err) or 'interrupted'}", file=sys.stderr)
        return getattr(err, "exit_status", 130)
    except BrokenPipeError:  # the reader of stdout left early (`clbench list | head`)
        # Point stdout at /dev/null so that flushing it at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a process ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
