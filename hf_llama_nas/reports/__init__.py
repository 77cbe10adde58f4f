"""Reports of a search, read from its results file alone: Pareto plots, search-space analysis, tables."""

from .report import notable_subnetworks, markdown_table, write_report

__all__ = ["notable_subnetworks", "markdown_table", "write_report"]
