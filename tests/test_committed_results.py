"""The committed reference output agrees with itself: the README's table is the file it cites,
byte for byte, that file is what the report writes from the committed result files, and
results/index.md names the folder those files are in."""

import re
from pathlib import Path

from clbench.report import write_report
from clbench.report.build import ReportOptions

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"the file\s+`(results/tables/[^`]+\.md)`\s+as the report wrote it:\n\n")


def test_the_readme_table_is_the_file_it_cites_byte_for_byte():
    readme = (ROOT / "README.md").read_text()
    match = CITED.search(readme)
    assert match, "README cites no table file"
    cited = (ROOT / match.group(1)).read_text()
    assert readme[match.end() :].startswith(cited)


def test_results_index_names_the_folder_its_runs_are_in(tmp_path):
    index = (ROOT / "results" / "index.md").read_text()
    match = re.search(r"(\d+) runs from the result files in \[`([^`]+)`\]\(([^)]+)\)", index)
    assert match, "results/index.md does not say where its runs are"
    folder = ROOT / "results" / match.group(3)
    assert folder.resolve() == (ROOT / "results" / "runs").resolve()
    assert len(list(folder.glob("*.json"))) == int(match.group(1))
    written = write_report(folder, tmp_path, ReportOptions(figures=()))
    for table in written.tables.values():
        committed = ROOT / "results" / "tables" / f"{table.stem}.md"
        assert committed.read_text() == table.markdown, f"{committed.name} is stale"
