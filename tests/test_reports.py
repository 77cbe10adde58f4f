"""Reports from a results file alone: Pareto plots with the full model, search-space analysis, notable table."""

from __future__ import annotations

import pytest

from hf_llama_nas.reports import markdown_table, notable_subnetworks, write_report
from hf_llama_nas.search import LINAS, Objective, ResultsStore
from tests.search_helpers import DIMS, SPACE, loss_objective


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("search")
    accuracy = Objective("accuracy", direction="maximize", fn=lambda m, s: 1.0 / (1.0 + loss_objective().fn(m, s)["value"] / 50))
    LINAS(SPACE, [accuracy, "params", "macs"], num_evals=24, population=10, batch_size=7, seed=0, inner_population=20,
          inner_generations=3).run(dims=DIMS, output_dir=directory, progress=False, evaluate_full=True)
    return directory


def test_write_report(search_dir, tmp_path):
    files = write_report(search_dir, tmp_path)
    for name in ("pareto_accuracy_vs_params.png", "pareto_accuracy_vs_macs.png", "layers_by_percentile.png",
                 "widths_by_layer.png", "notable.md"):
        assert (tmp_path / name).read_bytes()[:4] in (b"\x89PNG", b"# Se")
    shares = files["layers_by_percentile"]
    assert set(shares) == {"0-25", "25-50", "50-75", "75-90", "90-100"}
    assert all(sum(p.values()) == pytest.approx(1.0) for p in shares.values() if any(p.values()))
    widths = files["widths_by_layer"]
    assert set(widths) == {"dropped", "32", "64", "96", "128"}
    assert [sum(column) for column in zip(*widths.values())] == pytest.approx([1.0] * 8, abs=1e-3)


def test_notable_table(search_dir):
    store = ResultsStore.read(search_dir)
    rows = notable_subnetworks(store)
    assert rows[0]["name"] == "full model" and rows[0]["size_ratio"] == pytest.approx(1.0)
    budgets = [row for row in rows if row["name"].startswith("best at")]
    assert budgets and all(row["size_ratio"] <= float(row["name"].split("<= ")[1].split("x")[0]) + 1e-9 for row in budgets)
    best_075 = store.best_under({"params": 0.75 * rows[0]["values"]["params"]}, "accuracy")
    assert any(row["id"] == best_075.id for row in budgets)
    table = markdown_table(store, rows)
    assert table.splitlines()[0].startswith("|  | sub-network | layers | accuracy | params | macs |")
    assert len(table.splitlines()) == len(rows) + 2
