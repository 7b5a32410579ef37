"""`clbench report`: tables and figures from a folder of result files (never trains)."""

from clbench.report.build import ReportSummary, write_report

__all__ = ["ReportSummary", "write_report"]
