"""The committed reference output agrees with itself: the README's tables are the files they
cite, byte for byte, those files are what the report writes from the committed result files,
results/index.md names the folder those files are in, the shipped tuned suite is what the
committed studies found, and the stability-gap study holds its suite's every run and the tables
the report writes from them."""

import json
import re
from pathlib import Path

from clbench.report import write_report
from clbench.report.build import ReportOptions
from clbench.resolution import resolve
from clbench.sweep import expand, load_suite
from results import NO_FIGURES

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"the file\s+`(results/tables/[^`]+\.md)`\s+as the report wrote it:\n\n")


def test_the_readme_tables_are_the_files_they_cite_byte_for_byte():
    readme = (ROOT / "README.md").read_text()
    matches = list(CITED.finditer(readme))
    assert [m.group(1) for m in matches] == [
        "results/tables/pmnist5k.md",
        "results/tables/pmnist5k-tuning.md",
        "results/tables/split-mnist5k-tuning.md",
    ]
    for match in matches:
        cited = (ROOT / match.group(1)).read_text()
        assert readme[match.end() :].startswith(cited), match.group(1)


def test_results_index_names_the_folder_its_runs_are_in(tmp_path):
    index = (ROOT / "results" / "index.md").read_text()
    match = re.search(r"(\d+) runs from the result files in \[`([^`]+)`\]\(([^)]+)\)", index)
    assert match, "results/index.md does not say where its runs are"
    folder = ROOT / "results" / match.group(3)
    assert folder.resolve() == (ROOT / "results" / "runs").resolve()
    assert len(list(folder.glob("*.json"))) == int(match.group(1))
    written = write_report(folder, tmp_path, NO_FIGURES)
    for table in written.tables.values():
        committed = ROOT / "results" / "tables" / f"{table.stem}.md"
        assert committed.read_text() == table.markdown, f"{committed.name} is stale"


def test_the_tuning_tables_are_what_the_report_writes_from_the_committed_files(tmp_path):
    options = ReportOptions(figures=(), tuning=ROOT / "results" / "tuning")
    write_report(ROOT / "results" / "runs", tmp_path, options)
    for benchmark in ("split-mnist5k", "pmnist5k"):
        name = f"tables/{benchmark}-tuning.md"
        assert (ROOT / "results" / name).read_text() == (tmp_path / name).read_text(), name


def test_the_shipped_tuned_suite_runs_what_the_committed_studies_found():
    shipped = ROOT / "clbench" / "suites" / "tuned.toml"
    assert shipped.read_text() == (ROOT / "results" / "tuning" / "tuned.toml").read_text()
    studies = json.loads((ROOT / "results" / "tuning" / "summary.json").read_text())["studies"]
    assert len({study["finished"] for study in studies.values()}) == 1  # one budget for all
    assert len({study["objective"] for study in studies.values()}) == 1
    checked = 0
    for spec in expand(load_suite("tuned")):
        best = studies[f"{spec.benchmark}/{spec.strategy}"]["best_settings"]
        run = resolve(spec)
        assert run.protocol.evaluate_on == "test"
        for name, value in best.items():
            owner, field = ("protocol", name[9:]) if name.startswith("protocol.") else ("", name)
            got = getattr(run.protocol if owner else run.strategy_params, field)
            assert (list(got) if isinstance(got, tuple) else got) == value, (spec, name)
            checked += 1
    assert checked


def test_the_stability_gap_study_holds_its_suite_and_the_tables_written_from_it(tmp_path):
    folder = ROOT / "results" / "stability-gap"
    names = {resolve(spec).name for spec in expand(load_suite("stability-gap"))}
    assert {path.stem for path in (folder / "runs").glob("*.json")} == names
    written = write_report(folder / "runs", tmp_path, NO_FIGURES)
    assert set(written.tables) == {"split-mnist5k", "pmnist5k"}
    for table in written.tables.values():
        committed = folder / "tables" / f"{table.stem}.md"
        assert committed.read_text() == table.markdown, f"{committed.name} is stale"
