"""A finished job's reports (the module moves into this package, to be split by concern)."""

from batch_worker.reports.html import FORMULA_STARTS, flatten, histogram_range, output_columns, write_reports

__all__ = ["FORMULA_STARTS", "flatten", "histogram_range", "output_columns", "write_reports"]
