"""A result's code digest covers what can change its numbers: the training path and the strategy's
own code with what it imports (clbench/provenance.py), not the report or the command line.
Each case edits a copy of the sources and reads the digests of the zoo from that copy."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = {
    "naive": "baselines.naive",
    "ewc": "baselines.ewc",
    "gpm": "baselines.gpm",
    "sgp": "baselines.sgp",
    "trgp": "baselines.trgp",
    "dfgp": "baselines.dfgp",
    "gpcns": "baselines.gpcns",
    "ness": "baselines.ness",
    "adam-nscl": "baselines.adam_nscl",
}
READ = (
    "import json, sys\n"
    "from clbench.provenance import current_code_digest\n"
    "modules = json.loads(sys.argv[1])\n"
    "print(json.dumps({n: current_code_digest(m) for n, m in modules.items()}))\n"
)


def digests(copy: Path) -> dict[str, str]:
    """The code digest of each zoo strategy, computed from the sources in `copy`."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", READ, json.dumps(ZOO)],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def edit(copy: Path, relative: str, old: str, new: str) -> None:
    path = copy / relative
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {relative}"
    path.write_text(text.replace(old, new))


@pytest.mark.slow
def test_only_edits_on_a_runs_path_make_its_results_stale(tmp_path):
    copy = tmp_path / "src"
    for package in ("clbench", "baselines"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    before = digests(copy)
    assert len(set(before.values())) == len(ZOO)  # each strategy's code differs

    edit(copy, "clbench/report/figures.py", 'ax.set_xlabel("task")', 'ax.set_xlabel("Task")')
    edit(copy, "clbench/cli.py", '"""The `clbench` command line', '"""The clbench command line')
    assert digests(copy) == before  # a figure and the command line: nothing stale

    edit(copy, "baselines/gpm.py", "return M_new, M_new.shape[1] - M.shape[1]", "return M_new, 0")
    after_gpm = digests(copy)
    changed = {name for name in ZOO if after_gpm[name] != before[name]}
    assert changed == {"gpm", "sgp", "trgp", "dfgp", "gpcns"}  # GPM's rule and who builds on it

    edit(copy, "clbench/schedule.py", "self.patience -= 1", "self.patience -= 2")
    after_schedule = digests(copy)
    assert all(after_schedule[name] != after_gpm[name] for name in ZOO)  # the training path
