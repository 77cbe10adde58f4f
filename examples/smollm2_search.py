"""LINAS on SmolLM2-135M-Instruct: ARC-Easy accuracy (a fixed subset) against parameter count, on CPU.

The super-network is the pretrained model from ../shared/data with its MLP neurons reordered by
importance on calibration text (`apply_importance_ordering_`, no training), so that a narrowed layer
keeps its most useful neurons. Space: any 16..30 of the 30 layers, each MLP 768/1024/1280/1536 wide.
Objectives: ARC-Easy accuracy on its first `--limit` items (through `hf_llama_nas.evaluation.evaluate`)
and the exact parameter count. The search is resumable: rerun with the same --output to continue.

    python examples/smollm2_search.py --num-evals 24 --limit 500        # writes examples/results/search/
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hf_llama_nas.data import smollm2_gguf_path, wikitext2_test_text  # noqa: E402
from hf_llama_nas.modeling import ElasticLlamaForCausalLM, load_config_dict, resolve_checkpoint  # noqa: E402
from hf_llama_nas.reports import write_report  # noqa: E402
from hf_llama_nas.search import LINAS, ResultsStore, accuracy_objective, get_objective  # noqa: E402
from hf_llama_nas.search_space import SearchSpace  # noqa: E402
from hf_llama_nas.training import apply_importance_ordering_  # noqa: E402

WIDTHS = (768, 1024, 1280, 1536)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-evals", type=int, default=24)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--limit", type=int, default=500, help="ARC-Easy items per evaluation (the first N)")
    parser.add_argument("--calibration-tokens", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "examples/results/search")
    parser.add_argument("--report-only", action="store_true", help="only (re)write the report from the results file")
    args = parser.parse_args(argv)
    if args.report_only:
        summarise(args.output)
        return 0
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    model_path = smollm2_gguf_path()
    directory, gguf_file = resolve_checkpoint(model_path)
    config = load_config_dict(model_path)
    space = SearchSpace.for_model(config, min_layers=16, max_layers=30, intermediate_size=WIDTHS, layer_mode="any")
    model = ElasticLlamaForCausalLM.from_pretrained(str(model_path), search_space=space, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    text = wikitext2_test_text()
    calibration = tokenizer(text[-200_000:], return_tensors="pt")["input_ids"][0][: args.calibration_tokens]
    apply_importance_ordering_(model, calibration.view(-1, 256))
    log(f"importance ordering on {calibration.numel()} WikiText-2 tokens done; space {space.num_subnets():.2e} sub-networks")

    objectives = [accuracy_objective("arc_easy", limit=args.limit, metric="acc"), get_objective("params")]
    search = LINAS(space, objectives, num_evals=args.num_evals, population=args.population,
                   batch_size=args.batch_size, seed=args.seed)
    result = search.run(model, output_dir=args.output, resume=True, evaluate_full=True)
    summarise(args.output, {"evaluation_s_this_run": result.evaluation_s, "machinery_s_this_run": result.machinery_s,
                            "wall_time_s_this_run": time.perf_counter() - started,
                            "torch_threads": torch.get_num_threads()})
    return 0


def summarise(output: Path, extra: dict | None = None) -> None:
    """Write the report (plots, notable.md) and summary.json from the results file alone."""
    store = ResultsStore.read(output)
    full = store.reference
    files = write_report(output)
    best = store.best_under({"params": 0.75 * full.values["params"]}, "accuracy")
    objectives = {o["name"]: o for o in store.objectives}
    summary = {
        "description": __doc__.split("\n\n")[0],
        "search_space": store.header["search_space"],
        "num_subnets": store.space.num_subnets(),
        "objectives": ["ARC-Easy acc on the first %s items (maximise)" % objectives["accuracy"]["options"]["limit"],
                       "params (exact; minimise)"],
        "algorithm": store.header["algorithm"],
        "budget": {"planned_num_evals": store.header["algorithm"]["num_evals"], "evaluations_done": len(store),
                   "failed": sum(not e.ok for e in store), "rounds_done": len(store.rounds)},
        "full_model": {"accuracy": full.values["accuracy"], "params": full.values["params"]},
        "best_at_most_0.75x_params": None if best is None else {
            "id": best.id, "subnet": best.subnet.to_dict(), "accuracy": best.values["accuracy"],
            "params": best.values["params"], "params_ratio": best.values["params"] / full.values["params"]},
        "hypervolume": files["hypervolume"],
        "pareto": [{"id": e.id, "num_layers": e.subnet.num_layers, "accuracy": e.values["accuracy"],
                    "params": e.values["params"]} for e in store.pareto()],
        "table": files["table"],
        "evaluation_s": [round(e.time_s, 1) for e in store],
        "full_model_evaluation_s": full.time_s,
        "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()},
        **(extra or {}),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(files["table"])
    log(f"{len(store)} evaluations; results and report in {output}")


if __name__ == "__main__":
    raise SystemExit(main())
