"""Kill a search with SIGKILL mid-way, start it again in the same directory: nothing finished is redone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hf_llama_nas.search import ResultsStore
from tests.search_helpers import DIMS
from tests.search_worker import search

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def evaluation_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("type") == "evaluation":
            lines.append(record)
    return lines


def test_killed_search_resumes_without_repeating_evaluations(tmp_path):
    num_evals = 30
    results = tmp_path / "results.jsonl"
    worker = [sys.executable, "-m", "tests.search_worker", str(tmp_path), str(num_evals), "0.05"]
    process = subprocess.Popen(worker, cwd=REPO_ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if results.exists() and len(evaluation_lines(results)) >= 17:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the search finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = evaluation_lines(results)
    assert 17 <= len(before) < num_evals

    done = subprocess.run([*worker, "--resume"], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    after = evaluation_lines(results)
    ids = [record["id"] for record in after]
    assert len(ids) == len(set(ids)) == num_evals, "an evaluation was repeated or lost"
    assert ids[: len(before)] == [record["id"] for record in before]

    uninterrupted = search(num_evals).run(dims=DIMS, progress=False)
    assert set(ids) == {e.id for e in uninterrupted.store}
    assert len(ResultsStore.read(tmp_path)) == len(uninterrupted.store)
