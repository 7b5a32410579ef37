"""Start-up time of the command line: `python -m clbench.startup [--repeats N]`.

Times, each in a fresh interpreter and in interleaved rounds, `python -c "import torch"` and
clbench commands that train nothing (help, listing, a one-line error, a sweep's plan), and prints
the minimum and median wall time of each and its median's ratio to that of `import torch` in the
same run (docs/performance.md, "Start-up time").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clbench.arguments import positive_int, summary

# clbench's arguments, and the exit status each command must end with
CLBENCH_COMMANDS: list[tuple[list[str], int]] = [
    (["--help"], 0),
    (["list", "benchmarks"], 0),
    (["list"], 0),
    (["run", "--benchmark", "nope", "--strategy", "naive"], 2),
    (["sweep", "smoke", "--results", str(Path(tempfile.gettempdir()) / "none"), "--dry-run"], 0),
]
TORCH = 'python -c "import torch"'
COMMANDS: dict[str, tuple[list[str], int]] = {
    TORCH: ([sys.executable, "-c", "import torch"], 0),
    **{
        f"clbench {' '.join(arguments)}": (
            [sys.executable, "-m", "clbench.cli", *arguments],
            status,
        )
        for arguments, status in CLBENCH_COMMANDS
    },
}


def seconds(command: list[str], status: int) -> float:
    """Wall time of one run of `command`, which must end with `status`."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != status:
        raise SystemExit(
            f"{' '.join(command)} ended with {done.returncode}, not {status}: {done.stderr[-500:]}"
        )
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clbench.startup", description=summary(__doc__))
    parser.add_argument(
        "--repeats", type=positive_int, default=5, help="runs of each command (default 5)"
    )
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    for _ in range(args.repeats):  # rounds: a slow spell of the machine hits every command
        for label, (command, status) in COMMANDS.items():
            times[label].append(seconds(command, status))
    torch_median = statistics.median(times[TORCH])
    print(f"{args.repeats} fresh runs each, interleaved; ratio: median over import torch's median")
    print(f"{'command':52} {'min s':>7} {'median s':>9} {'ratio':>6}")
    for label, measured in times.items():
        median = statistics.median(measured)
        print(f"{label:52} {min(measured):7.2f} {median:9.2f} {median / torch_median:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
