"""``clbench bench-overhead``: the cost of a training step per strategy, relative to `naive`, and
the harness's `naive` against a bare PyTorch loop doing the same work.

Every strategy is built through the runner, trains task 1 under the benchmark's protocol (with
`--first-task-epochs` epochs), then is set up for task 2 exactly as Avalanche's `train` sets it up
(dataset adaptation, data loader, plugins' `before_training_exp`, the protocol's optimizer).
A timed segment is `--steps` training iterations of the template's own loop (every plugin hook
included) over batches drawn once from the strategy's own data loader. Segments of all
strategies are interleaved within each of `--repeats` rounds (the order rotates), so drift of the
machine hits all alike; a strategy's ratio is taken per round against that round's `naive`, and
the median and range over rounds are printed.

For the projection family it also times the products the projection adds to a step, apart from
everything else: the arithmetic under its ratio, however the products are placed.

The harness-against-bare comparison times `naive` twice per round: the template's loop over the
same preloaded batches against a plain loop (zero_grad, forward, cross-entropy, backward, SGD
step) on a copy of the model; and a whole epoch of task 2 each with its data loading (the
harness's loader against a shuffled `DataLoader` over a `TensorDataset` of the same samples).
Last, it times an epoch of data loading alone through Avalanche's own loader, the harness's and
the `TensorDataset` one.
"""

from __future__ import annotations

import copy
import functools
import itertools
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader
from avalanche.models import avalanche_forward
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from clbench.arguments import OneLineParser, positive_int, summary
from clbench.params import overrides_from_assignments
from clbench.resolution import RunSpec, resolve
from clbench.runner import Prepared, prepare
from clbench.strategies import STRATEGIES
from clbench.strategies.input_projection import InputProjectedLinear
from clbench.strategies.projection import GradientProjection, projected_layers

TARGETS = {"gpm": 1.3, "sgp": 1.3, "ness": 1.3}
HARNESS_TARGET = 1.1


@dataclass
class StepBench:
    """One strategy set up to train task 2, with a fixed list of its own batches."""

    name: str
    prepared: Prepared
    batches: list

    def segment(self) -> None:
        """`len(batches)` iterations of the template's training loop."""
        template = self.prepared.template
        # The template's loop only iterates its loader: the fixed batches stand in for it.
        template.dataloader = self.batches  # type: ignore[assignment]
        template.training_epoch()


def set_up_task(prepared: Prepared, task: int, steps: int) -> list:
    """Put the template in the state `train` leaves it in before the first iteration of the task
    at index `task` (task `task + 1`); return `steps` batches of its data loader."""
    template = prepared.template
    prepared.schedule.start_task(task, [prepared.scenario.valid_stream[task].dataset])
    template.is_training, template._stop_training = True, False
    template.model.train()
    template.experience = prepared.scenario.train_stream[task]
    template._before_training()
    template._before_training_exp()
    template._before_training_epoch()
    return list(itertools.islice(iter(template.dataloader), steps))


def build(
    strategy: str,
    benchmark: str,
    first_task_epochs: int,
    steps: int,
    overrides: dict,
    model: str | None = None,
) -> StepBench:
    spec = RunSpec(
        benchmark,
        strategy,
        seed=0,
        model=model,
        overrides={
            **overrides,
            "protocol": {**overrides.get("protocol", {}), "epochs": first_task_epochs},
        },
    )
    prepared = prepare(resolve(spec))
    prepared.train_task(0)
    return StepBench(strategy, prepared, set_up_task(prepared, 1, steps))


def projection_products(bench: StepBench) -> list[Callable[[], Tensor]]:
    """The products a projection strategy adds to a step, as its layers' backward (input or weight
    side, by the same rule) or its `after_backward` compute them, on the first batch's layer
    inputs or on weight-shaped gradients; empty for other strategies."""
    plugin = next(
        (p for p in bench.prepared.built.plugins if isinstance(p, GradientProjection)), None
    )
    if plugin is None:
        return []
    model = bench.prepared.template.model
    layers = projected_layers(model)
    inputs: dict[str, Tensor] = {}

    def keep(name: str) -> Callable:
        return lambda module, args, output: inputs.__setitem__(name, args[0].detach())

    hooks = [layer.register_forward_hook(keep(name)) for name, layer in layers.items()]
    x, _, t = bench.batches[0]
    with torch.no_grad():
        avalanche_forward(model, x, t)
    for hook in hooks:
        hook.remove()
    products: list[Callable[[], Tensor]] = []
    for name, layer in layers.items():
        if isinstance(layer, InputProjectedLinear):
            assert isinstance(layer, nn.Linear)  # mixed into Linear layers only (`project_inputs`)
            rows = inputs[name].flatten(0, -2)
            weight = layer.weight
            operand = rows if len(rows) < len(weight) else torch.randn_like(weight)
            products.append(functools.partial(layer.projection.apply, operand))
    for weight, projection in plugin.targets(model).projected:
        products.append(functools.partial(projection.apply, torch.randn_like(weight).flatten(1)))
    return products


def bare_step_loop(
    model: torch.nn.Module, batches: Iterable[Sequence[Tensor]], lr: float
) -> Callable[[], None]:
    """A plain PyTorch loop over `batches` (x, y, task) on `model`."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)

    def loop() -> None:
        model.train()
        for x, y, t in batches:
            optimizer.zero_grad()
            F.cross_entropy(model(x, t), y).backward()
            optimizer.step()

    return loop


def _seconds(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _call_all(functions: Sequence[Callable[[], object]]) -> None:
    for function in functions:
        function()


def _drain(loader) -> None:
    for _ in loader:
        pass


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f}x  [{min(values):.2f}, {max(values):.2f}]"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="clbench bench-overhead", description=summary(__doc__))
    parser.add_argument("--benchmark", default="pmnist5k")
    parser.add_argument("--model", default=None, help="default: the benchmark's preset model")
    parser.add_argument("--strategies", default="all", help="comma-separated names, or all")
    parser.add_argument(
        "--steps", type=positive_int, default=50, help="iterations per timed segment"
    )
    parser.add_argument("--repeats", type=positive_int, default=7, help="interleaved rounds")
    parser.add_argument(
        "--first-task-epochs", type=positive_int, default=1, help="epochs of task 1 (default 1)"
    )
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="OWNER.FIELD=VALUE",
        help="protocol.FIELD for every strategy (e.g. protocol.batch_size=64), or STRATEGY.FIELD "
        "for that strategy (e.g. gpm.threshold=0.97)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    overrides = overrides_from_assignments(args.set)
    torch.set_num_threads(args.threads)
    names = (
        [n for n, _ in STRATEGIES.items()]
        if args.strategies == "all"
        else args.strategies.split(",")
    )
    names = ["naive", *[n for n in names if n != "naive"]]
    unknown = set(overrides) - {"protocol", *names}
    if unknown:
        parser.error(
            f"--set {sorted(unknown)[0]}.*: not the protocol or a benchmarked strategy "
            f"({', '.join(names)})"
        )
    warnings.simplefilter("ignore")
    benches = []
    for name in names:
        started = time.perf_counter()
        own = {owner: v for owner, v in overrides.items() if owner in ("protocol", name)}
        bench = build(name, args.benchmark, args.first_task_epochs, args.steps, own, args.model)
        benches.append(bench)
        print(f"set up {name} ({time.perf_counter() - started:.1f}s)", flush=True)

    naive = benches[0]
    protocol = naive.prepared.resolved.protocol
    bare_model = copy.deepcopy(naive.prepared.template.model)
    bare_steps = bare_step_loop(bare_model, naive.batches, protocol.lr)

    template = naive.prepared.template
    template.make_train_dataloader()  # once per task, as Avalanche does
    harness_loader = template.dataloader
    x, y, t = (torch.cat(column) for column in zip(*harness_loader, strict=True))
    bare_loader = DataLoader(TensorDataset(x, y, t), batch_size=protocol.batch_size, shuffle=True)

    def harness_epoch() -> None:  # the template's loop with its own data loading
        template.dataloader = harness_loader
        template.training_epoch()

    bare_epoch = bare_step_loop(bare_model, bare_loader, protocol.lr)

    per_step: dict[str, list[float]] = {b.name: [] for b in benches}
    ratios: dict[str, list[float]] = {b.name: [] for b in benches}
    harness: dict[str, list[float]] = {"step": [], "epoch": []}
    for round_ in range(args.repeats):
        shift = round_ % len(benches)
        order = benches[shift:] + benches[:shift]
        step_seconds = {b.name: _seconds(b.segment) / args.steps for b in order}
        for name, value in step_seconds.items():
            per_step[name].append(value)
            ratios[name].append(value / step_seconds["naive"])
        harness["step"].append(_seconds(naive.segment) / _seconds(bare_steps))
        harness["epoch"].append(_seconds(harness_epoch) / _seconds(bare_epoch))

    print(
        f"\n{args.benchmark} ({naive.prepared.resolved.model}), batch {protocol.batch_size}, "
        f"step = one training iteration of task 2 after task 1; "
        f"{args.repeats} interleaved rounds of {args.steps} steps, "
        f"{args.threads} thread(s)"
    )
    print(f"{'strategy':18} {'ms/step':>8}  {'ratio to naive [min, max]':>26}  target")
    for bench in benches:
        target = TARGETS.get(bench.name)
        median = statistics.median(ratios[bench.name])
        verdict = (
            "" if target is None else f"<= {target}  {'met' if median <= target else 'MISSED'}"
        )
        print(
            f"{bench.name:18} {1e3 * statistics.median(per_step[bench.name]):8.3f}  "
            f"{_summary(ratios[bench.name]):>26}  {verdict}"
        )
    floors = {b.name: projection_products(b) for b in benches}
    floors = {name: products for name, products in floors.items() if products}
    if floors:
        naive_step = statistics.median(per_step["naive"])
        print(
            "\nthe projection's products alone (timed apart, on the first batch's layer inputs): "
            "per step, and (naive's step + them) / naive's step:"
        )
        for name, products in floors.items():
            steps = [product for _ in range(args.steps) for product in products]
            seconds = statistics.median(
                _seconds(functools.partial(_call_all, steps)) / args.steps
                for _ in range(args.repeats)
            )
            print(f"  {name:16} {1e3 * seconds:8.3f} ms  {1 + seconds / naive_step:.2f}x")
    print("\nharness naive / bare PyTorch loop (median [min, max]):")
    for key, label in (
        ("step", "steps on preloaded batches"),
        ("epoch", "an epoch with data loading"),
    ):
        median = statistics.median(harness[key])
        verdict = "met" if median <= HARNESS_TARGET else "MISSED"
        print(f"  {label:28} {_summary(harness[key])}  target <= {HARNESS_TARGET}  {verdict}")
    avalanche_loader = TaskBalancedDataLoader(
        template.adapted_dataset,
        batch_size=protocol.batch_size,
        shuffle=True,
        oversample_small_groups=True,
    )
    print("\ndata loading alone, one epoch of task 2 (median over rounds), per sample:")
    for label, loader in (
        ("Avalanche's loader", avalanche_loader),
        ("the harness's loader", harness_loader),
        ("DataLoader(TensorDataset)", bare_loader),
    ):
        seconds = statistics.median(
            _seconds(functools.partial(_drain, loader)) for _ in range(args.repeats)
        )
        print(f"  {label:28} {1e6 * seconds / len(x):6.1f} us")
    return 0
