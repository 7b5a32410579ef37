"""Help, listing and one-line errors import no Avalanche module: Avalanche is imported for
training only (`python -m clbench.startup` times these commands)."""

import json
import os
import subprocess
import sys

import pytest

# Runs `clbench.cli.main(argv)` and writes to a file which avalanche modules are loaded after it,
# and where the first of them was imported from.
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

try:
    main(json.loads(sys.argv[1]))
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m.partition(".")[0] == "avalanche")
with open(sys.argv[2], "w") as out:
    json.dump({"loaded": loaded, "first": Watch.first}, out)
"""


def pending(argv: list[str], why: str):
    """A command that imports Avalanche until `why` is fixed, not run (each would import all of
    Avalanche, seconds of CPU); once fixed, its line drops the `pending(...)`."""
    return pytest.param(argv, marks=pytest.mark.xfail(run=False, reason=why))


STRATEGIES_IMPORT_AVALANCHE = "baselines/* and clbench/strategies/* import avalanche"
PROTOCOL_IMPORTS_AVALANCHE = "clbench.protocol (ProtocolParams' module) imports avalanche"

COMMANDS = [
    ["--help"],
    ["run", "--help"],
    ["list", "benchmarks"],
    ["list", "models"],
    ["run", "--benchmark", "split-digits", "--strategy", "naive", "--seed", "-1"],
    ["run", "--benchmark", "nope", "--strategy", "naive"],
    ["protocol", "--benchmark", "nope", "--strategy", "naive"],
    pending(["list", "protocol"], PROTOCOL_IMPORTS_AVALANCHE),
    pending(["list", "suites"], f"{STRATEGIES_IMPORT_AVALANCHE}; {PROTOCOL_IMPORTS_AVALANCHE}"),
    pending(["list", "strategies"], STRATEGIES_IMPORT_AVALANCHE),
    pending(["list"], f"{STRATEGIES_IMPORT_AVALANCHE}; {PROTOCOL_IMPORTS_AVALANCHE}"),
    pending(["run", "--benchmark", "pmnist", "--strategy", "nope"], STRATEGIES_IMPORT_AVALANCHE),
]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_command_imports_no_avalanche(argv, tmp_path):
    found = tmp_path / "found.json"
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), str(found)],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = json.loads(found.read_text())
    assert not modules["loaded"], (
        f"clbench {' '.join(argv)} imported {len(modules['loaded'])} avalanche modules; "
        f"the first: {modules['first']}"
    )
