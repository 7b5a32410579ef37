"""Runs that a report must not pool without saying so: the same seed of one configuration twice,
one configuration measured by different code, on different machines or with different thread
counts, and one benchmark's rows measured by different versions of the harness.

Each conflict is one line naming the files; `clbench report` refuses to pool them unless asked to
(`--allow-mixed`), and then lists them in the report."""

from __future__ import annotations

import pandas as pd

from clbench.errors import ClbenchError

#: Files named in one conflict line before the rest are counted.
FILES_NAMED = 4
#: (column, what differs) checked within one configuration's runs.
WITHIN_ROW = (("code_digest", "code"), ("machine", "machines"), ("threads", "thread counts"))


class ConflictingRuns(ClbenchError):
    """Runs that would be pooled into one row although they are not repeats of one experiment."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(
            f"{len(lines)} conflict{'s' if len(lines) > 1 else ''} between result files "
            "(listed above); pass --allow-mixed to pool them on purpose"
        )
        self.lines = lines


def _files(files: pd.Series) -> str:
    names = sorted(files)
    shown = ", ".join(names[:FILES_NAMED])
    return shown + (f" and {len(names) - FILES_NAMED} more" if len(names) > FILES_NAMED else "")


def _value(column: str, value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "unrecorded"
    return str(value)[:12] if column.endswith("digest") else str(value)


def _split(runs: pd.DataFrame, column: str) -> str:
    """`value (files)` for each value of `column` among `runs`."""
    values = runs[column].map(lambda v: _value(column, v))
    return "; ".join(f"{v} ({_files(runs.loc[values == v, 'file'])})" for v in sorted(set(values)))


def find_conflicts(runs: pd.DataFrame) -> list[str]:
    """One line per conflict among `runs` (`clbench.report.collect` rows), naming the files."""
    lines = []
    for (benchmark, _), row in runs.groupby(["benchmark", "config_key"], sort=False):
        variant = row["variant"].iloc[0]
        what = f"{benchmark} / {row['strategy'].iloc[0]}" + (f" ({variant})" if variant else "")
        for seed, same in row.groupby("seed"):
            if len(same) > 1:
                lines.append(f"seed {seed} of {what} twice: {_files(same['file'])}")
        for column, noun in WITHIN_ROW:
            if row[column].map(lambda v, c=column: _value(c, v)).nunique() > 1:
                lines.append(f"{what} mixes {noun}: {_split(row, column)}")
    for benchmark, bench in runs.groupby("benchmark", sort=False):
        if bench["harness_digest"].map(lambda v: _value("harness_digest", v)).nunique() > 1:
            lines.append(
                f"{benchmark!s}: rows measured by different harness code: "
                f"{_split(bench, 'harness_digest')}"
            )
    return lines
