"""The measuring commands run end to end and print what they promise (no timing is asserted)."""

import re

import pytest

from clbench import membench, overhead


def test_bench_overhead_prints_every_ratio_and_the_harness_comparison(capsys):
    argv = ["--benchmark", "split-digits", "--strategies", "gpm,ness", "--steps", "3"]
    argv += ["--repeats", "2", "--set", "gpm.threshold=0.9,0.9", "--set", "protocol.batch_size=8"]
    assert overhead.main(argv) == 0
    out = capsys.readouterr().out
    assert "split-digits (mlp), batch 8" in out
    assert re.search(r"^naive\s+[\d.]+\s+1\.00x", out, re.M)
    for name, target in (("gpm", "1.3"), ("ness", "1.3")):
        assert re.search(rf"^{name}\s+[\d.]+\s+[\d.]+x .* <= {target}\s+(met|MISSED)$", out, re.M)
    products = re.search(r"^  gpm\s+([\d.]+) ms  ([\d.]+)x$", out, re.M)  # the projection alone
    assert float(products.group(1)) > 0 and float(products.group(2)) >= 1  # printed to 2 places
    assert not re.search(r"^  ness\s", out, re.M)  # NESS has no projection products
    assert re.search(r"steps on preloaded batches\s+[\d.]+x", out)
    assert re.search(r"an epoch with data loading\s+[\d.]+x", out)
    for loader in ("Avalanche's loader", "the harness's loader", r"DataLoader\(TensorDataset\)"):
        assert re.search(rf"^  {loader}\s+[\d.]+ us$", out, re.M)


def test_bench_overhead_refuses_settings_for_strategies_it_does_not_run(capsys):
    with pytest.raises(SystemExit) as stopped:
        overhead.main(["--strategies", "gpm", "--set", "sgp.alpha=3"])
    assert stopped.value.code == 2
    assert "--set sgp.*: not the protocol or a benchmarked strategy" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_memory_measures_a_run_in_a_child_process(capsys):
    assert membench.main(["--benchmark", "split-digits", "--strategies", "naive"]) == 0
    out = capsys.readouterr().out
    row = re.search(r"^naive\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    peak, adds, kept, acc = map(float, row.groups())
    assert peak > adds > 0 and kept == 0.0 and 50 < acc <= 100  # ACC in percent
