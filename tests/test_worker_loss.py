"""A sweep survives its workers: a worker killed in a run (as the out-of-memory killer kills) costs
that run alone, and SIGTERM or Ctrl-C stops the workers and says how far the sweep got.

The runs that die or hang belong to a test-only strategy, `probe`: naive training, except that the
run whose seed is $PROBE_KILL_SEED kills its own process with SIGKILL and the run whose seed is
$PROBE_HANG_SEED never ends. It registers through an entry point, as any installed strategy does,
from a distribution put on PYTHONPATH for the sweep's processes alone."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROBE = '''"""Test-only strategy: naive, but dies or hangs on the seeds its environment names."""

import os
import signal
import time
from dataclasses import dataclass

import torch
from torch import nn

from clbench.strategies import StrategyBuild


@dataclass
class ProbeParams:
    """No parameters."""


def probe(model: nn.Module, params: ProbeParams) -> StrategyBuild:
    """Naive training; SIGKILL on $PROBE_KILL_SEED, no end on $PROBE_HANG_SEED."""
    seed = str(torch.initial_seed())  # the runner seeds torch with the run's seed
    if seed == os.environ.get("PROBE_KILL_SEED"):
        os.kill(os.getpid(), signal.SIGKILL)
    if seed == os.environ.get("PROBE_HANG_SEED"):
        time.sleep(3600)
    return StrategyBuild()
'''


def start_sweep(tmp_path: Path, seeds: int, **probe_env: str) -> subprocess.Popen:
    """`clbench sweep --jobs 2` of `probe` on split-digits over seeds 0..seeds-1, in a session of
    its own (its process group is its pid)."""
    plugins = tmp_path / "plugins"
    (plugins / "probe_strategy-0.dist-info").mkdir(parents=True)
    (plugins / "probe_strategy.py").write_text(PROBE)
    (plugins / "probe_strategy-0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: probe-strategy\nVersion: 0\n"
    )
    (plugins / "probe_strategy-0.dist-info" / "entry_points.txt").write_text(
        "[clbench.strategies]\nprobe = probe_strategy:probe\n"
    )
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'benchmarks = ["split-digits"]\nstrategies = ["probe"]\n'
        f"seeds = {list(range(seeds))}\noverrides = {{ protocol = {{ epochs = 1 }} }}\n"
    )
    path = os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")]))
    command = [
        sys.executable, "-m", "clbench.cli", "sweep", str(suite),
        "--results", str(tmp_path / "runs"), "--jobs", "2",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": path, **probe_env},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def results_of(runs: Path, seed: int) -> list[Path]:
    """The result files of the run with `seed` (failure files aside)."""
    return [p for p in runs.glob(f"*__seed{seed}__*.json") if not p.name.endswith(".failed.json")]


def end_group(pgid: int) -> None:
    """SIGKILL whatever is left of process group `pgid` (a test that failed may leave some)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def group_members(pgid: int) -> list[str]:
    """Command lines of the live (not zombie) processes in process group `pgid`."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):  # ended while being read
            continue
        if int(group) == pgid and state != "Z":
            members.append(command)
    return members


@pytest.mark.slow
def test_a_worker_killed_in_a_run_costs_that_run_alone(tmp_path):
    sweep = start_sweep(tmp_path, seeds=4, PROBE_KILL_SEED="1")
    try:
        stdout, stderr = sweep.communicate(timeout=600)
    finally:
        end_group(sweep.pid)
    assert sweep.returncode == 1, stderr  # a run failed
    assert "Traceback" not in stderr
    assert "3 runs done (0 of them stale results re-run), 0 already present, 1 failed" in stdout
    runs = tmp_path / "runs"
    assert all(len(results_of(runs, seed)) == 1 for seed in (0, 2, 3))
    (failure,) = runs.glob("*.failed.json")
    assert "__seed1__" in failure.name and not results_of(runs, 1)
    error = json.loads(failure.read_text())["error"]
    assert error.startswith("WorkerDied: its worker process ")
    assert error.endswith(" was killed by SIGKILL (as the out-of-memory killer does)")
    assert f"failed: {failure.name.removesuffix('.failed.json')}: {error}" in stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "whole_group", "status"),
    [
        (signal.SIGTERM, False, 143),  # `kill PID`, as a process manager stops a service
        (signal.SIGINT, True, 130),  # Ctrl-C: the terminal signals every process of its group
    ],
)
def test_a_signalled_sweep_stops_its_workers_and_says_how_far_it_got(
    tmp_path, signum, whole_group, status
):
    sweep = start_sweep(tmp_path, seeds=3, PROBE_HANG_SEED="0")
    try:
        deadline = time.monotonic() + 300
        while not all(results_of(tmp_path / "runs", seed) for seed in (1, 2)):
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # seed 0 runs on in the other worker, and would for an hour
        if whole_group:
            os.killpg(sweep.pid, signum)
        else:
            sweep.send_signal(signum)
        stdout, stderr = sweep.communicate(timeout=120)
        assert sweep.returncode == status, stderr
        name = signal.Signals(signum).name
        assert stderr == (
            f"clbench: interrupted by {name}: 2 of 3 runs finished, 1 stopped; "
            "re-run the same command to resume\n"
        )
        deadline = time.monotonic() + 60  # the resource tracker leaves once the sweep has gone
        while group_members(sweep.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert group_members(sweep.pid) == []
    finally:
        end_group(sweep.pid)
