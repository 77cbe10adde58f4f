"""Two CPU processes under torchrun (accelerate's PartialState, gloo): a round's candidates are split between
them, every result reaches both, and the search makes the same choices as a single process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hf_llama_nas.search import ResultsStore
from hf_llama_nas.search.distributed import AccelerateDistribution
from tests.search_helpers import DIMS
from tests.search_worker import search

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_two_processes_split_each_round_and_agree(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "tests.search_worker", str(tmp_path), "20", "0"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    store = ResultsStore.read(tmp_path)
    ranks = [e.details["loss"]["rank"] for e in store]
    # Rounds of 10, 5 and 5 new candidates: shares 5+5, 3+2, 3+2.
    assert len(store) == 20 and (ranks.count(0), ranks.count(1)) == (11, 9)
    single = search(20).run(dims=DIMS, progress=False)
    assert {e.id for e in store} == {e.id for e in single.store}
    assert (tmp_path / "pareto.json").exists()


def test_split_is_contiguous_and_balanced():
    class State:
        def __init__(self, index):
            self.process_index, self.num_processes, self.is_main_process = index, 3, index == 0

    shares = [AccelerateDistribution(State(i)).split(list(range(7))) for i in range(3)]
    assert shares == [[0, 1, 2], [3, 4], [5, 6]]
