"""Benchmark: lm-eval's stock HF model (`HFLM`) versus prefix-shared scoring (`ElasticLlamaLM`), side by side.

    python benchmarks/bench_evaluation.py                       # speed: ARC-Easy, PIQA, MMLU (5 subjects, 5-shot)
    python benchmarks/bench_evaluation.py --baseline --limit 200 --mmlu-limit 5 --batch-size 32
                                                     # accuracy of the full model on every pack task (merged into
                                                     # the existing baseline file, one task at a time)

On SmolLM2-135M-Instruct (the GGUF in ../shared/data, de-quantised to fp32, CPU), one model object serves both
sides, with the same batch size, the same tasks and the same `limit`, in one process, each task run by both
sides one after the other (so both see the same machine load). Reported per task: wall time of
`lm_eval.simple_evaluate` (task building included, identical on both sides) and the time spent in `loglikelihood`
(the scoring itself) in wall-clock and in CPU time of the process (less sensitive to other jobs on a shared
machine), their ratios, accuracy, whether every per-item prediction (argmax of the log-likelihoods,
raw and length-normalised) is identical, and the largest per-request log-likelihood difference.
Figures go to `benchmarks/results/bench_evaluation.json` (`--baseline`: `baseline_accuracy.json`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import lm_eval  # noqa: E402
import torch  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hf_llama_nas import ElasticLlamaForCausalLM  # noqa: E402
from hf_llama_nas.data import smollm2_gguf_path  # noqa: E402
from hf_llama_nas.evaluation import ElasticLlamaLM, PACK_TASKS, evaluate, load_tokenizer, summarize, task_manager  # noqa: E402

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
MMLU_SUBJECTS = ("abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class TimedLoglikelihood:
    """Wraps an lm-eval model's `loglikelihood` to add up the time spent scoring."""

    def __init__(self, lm: Any) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._inner = lm.loglikelihood
        lm.loglikelihood = self

    def __call__(self, requests: Any, disable_tqdm: bool = False) -> Any:
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            return self._inner(requests, disable_tqdm=disable_tqdm)
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu_start


def run_side(lm: Any, tasks: list[str], limit: int, num_fewshot: int | None) -> dict[str, Any]:
    timer = TimedLoglikelihood(lm)
    start = time.perf_counter()
    raw = lm_eval.simple_evaluate(
        model=lm,
        tasks=tasks,
        limit=limit,
        num_fewshot=num_fewshot,
        task_manager=task_manager(),
        log_samples=True,
        random_seed=None,
        numpy_random_seed=None,
        torch_random_seed=None,
        fewshot_random_seed=1234,
    )
    wall = time.perf_counter() - start
    lm.loglikelihood = timer._inner
    return {"raw": raw, "wall_s": wall, "loglikelihood_s": timer.seconds, "loglikelihood_cpu_s": timer.cpu_seconds}


def per_item(raw: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per document: its request log-likelihoods and the predictions (raw and length-normalised argmax)."""
    items = {}
    for task, samples in raw["samples"].items():
        for sample in samples:
            lls = [float(resp[0][0]) for resp in sample["resps"]]
            lengths = [len(continuation) for _, continuation in sample["arguments"]]
            items[(task, sample["doc_id"])] = {
                "lls": lls,
                "pred": max(range(len(lls)), key=lls.__getitem__),
                "pred_norm": max(range(len(lls)), key=lambda i: lls[i] / max(lengths[i], 1)),
            }
    return items


def compare(stock: dict[str, Any], engine: dict[str, Any]) -> dict[str, Any]:
    a, b = per_item(stock["raw"]), per_item(engine["raw"])
    assert a.keys() == b.keys(), "both sides must score the same documents"
    max_diff = max(abs(x - y) for key in a for x, y in zip(a[key]["lls"], b[key]["lls"], strict=True))
    same = all(a[key]["pred"] == b[key]["pred"] and a[key]["pred_norm"] == b[key]["pred_norm"] for key in a)
    differing = sum(a[key]["pred"] != b[key]["pred"] or a[key]["pred_norm"] != b[key]["pred_norm"] for key in a)
    return {
        "items": len(a),
        "requests": sum(len(item["lls"]) for item in a.values()),
        "identical_predictions": same,
        "items_with_different_predictions": differing,
        "max_abs_loglikelihood_diff": max_diff,
    }


def speed(args: argparse.Namespace, model: ElasticLlamaForCausalLM, tokenizer: Any) -> dict[str, Any]:
    task_manager()  # build the task index once, outside the timed runs
    stock = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size)
    engine = ElasticLlamaLM(model, tokenizer=tokenizer, batch_size=args.batch_size)
    runs = [
        ("arc_easy", ["arc_easy"], args.arc_limit, None),
        ("piqa", ["piqa"], args.piqa_limit, None),
        ("mmlu_5_subjects", [f"mmlu_{s}" for s in MMLU_SUBJECTS], args.mmlu_limit, 5),
    ]
    report: dict[str, Any] = {}
    for name, tasks, limit, fewshot in runs:
        log(f"{name}: stock HFLM, limit {limit} per task")
        stock_run = run_side(stock, tasks, limit, fewshot)
        log(f"{name}: stock {stock_run['wall_s']:.1f} s; prefix-shared engine")
        engine_run = run_side(engine, tasks, limit, fewshot)
        log(f"{name}: engine {engine_run['wall_s']:.1f} s")
        stock_scores, engine_scores = summarize(stock_run["raw"]), summarize(engine_run["raw"])
        entry = {
            "tasks": tasks,
            "limit_per_task": limit,
            "num_fewshot": fewshot if fewshot is not None else 0,
            "stock_wall_s": round(stock_run["wall_s"], 2),
            "engine_wall_s": round(engine_run["wall_s"], 2),
            "wall_speedup": round(stock_run["wall_s"] / engine_run["wall_s"], 3),
            "stock_loglikelihood_s": round(stock_run["loglikelihood_s"], 2),
            "engine_loglikelihood_s": round(engine_run["loglikelihood_s"], 2),
            "loglikelihood_speedup": round(stock_run["loglikelihood_s"] / engine_run["loglikelihood_s"], 3),
            "stock_loglikelihood_cpu_s": round(stock_run["loglikelihood_cpu_s"], 2),
            "engine_loglikelihood_cpu_s": round(engine_run["loglikelihood_cpu_s"], 2),
            "loglikelihood_cpu_speedup": round(stock_run["loglikelihood_cpu_s"] / engine_run["loglikelihood_cpu_s"], 3),
            "stock_accuracy": {t: {k: v for k, v in s.items() if k in ("acc", "acc_norm")} for t, s in stock_scores.items()},
            "engine_accuracy": {t: {k: v for k, v in s.items() if k in ("acc", "acc_norm")} for t, s in engine_scores.items()},
            **compare(stock_run, engine_run),
        }
        log(json.dumps({k: v for k, v in entry.items() if "accuracy" not in k}))
        report[name] = entry
    return report


def baseline(args: argparse.Namespace, model: ElasticLlamaForCausalLM, tokenizer: Any) -> dict[str, Any]:
    engine = ElasticLlamaLM(model, tokenizer=tokenizer, batch_size=args.batch_size)
    output = args.output or RESULTS_DIR / "baseline_accuracy.json"
    report: dict[str, Any] = json.loads(output.read_text())["baseline"] if output.is_file() else {}
    for task in args.tasks or [task for task in PACK_TASKS if task != "mmlu"] + ["mmlu"]:
        limit = args.mmlu_limit if task == "mmlu" else args.limit
        log(f"baseline {task}, limit {limit}")
        start = time.perf_counter()
        scores = evaluate(engine, None, [task], limit=limit)
        seconds = time.perf_counter() - start
        report[task] = {
            "limit_per_task": limit,
            "wall_s": round(seconds, 1),
            **{k: v for k, v in scores[task].items() if k in ("acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "num_samples")},
        }
        if task == "mmlu":
            report[task]["categories"] = {
                name: scores[name]["acc"] for name in ("mmlu_stem", "mmlu_humanities", "mmlu_social_sciences", "mmlu_other")
            }
        log(json.dumps(report[task]))
        write(output, args, {"baseline": report})
    return report


def write(path: Path, args: argparse.Namespace, body: dict[str, Any]) -> None:
    payload = {
        "model": "SmolLM2-135M-Instruct (GGUF Q4_1 de-quantised to float32)",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "lm_eval": lm_eval.__version__,
        "batch_size": args.batch_size,
        **body,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=16, help="requests per forward pass, both sides")
    parser.add_argument("--arc-limit", type=int, default=300)
    parser.add_argument("--piqa-limit", type=int, default=300)
    parser.add_argument("--mmlu-limit", type=int, default=25, help="items per MMLU subject")
    parser.add_argument("--baseline", action="store_true", help="accuracy of the full model on the task pack")
    parser.add_argument("--limit", type=int, default=500, help="--baseline: items per task (MMLU: --mmlu-limit)")
    parser.add_argument("--tasks", nargs="*", help="--baseline: tasks (default: the whole pack)")
    parser.add_argument("--output", type=Path)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads, both sides (default 1: on a CPU shared with other jobs, 2 threads spend their time "
        "waiting for each other)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    gguf = smollm2_gguf_path()
    log(f"loading {gguf.name} (fp32)")
    model = ElasticLlamaForCausalLM.from_pretrained(str(gguf), dtype=torch.float32).eval()
    tokenizer = load_tokenizer(str(gguf))
    if args.baseline:
        baseline(args, model, tokenizer)
        return 0
    report = speed(args, model, tokenizer)
    write(args.output or RESULTS_DIR / "bench_evaluation.json", args, {"speed": report})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
