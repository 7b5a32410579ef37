"""Code provenance in result files, and sweeps that re-run results made by other code."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import clbench
from clbench.provenance import code_provenance, harness_digest
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.strategies import register_strategy
from clbench.sweep import plan, run_sweep

QUICK = {"protocol": {"epochs": "1"}}

PLUGIN = '''
from dataclasses import dataclass

from clbench.api import StrategyBuild


@dataclass
class Params:
    """No parameters."""


def factory(model, params: Params) -> StrategyBuild:
    """An outside strategy that trains as fine-tuning does ({version})."""
    return StrategyBuild()
'''


@pytest.fixture
def outside_plugin(tmp_path, monkeypatch, registered):
    """A strategy defined in a module outside clbench, registered in-process; yields a function
    that rewrites the module's source."""
    folder = tmp_path / "plugin_src"
    folder.mkdir()
    module = folder / "outside_strategy.py"
    module.write_text(textwrap.dedent(PLUGIN.format(version="v1")))
    monkeypatch.syspath_prepend(str(folder))
    import outside_strategy

    register_strategy("outside", outside_strategy.factory)
    yield lambda version: module.write_text(textwrap.dedent(PLUGIN.format(version=version)))
    sys.modules.pop("outside_strategy", None)


@pytest.mark.slow
def test_a_result_records_version_commit_and_code_digests(tmp_path):
    result = run(RunSpec("split-digits", "naive", overrides=QUICK), tmp_path)
    provenance = result["provenance"]
    assert provenance["clbench_version"] == "0.1.0"
    assert provenance["strategy_module"] == "baselines.naive"
    assert provenance["harness_digest"] == harness_digest()
    assert provenance == code_provenance("baselines.naive")
    stored = json.loads((tmp_path / f"{result['name']}.json").read_text())
    assert stored["provenance"] == provenance
    checkout = Path(clbench.__file__).parent
    git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=checkout)
    expected = git.stdout.strip() if git.returncode == 0 else None
    assert provenance["git_commit"] == expected
    assert (provenance["git_dirty"] is None) == (expected is None)


def test_editing_an_outside_plugin_makes_its_results_stale(tmp_path, outside_plugin):
    specs = [RunSpec("split-digits", "outside", overrides=QUICK)]
    messages = []
    first = run_sweep(specs, tmp_path, say=messages.append)
    assert len(first.done) == 1 and not first.stale
    again = run_sweep(specs, tmp_path, say=messages.append)
    assert again.skipped == first.done and not again.done  # same code: kept
    before = code_provenance("outside_strategy")["strategy_digest"]
    outside_plugin("v2")
    assert code_provenance("outside_strategy")["strategy_digest"] != before
    assert len(plan(specs, tmp_path, reuse_stale=True).present) == 1
    kept = run_sweep(specs, tmp_path, say=messages.append, reuse_stale=True)
    assert kept.skipped == first.done and not kept.done
    redone = run_sweep(specs, tmp_path, say=messages.append)
    assert redone.stale == first.done and redone.done == first.done
    assert any("1 results were made by other code" in m for m in messages)
    assert not run_sweep(specs, tmp_path, say=messages.append).done  # current again


def test_a_result_without_provenance_is_stale(tmp_path):
    spec = RunSpec("split-digits", "naive", overrides=QUICK)
    result = run(spec, tmp_path)
    path = tmp_path / f"{result['name']}.json"
    document = json.loads(path.read_text())
    del document["provenance"]
    path.write_text(json.dumps(document))
    planned = plan([spec], tmp_path)
    assert planned.stale == [result["name"]] and planned.todo == [spec]


def test_a_strategy_without_source_file_records_no_strategy_digest(tmp_path, registered):
    namespace: dict = {}
    exec(PLUGIN.format(version="exec"), namespace)  # as a notebook cell defines it
    register_strategy("cell", namespace["factory"])
    result = run(RunSpec("split-digits", "cell", overrides=QUICK))
    assert result["provenance"]["strategy_digest"] is None
    assert result["provenance"]["harness_digest"] == harness_digest()
