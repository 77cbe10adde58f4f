"""`llama-nas report DIR`: plots and a table of notable sub-networks from a search's results file."""

from __future__ import annotations

import argparse

from .report import write_report

__all__ = ["add_command", "cmd_report"]


def cmd_report(args: argparse.Namespace) -> int:
    files = write_report(args.results, args.output)
    print(files["table"])
    written = [name for name in files if name.endswith((".png", ".md"))]
    written += ["layers_by_percentile.png", "widths_by_layer.png"]
    print(f"\nWrote {', '.join(sorted(set(written)))} to {args.output or args.results}")
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="Plot a search's Pareto fronts and search-space analysis; write a table of notable sub-networks.",
        description="Read DIR/results.jsonl and write PNG plots (Pareto fronts with the full model marked, depth by "
        "quality percentile, width per layer among the best) and notable.md.",
    )
    parser.add_argument("results", metavar="DIR", help="Output directory of `llama-nas search` (or its results.jsonl).")
    parser.add_argument("--output", metavar="DIR", help="Where to write the report (default: DIR).")
    parser.set_defaults(func=cmd_report)
