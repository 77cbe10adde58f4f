"""Two CPU processes (gloo) under torchrun: every rank trains the same sub-network per step, layer skipping does
not break DDP (with gradient checkpointing on), and the replicas stay identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_two_process_ddp_agrees_on_subnets(llama_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "tests.training_ddp_worker", llama_dir, str(tmp_path)]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["backend"] == "gloo"
    assert ranks[0]["wrapped"] == "DistributedDataParallel"
    subnets = [[s["subnet"] for s in r["seen"]] for r in ranks]
    assert len(subnets[0]) == 4 and subnets[0] == subnets[1]
    assert min(ranks[0]["layers_per_step"]) < 4, "no step skipped a layer"
    assert [s["first_token"] for s in ranks[0]["seen"]] != [s["first_token"] for s in ranks[1]["seen"]]
    assert abs(ranks[0]["checksum"] - ranks[1]["checksum"]) < 1e-6 * max(1.0, abs(ranks[0]["checksum"]))
