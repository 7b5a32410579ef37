"""``clbench bench-memory``: resident memory of one run per strategy, and the bytes each
strategy keeps between tasks.

Each run executes in its own child process (one torch thread). The child samples its resident set
(`/proc/self/statm`) every 5 ms from a background thread while it trains and evaluates every task;
the table gives that peak and its growth over the resident set once data, model and strategy are
built: what training itself adds. Importing and building the data happen before sampling starts
and are left out. NESS is measured with both sources of its null spaces (`raw`, the paper's
stored inputs, and `gram`, running Gram matrices).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from clbench.arguments import OneLineParser, summary
from clbench.data import BENCHMARKS
from clbench.strategies import STRATEGIES

CHILD = """
import json, os, sys, threading, time, torch
torch.set_num_threads(1)
from clbench.memory import kept_bytes
from clbench.runner import prepare
from clbench.resolution import RunSpec, resolve

def resident():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

prepared = prepare(resolve(RunSpec(**json.loads(sys.argv[1]))))
before = peak = resident()
done = threading.Event()

def sample():
    global peak
    while not done.wait(0.005):
        peak = max(peak, resident())

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
for task in range(prepared.n_tasks):
    prepared.train_task(task)
    prepared.template.eval(prepared.scenario.test_stream, shuffle=True)
done.set()
sampler.join()
peak = max(peak, resident())
final_row = prepared.recorder.accuracies(prepared.n_tasks)
print(json.dumps({"before": before, "peak": peak, "kept": kept_bytes(prepared.built.plugins),
                  "acc": 100 * sum(final_row) / len(final_row)}))
"""


def measure(benchmark: str, strategy: str, overrides: dict) -> dict:
    """What one child run printed: resident bytes before and at the peak, bytes kept, ACC."""
    spec = {"benchmark": benchmark, "strategy": strategy, "overrides": overrides}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True
    )
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"{strategy} on {benchmark} failed: {last}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="clbench bench-memory", description=summary(__doc__))
    parser.add_argument("--benchmark", default="split-mnist5k")
    parser.add_argument("--strategies", default="all", help="comma-separated names, or all")
    args = parser.parse_args(argv)
    BENCHMARKS.get(args.benchmark)
    names = (
        [n for n, _ in STRATEGIES.items()]
        if args.strategies == "all"
        else args.strategies.split(",")
    )
    for name in names:
        STRATEGIES.get(name)
    runs: list[tuple[str, str, dict[str, Any]]] = [(name, name, {}) for name in names]
    if "ness" in names:
        runs = [r for r in runs if r[0] != "ness"]
        runs += [("ness (raw)", "ness", {"ness": {"source": "raw"}})]
        runs += [("ness (gram)", "ness", {"ness": {"source": "gram"}})]
    print(f"{args.benchmark}: resident memory per run (a child process each, 1 thread)")
    print(f"{'strategy':18} {'peak MiB':>9} {'training adds MiB':>18} {'kept kB':>10} {'ACC %':>7}")
    for label, strategy, overrides in runs:
        m = measure(args.benchmark, strategy, overrides)
        print(
            f"{label:18} {m['peak'] / 2**20:9.1f} {(m['peak'] - m['before']) / 2**20:18.1f} "
            f"{m['kept'] / 1e3:10.1f} {m['acc']:7.2f}",
            flush=True,
        )
    return 0
