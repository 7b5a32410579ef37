"""Help, listing and one-line errors import no Avalanche module: Avalanche is imported for
training only (`python -m clbench.startup` times these commands)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Runs `clbench.cli.main(argv)` for each command in turn, in one process (torch is imported once),
# and writes to a file which avalanche modules are loaded after each, and where the first of them
# was imported from.
PROBE = """
import json
import sys
import traceback


class Watch:
    first = None

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if cls.first is None and name.partition(".")[0] == "avalanche":
            frames = traceback.extract_stack()[:-1]
            chain = [f"{f.filename}:{f.lineno}" for f in frames if "<frozen" not in f.filename]
            cls.first = f"{name}, imported from {' <- '.join(reversed(chain[-6:]))}"
        return None


sys.meta_path.insert(0, Watch)
from clbench.cli import main

found = []
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit:
        pass
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] == "avalanche")
    found.append({"argv": argv, "loaded": loaded, "first": Watch.first})
with open(sys.argv[2], "w") as out:
    json.dump(found, out)
"""


COMMANDS = [
    ["--help"],
    ["run", "--help"],
    ["list"],
    ["list", "benchmarks"],
    ["list", "models"],
    ["list", "strategies"],
    ["list", "protocol"],
    ["list", "suites"],
    ["run", "--benchmark", "split-digits", "--strategy", "naive", "--seed", "-1"],
    ["run", "--benchmark", "nope", "--strategy", "naive"],
    ["run", "--benchmark", "pmnist", "--strategy", "nope"],
    ["protocol", "--benchmark", "nope", "--strategy", "naive"],
    ["protocol", "--benchmark", "split-digits", "--strategy", "gpm", "--set", "gpm.nope=1"],
]


@pytest.mark.slow
def test_help_listing_and_one_line_errors_import_no_avalanche(tmp_path):
    """Also a sweep's planning (a dry run, over the committed results: each present one's code is
    checked) and its executor errors: a sweep's own process leaves the training code to the
    processes that train."""
    results = str(tmp_path / "runs")
    committed = str(Path(__file__).resolve().parents[1] / "results" / "runs")
    commands = [
        *COMMANDS,
        ["sweep", "default", "--results", committed, "--strategies", "naive,gpm", "--dry-run"],
        ["sweep", "smoke", "--results", results, "--executor", "dask"],
    ]
    found = tmp_path / "found.json"
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands), str(found)],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for command in json.loads(found.read_text()):
        assert not command["loaded"], (
            f"clbench {' '.join(command['argv'])} imported {len(command['loaded'])} avalanche "
            f"modules; the first: {command['first']}"
        )
    assert "unknown strategy 'nope'" in done.stderr and "unknown field gpm.nope" in done.stderr
