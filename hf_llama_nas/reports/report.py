"""Pareto plots, the LLaMA-NAS search-space analysis and a table of notable sub-networks, as files.

Everything is computed from `results.jsonl` (see `hf_llama_nas.search.results`):

* `pareto_<quality>_vs_<other>.png`: every evaluation, the Pareto front and the full model (star),
  as the LLaMA-NAS paper's Figures 1-4 (accuracy against size, against throughput, ...);
* `layers_by_percentile.png`: how likely each depth is in each quality percentile (Figures 6-7);
* `widths_by_layer.png`: per super-network layer, how likely each MLP width (or dropping it) is among
  the best sub-networks (Figures 8-9);
* `notable.md`: the full model, the best sub-network under several size budgets and the Pareto set
  (as the paper's Table 2).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..search.results import Evaluation, ResultsStore

__all__ = ["write_report", "notable_subnetworks", "markdown_table", "SIZE_FRACTIONS"]

#: Size budgets of the notable-sub-networks table, as fractions of the full model's size objective.
SIZE_FRACTIONS = (0.5, 0.6, 0.75, 0.9)
_SIZE_NAMES = ("params", "decoder_params", "bytes_fp32", "bytes_fp16", "bytes_int8", "macs")
_PERCENTILES = ((0, 25), (25, 50), (50, 75), (75, 90), (90, 100))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _quality_and_size(store: ResultsStore) -> tuple[dict[str, Any], dict[str, Any] | None]:
    objectives = store.objectives
    quality = next((o for o in objectives if o["kind"] == "expensive"), objectives[0])
    size = next((o for o in objectives if o["name"] in _SIZE_NAMES), None)
    return quality, size


def _label(objective: dict[str, Any]) -> str:
    arrow = "higher is better" if objective["direction"] == "maximize" else "lower is better"
    unit = f" [{objective['unit']}]" if objective.get("unit") else ""
    return f"{objective['name']}{unit} ({arrow})"


def _plot_pareto(store: ResultsStore, quality: dict[str, Any], other: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    ok = store.ok()
    front = store.pareto()
    pair_front = _pair_front(ok, quality, other)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ax.scatter([e.values[other["name"]] for e in ok], [e.values[quality["name"]] for e in ok], s=12, color="0.7",
               label=f"evaluated ({len(ok)})")
    ax.plot([e.values[other["name"]] for e in pair_front], [e.values[quality["name"]] for e in pair_front], "o-",
            color="tab:red", ms=4, label=f"Pareto front ({len(pair_front)})")
    if store.reference is not None and store.reference.ok:
        ax.scatter([store.reference.values[other["name"]]], [store.reference.values[quality["name"]]], marker="*",
                   s=220, color="tab:blue", edgecolor="k", zorder=5, label="full model")
    if quality.get("scale") == "log":
        ax.set_yscale("log")
    ax.set_xlabel(_label(other))
    ax.set_ylabel(_label(quality))
    ax.set_title(f"{quality['name']} vs {other['name']} ({len(front)} on the full front)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _to_min(objective: dict[str, Any], value: float) -> float:
    sign = 1.0 if objective["direction"] == "minimize" else -1.0
    return sign * value


def _pair_front(evaluations: Sequence[Evaluation], a: dict[str, Any], b: dict[str, Any]) -> list[Evaluation]:
    """The two-objective Pareto front of `a` against `b`, sorted by `b`."""
    from ..search.pareto import non_dominated_mask

    if not evaluations:
        return []
    points = np.array([[_to_min(a, e.values[a["name"]]), _to_min(b, e.values[b["name"]])] for e in evaluations])
    front = [e for e, keep in zip(evaluations, non_dominated_mask(points)) if keep]
    return sorted(front, key=lambda e: e.values[b["name"]])


def _ranked(store: ResultsStore, quality: dict[str, Any]) -> list[Evaluation]:
    """Successful evaluations from best to worst on the quality objective."""
    return sorted(store.ok(), key=lambda e: _to_min(quality, e.values[quality["name"]]))


def _plot_layers_by_percentile(store: ResultsStore, quality: dict[str, Any], path: Path) -> dict[str, Any]:
    plt = _pyplot()
    ranked = _ranked(store, quality)
    depths = sorted({e.subnet.num_layers for e in ranked})
    n = len(ranked)
    table: dict[str, dict[int, float]] = {}
    for low, high in _PERCENTILES:
        # Percentile p = share of evaluations this one is better than; the best are at 90-100.
        members = [e for i, e in enumerate(ranked) if low <= 100 * (n - 1 - i) / max(n, 1) < high or
                   (high == 100 and i == 0)]
        counts = {d: sum(e.subnet.num_layers == d for e in members) for d in depths}
        total = max(1, len(members))
        table[f"{low}-{high}"] = {d: c / total for d, c in counts.items()}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    bottom = np.zeros(len(_PERCENTILES))
    colors = plt.cm.viridis(np.linspace(0, 1, max(1, len(depths))))
    for color, depth in zip(colors, depths):
        heights = np.array([table[f"{lo}-{hi}"][depth] for lo, hi in _PERCENTILES])
        ax.bar(range(len(_PERCENTILES)), heights, bottom=bottom, color=color, label=f"{depth} layers")
        bottom += heights
    ax.set_xticks(range(len(_PERCENTILES)), [f"{lo}-{hi}" for lo, hi in _PERCENTILES])
    ax.set_xlabel(f"{quality['name']} percentile (right: best)")
    ax.set_ylabel("probability of the layer count")
    ax.set_title("Depth of sub-networks by quality percentile")
    ax.legend(fontsize=6, ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return {key: {str(d): p for d, p in value.items()} for key, value in table.items()}


def _plot_widths_by_layer(store: ResultsStore, quality: dict[str, Any], path: Path, top: float = 0.1) -> dict[str, Any]:
    plt = _pyplot()
    space = store.space
    ranked = _ranked(store, quality)
    best = ranked[: max(1, int(math.ceil(top * len(ranked))))]
    choices = [0, *space.intermediate_size]
    probability = np.zeros((len(choices), space.num_hidden_layers))
    for evaluation in best:
        for layer, width in enumerate(evaluation.subnet.widths_by_layer(space.num_hidden_layers)):
            probability[choices.index(width) if width in choices else 0, layer] += 1
    probability /= max(1, len(best))
    fig, ax = plt.subplots(figsize=(max(6.4, 0.25 * space.num_hidden_layers + 2), 4.2))
    bottom = np.zeros(space.num_hidden_layers)
    colors = ["0.85", *plt.cm.plasma(np.linspace(0.1, 0.9, len(space.intermediate_size)))]
    for row, (choice, color) in enumerate(zip(choices, colors)):
        ax.bar(range(space.num_hidden_layers), probability[row], bottom=bottom, color=color,
               label="dropped" if choice == 0 else f"MLP {choice}")
        bottom += probability[row]
    ax.set_xlabel("super-network layer")
    ax.set_ylabel("probability")
    ax.set_title(f"MLP width per layer among the best {len(best)} sub-networks ({quality['name']})")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return {("dropped" if c == 0 else str(c)): probability[i].round(4).tolist() for i, c in enumerate(choices)}


def notable_subnetworks(store: ResultsStore, fractions: Sequence[float] = SIZE_FRACTIONS) -> list[dict[str, Any]]:
    """The full model, the best sub-network at each size budget (fraction of the full size), and the front."""
    quality, size = _quality_and_size(store)
    rows: list[dict[str, Any]] = []
    reference = store.reference
    full_size = None
    if size is not None:
        full_size = reference.values[size["name"]] if reference is not None else max(
            (e.values[size["name"]] for e in store.ok()), default=None)
    if reference is not None:
        rows.append({"name": "full model", "evaluation": reference})
    if size is not None and full_size:
        for fraction in fractions:
            best = store.best_under({size["name"]: fraction * full_size}, quality["name"])
            if best is not None:
                rows.append({"name": f"best at <= {fraction:g}x {size['name']}", "evaluation": best})
    for evaluation in store.pareto():
        rows.append({"name": "Pareto", "evaluation": evaluation})
    for row in rows:
        evaluation = row["evaluation"]
        row["id"] = evaluation.id
        row["num_layers"] = evaluation.subnet.num_layers
        row["values"] = evaluation.values
        row["size_ratio"] = evaluation.values[size["name"]] / full_size if size is not None and full_size else None
        row["subnet"] = evaluation.subnet.to_dict()
    return rows


def _fmt(name: str, value: float) -> str:
    if not math.isfinite(value):
        return "failed"
    if name in _SIZE_NAMES:
        return f"{value / 1e6:.1f}M"
    return f"{value:.4g}"


def markdown_table(store: ResultsStore, rows: list[dict[str, Any]] | None = None) -> str:
    """Notable sub-networks as a Markdown table (what the README and model cards quote)."""
    rows = notable_subnetworks(store) if rows is None else rows
    names = [o["name"] for o in store.objectives]
    header = ["", "sub-network", "layers", *names, "size ratio", "MLP widths"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        widths = sorted(set(row["subnet"]["intermediate_size"]))
        ratio = f"{row['size_ratio']:.3f}" if row["size_ratio"] is not None else ""
        cells = [row["name"], f"`{row['id']}`", str(row["num_layers"]),
                 *(_fmt(n, row["values"][n]) for n in names), ratio, ", ".join(map(str, widths))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plain(point: dict[str, Any]) -> dict[str, float]:
    """Objective values as plain floats, so the text shows `0.41`, not `np.float64(0.41)`."""
    return {name: float(value) for name, value in point.items()}


def write_report(results: str | os.PathLike, output: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write the plots and `notable.md` for the search in `results` (a directory or results.jsonl)."""
    store = ResultsStore.read(results)
    output = Path(output) if output is not None else store.path.parent
    output.mkdir(parents=True, exist_ok=True)
    quality, size = _quality_and_size(store)
    files: dict[str, Any] = {}
    if not store.ok():
        raise ValueError(f"{store.path} holds no successful evaluation: nothing to report yet.")
    for other in store.objectives:
        if other["name"] == quality["name"]:
            continue
        path = output / f"pareto_{quality['name']}_vs_{other['name']}.png"
        _plot_pareto(store, quality, other, path)
        files[path.name] = str(path)
    files["layers_by_percentile"] = _plot_layers_by_percentile(store, quality, output / "layers_by_percentile.png")
    files["widths_by_layer"] = _plot_widths_by_layer(store, quality, output / "widths_by_layer.png")
    rows = notable_subnetworks(store)
    table = markdown_table(store, rows)
    hv = store.hypervolume()
    text = (f"# Search report\n\n{len(store)} evaluations ({sum(not e.ok for e in store)} failed), "
            f"Pareto set of {len(store.pareto())}, normalised hypervolume {hv['hypervolume']:.4f} "
            f"(ideal {_plain(hv['ideal'])}, reference {_plain(hv['reference'])}).\n\n{table}\n")
    (output / "notable.md").write_text(text, encoding="utf-8")
    files["notable.md"] = str(output / "notable.md")
    files["table"] = table
    files["hypervolume"] = hv
    return files
