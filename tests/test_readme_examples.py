"""The README's "Adding a strategy" and "Adding a benchmark" examples run as pasted."""

import re
from pathlib import Path

from clbench.data import BENCHMARKS
from clbench.runner import RunSpec, run
from clbench.strategies import STRATEGIES

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_extension_examples_run_as_pasted():
    text = README.read_text()
    section = text[text.index("### Adding a strategy") : text.index("## Measured")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
        result = run(RunSpec("blobs", "shrink", overrides={"protocol": {"epochs": 2}}))
    finally:
        STRATEGIES.unregister("shrink")
        BENCHMARKS.unregister("blobs")
    assert len(result["accuracy_matrix"]) == 3 and result["metrics"]["acc"] > 60
