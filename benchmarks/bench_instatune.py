"""Cost of one InstaTune optimizer step per strategy against a plain `Trainer` step, on the real SmolLM2-135M.

    OMP_NUM_THREADS=1 python benchmarks/bench_instatune.py   # ~10-15 minutes on a busy 2-core CPU; writes benchmarks/results/bench_instatune.json

Same model (SmolLM2-135M-Instruct, fp32, CPU), same batch (1 x `--block-size` random tokens, fixed seed),
same optimizer (AdamW), in one run. Each side runs in its own fresh process (so that its peak memory is its
own): `--warmup` steps (the optimizer state gets allocated), then `--steps` measured steps. Per side:

* time per optimizer step: wall-clock and the process's CPU time (the CPU time is what other jobs on a shared
  machine disturb least), mean over the measured steps; `alternate` is measured over an even number of steps
  (as many full-network as sub-network steps);
* peak memory: the process's peak resident set size (VmHWM, reset after warm-up, so it covers the measured
  steps with weights, gradients and optimizer state all allocated).

Ratios are side / plain. Goals (reported as met or not, never dropped): alternate <= 1.1x plain time and
<= 1.05x plain peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
SIDES = ("plain", "alternate", "joint", "sandwich")
SPACE = {"num_hidden_layers": 30, "num_layers": [22, 26, 30], "intermediate_size": [768, 1152, 1536], "layer_mode": "any"}
TIME_GOAL, MEMORY_GOAL = 1.1, 1.05


def vm_hwm_bytes() -> int:
    """Peak resident set size of this process since start or the last reset (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found in /proc/self/status (Linux only)")


def reset_vm_hwm() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def worker(side: str, steps: int, warmup: int, block_size: int) -> dict[str, Any]:
    """Train `warmup + steps` steps of one side in this process and measure the last `steps`."""
    sys.path.insert(0, str(REPO_ROOT))
    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from hf_llama_nas import ElasticLlamaForCausalLM
    from hf_llama_nas.data import smollm2_gguf_path
    from hf_llama_nas.training import InstaTuneArguments, InstaTuneTrainer

    torch.manual_seed(0)
    model = ElasticLlamaForCausalLM.from_pretrained(str(smollm2_gguf_path()), search_space=SPACE, dtype=torch.float32)
    ids = torch.randint(0, model.config.vocab_size, (block_size,), generator=torch.Generator().manual_seed(0)).tolist()
    data = Dataset.from_dict({"input_ids": [ids] * (steps + warmup), "labels": [ids] * (steps + warmup)})

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.wall: list[float] = []
            self.cpu: list[float] = []
            self.peak = 0

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == warmup:
                reset_vm_hwm()
            self._wall, self._cpu = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step > warmup:
                self.wall.append(time.perf_counter() - self._wall)
                self.cpu.append(time.process_time() - self._cpu)
                self.peak = vm_hwm_bytes()

    timer = StepTimer()
    common = dict(output_dir=str(REPO_ROOT / "benchmarks/out/instatune" / side), max_steps=warmup + steps,
                  per_device_train_batch_size=1, learning_rate=1e-5, save_strategy="no", report_to=[],
                  use_cpu=True, disable_tqdm=True, logging_steps=10_000, seed=0, dataloader_num_workers=0)
    if side == "plain":
        trainer: Trainer = Trainer(model=model, args=TrainingArguments(**common), train_dataset=data, callbacks=[timer])
    else:
        trainer = InstaTuneTrainer(model=model, args=InstaTuneArguments(**common, nas_strategy=side),
                                   train_dataset=data, callbacks=[timer])
    trainer.train()
    return {"side": side, "steps": len(timer.wall), "wall_s_per_step": sum(timer.wall) / len(timer.wall),
            "cpu_s_per_step": sum(timer.cpu) / len(timer.cpu), "wall_s": timer.wall, "cpu_s": timer.cpu,
            "peak_rss_bytes": timer.peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="measured optimizer steps per side (even; default 4)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up steps per side (odd keeps alternate balanced)")
    parser.add_argument("--block-size", type=int, default=128, help="tokens in the batch's one sequence (default 128, as the real run)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks/results/bench_instatune.json")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.steps, args.warmup, args.block_size)), flush=True)
        return 0
    if args.steps % 2:
        parser.error("--steps must be even, so that alternate has as many full as sub-network steps")
    started = time.perf_counter()
    sides: dict[str, dict[str, Any]] = {}
    for side in SIDES:
        command = [sys.executable, __file__, "--worker", side, "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--block-size", str(args.block_size)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        sides[side] = json.loads(done.stdout.split("RESULT ", 1)[1])
        print(f"{side}: {sides[side]['wall_s_per_step']:.2f} s/step wall, {sides[side]['cpu_s_per_step']:.2f} s CPU, "
              f"peak RSS {sides[side]['peak_rss_bytes'] / 2**20:.0f} MiB", flush=True)
    plain = sides["plain"]
    ratios = {side: {"wall_time": s["wall_s_per_step"] / plain["wall_s_per_step"],
                     "cpu_time": s["cpu_s_per_step"] / plain["cpu_s_per_step"],
                     "peak_memory": s["peak_rss_bytes"] / plain["peak_rss_bytes"]} for side, s in sides.items()}
    alternate = ratios["alternate"]
    results = {
        "description": "Per optimizer step, each strategy vs a plain Trainer step: SmolLM2-135M fp32, CPU, batch "
                       f"1x{args.block_size}, AdamW; {args.warmup} warm-up + {args.steps} measured steps per side, "
                       "each side in a fresh process.",
        "search_space": SPACE,
        "sides": sides,
        "ratios_vs_plain": ratios,
        "goals": {
            "alternate_time_le_1.1x": {"cpu_time_ratio": alternate["cpu_time"], "wall_time_ratio": alternate["wall_time"],
                                       "met": alternate["cpu_time"] <= TIME_GOAL and alternate["wall_time"] <= TIME_GOAL},
            "alternate_peak_memory_le_1.05x": {"ratio": alternate["peak_memory"], "met": alternate["peak_memory"] <= MEMORY_GOAL},
        },
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "note": "2 CPU cores shared with other jobs: wall times are noisy, CPU times less so"},
        "wall_time_s": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    for side, ratio in ratios.items():
        print(f"{side:>9}: time x{ratio['wall_time']:.3f} wall, x{ratio['cpu_time']:.3f} CPU; peak memory x{ratio['peak_memory']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
