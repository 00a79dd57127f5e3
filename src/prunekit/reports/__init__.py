"""Reports for people: terminal tables and plots."""

from prunekit.reports.plots import plot_tradeoff
from prunekit.reports.table import format_table, human, metric_of, model_summary_table

__all__ = ["format_table", "human", "metric_of", "model_summary_table", "plot_tradeoff"]
