"""Reports for people: terminal tables (and, later, plots)."""

from prunekit.reports.table import format_table, human, model_summary_table

__all__ = ["format_table", "human", "model_summary_table"]
