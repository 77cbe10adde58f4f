"""Sample efficiency of LINAS against NSGA-II without predictors and random search, on a real problem.

Super-network: SmolLM2-135M-Instruct (../shared/data GGUF, fp32). Space: any 16..30 of the 30 layers,
each MLP 512/768/1024/1280/1536 wide (first-k neurons, no training): ~2.2e23 sub-networks.
Objectives: perplexity on a fixed WikiText-2 slice (expensive; the first 128 test tokens, one window)
and the exact parameter count (cheap). Every method and seed uses one cache of perplexities keyed by
sub-network id (evaluations are deterministic; the cache also lives in a file), but the figures
count every real evaluation a method asks for, cached or not. Normalised hypervolume uses one common
reference: params from the smallest to the largest sub-network of the space, perplexity 10..1000 on a
log scale (sub-networks worse than 1000 add nothing).

The machinery fraction of LINAS is predictor fitting + inner NSGA-II + batch selection, divided by
that plus the real evaluation time of the sub-networks it evaluated (their measured forward time, also
when the value came from the cache).

    python benchmarks/bench_linas.py                # 3 seeds; LINAS/random 250, NSGA-II 1000 evaluations
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hf_llama_nas.data import smollm2_gguf_path, wikitext2_test_text  # noqa: E402
from hf_llama_nas.evaluation import evaluate_perplexity  # noqa: E402
from hf_llama_nas.modeling import ElasticLlamaForCausalLM, load_config_dict, resolve_checkpoint  # noqa: E402
from hf_llama_nas.search import LINAS, NSGA2Search, Objective, RandomSearch, ResultsStore  # noqa: E402
from hf_llama_nas.search_space import SearchSpace, SubnetConfig  # noqa: E402

WIDTHS = (512, 768, 1024, 1280, 1536)
#: LINAS variants of the ablation: the published recipe's uniform initial population and uncapped targets, then
#: one change at a time towards the defaults (capped targets, size-stratified initial population).
ABLATIONS = {
    "uniform init, uncapped targets": {"initial": "uniform", "clip_margin": None},
    "uniform init, capped targets": {"initial": "uniform"},
    "uniform init, capped, batches of 10": {"initial": "uniform", "batch_size": 10},
    "uniform init, capped, batches of 10, 6 inner generations": {"initial": "uniform", "batch_size": 10,
                                                                  "inner_generations": 6},
    "uniform init, capped, inverse-MAE ensemble": {"initial": "uniform", "ensemble": True},
    "stratified init, capped targets (default)": {},
}
#: Thousands of forwards of differently shaped sub-networks fragment glibc's heap (a run of several thousand
#: evaluations grew past 12 GB and was OOM-killed); returning free memory after each one keeps it flat.
_LIBC = ctypes.CDLL("libc.so.6")
REFERENCE = {"ideal": {"perplexity": 10.0}, "reference": {"perplexity": 1000.0}}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class PerplexityCache:
    """Perplexity (and the forward time it took) per sub-network id, mirrored to a JSONL file."""

    def __init__(self, path: Path, model: ElasticLlamaForCausalLM, ids: torch.Tensor):
        self.path, self.model, self.ids = path, model, ids
        self.values: dict[str, tuple[float, float]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.values[record["id"]] = (record["perplexity"], record["time_s"])
        self.hits = self.misses = 0

    def __call__(self, model: Any, subnet: SubnetConfig) -> float:
        if subnet.id in self.values:
            self.hits += 1
            return self.values[subnet.id][0]
        self.misses += 1
        start = time.perf_counter()
        value = evaluate_perplexity(model, self.ids, context_length=len(self.ids), progress=False).perplexity
        elapsed = time.perf_counter() - start
        self.values[subnet.id] = (value, elapsed)
        _LIBC.malloc_trim(0)
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"id": subnet.id, "perplexity": value, "time_s": elapsed}) + "\n")
        return value

    def time_of(self, subnet_id: str) -> float:
        return self.values[subnet_id][1]


def hv_curve(store: Any, checkpoints: list[int]) -> dict[int, float]:
    return {k: store.hypervolume(first=k)["hypervolume"] for k in checkpoints if k <= len(store)}


def evals_to_reach(curve: dict[int, float], target: float) -> float | None:
    """Evaluations a (monotone) hypervolume curve needs to reach `target`, linearly interpolated; None if never."""
    points = sorted(curve.items())
    previous = (0, 0.0)
    for evals, value in points:
        if value >= target:
            (e0, v0), (e1, v1) = previous, (evals, value)
            return float(e1) if v1 == v0 else e0 + (target - v0) / (v1 - v0) * (e1 - e0)
        previous = (evals, value)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=250, help="evaluations of LINAS and random search")
    parser.add_argument("--nsga2-budget", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--methods", default="linas,random,nsga2", help="methods to run (comma-separated)")
    parser.add_argument("--merge", type=Path, nargs="+", default=[],
                        help="previous results JSONs whose runs of the other methods (and these seeds) are kept")
    parser.add_argument("--import-runs", type=Path, nargs="+", default=[],
                        help="results directories of runs that were stopped early, reported as far as they got")
    parser.add_argument("--ablations", action="store_true",
                        help="also run LINAS variants on the first seed (what each design choice is worth)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared: 1 avoids oversubscription)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks/results/bench_linas.json")
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / "benchmarks/results/bench_linas_cache.jsonl")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    model_path = smollm2_gguf_path()
    directory, gguf_file = resolve_checkpoint(model_path)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    ids = tokenizer(wikitext2_test_text()[:20000], return_tensors="pt")["input_ids"][0][: args.tokens]
    config = load_config_dict(model_path)
    space = SearchSpace.for_model(config, min_layers=16, max_layers=30, intermediate_size=WIDTHS, layer_mode="any")
    model = ElasticLlamaForCausalLM.from_pretrained(str(model_path), search_space=space, dtype=torch.float32).eval()
    cache = PerplexityCache(args.cache, model, ids)
    perplexity = Objective("perplexity", fn=cache, scale="log",
                           options={"text": "wikitext-2 test", "tokens": int(ids.numel())})
    full = SubnetConfig.full(model.config)
    full_ppl = cache(model, full)
    log(f"space: {space.num_subnets():.3e} sub-networks; full model perplexity {full_ppl:.2f}; {len(cache.values)} cached")

    methods = [("linas", LINAS, args.budget), ("random", RandomSearch, args.budget), ("nsga2", NSGA2Search, args.nsga2_budget)]
    selected = [name for name in args.methods.split(",") if name]
    checkpoints = sorted({*range(25, args.nsga2_budget + 1, 25), 50, 100, 250})
    runs: list[dict[str, Any]] = []
    for merged in args.merge:
        previous = json.loads(merged.read_text())
        for run in previous["runs"]:
            if run["method"] not in selected and run["seed"] in args.seeds:
                run["curve"] = {int(k): v for k, v in run["curve"].items()}
                run["bounds"] = previous["problem"]["hypervolume_bounds"]
                runs.append(run)
    for directory in args.import_runs:
        store = ResultsStore.read(directory)
        settings = store.header["algorithm"]
        runs.append({"method": settings["name"], "seed": settings["seed"], "settings": settings,
                     "evaluations": len(store), "curve": hv_curve(store, checkpoints), "complete": False,
                     "real_evaluation_s": sum(cache.time_of(e.id) for e in store if e.id in cache.values),
                     "machinery_s": 0.0, "machinery_fraction": 0.0,
                     "best_perplexity": min(e.values["perplexity"] for e in store.ok()),
                     "pareto_size": len(store.pareto()), "rounds": [],
                     "bounds": {k: store.hypervolume()[k] for k in ("ideal", "reference")}})
    work = Path(tempfile.mkdtemp(prefix="bench_linas_"))

    def write(final: bool) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        for name, _, budget in methods:
            mine = [r for r in runs if r["method"] == name]
            if not mine:
                continue
            budgets = [b for b in (50, 100, 250, 500, 1000) if b <= budget]
            summary[name] = {
                "seeds": [r["seed"] for r in mine],
                "hypervolume": {str(b): [r["curve"][b] for r in mine if b in r["curve"]] for b in budgets},
                "hypervolume_mean": {str(b): statistics.fmean([r["curve"][b] for r in mine if b in r["curve"]])
                                     for b in budgets if any(b in r["curve"] for r in mine)},
            }
        linas = [r for r in runs if r["method"] == "linas"]
        nsga = {r["seed"]: r for r in runs if r["method"] == "nsga2"}
        if linas:
            summary["linas"]["machinery_fraction"] = [r["machinery_fraction"] for r in linas]
            summary["linas"]["machinery_fraction_mean"] = statistics.fmean(r["machinery_fraction"] for r in linas)
            matches = []
            for r in linas:
                target = r["curve"].get(args.budget)
                if r["seed"] in nsga and target is not None:
                    needed = evals_to_reach(nsga[r["seed"]]["curve"], target)
                    matches.append({"seed": r["seed"], "linas_hypervolume": target, "nsga2_evals_to_match": needed,
                                    "nsga2_evaluations_run": nsga[r["seed"]]["evaluations"],
                                    "nsga2_best_hypervolume": max(nsga[r["seed"]]["curve"].values()),
                                    "ratio": None if needed is None else needed / args.budget})
            summary["linas"]["nsga2_evals_to_match_linas_at_budget"] = matches
            summary["linas"]["linas_evals_to_match_nsga2_at_its_budget"] = [
                {"seed": r["seed"], "nsga2_evaluations": nsga[r["seed"]]["evaluations"],
                 "nsga2_hypervolume": max(nsga[r["seed"]]["curve"].values()),
                 "linas_evals_to_match": evals_to_reach(r["curve"], max(nsga[r["seed"]]["curve"].values()))}
                for r in linas if r["seed"] in nsga]
            if nsga and all(r["seed"] in nsga for r in linas):
                mean_curve = {k: statistics.fmean(nsga[r["seed"]]["curve"][k] for r in linas)
                              for k in checkpoints if all(k in nsga[r["seed"]]["curve"] for r in linas)}
                needed = evals_to_reach(mean_curve, summary["linas"]["hypervolume_mean"][str(args.budget)])
                summary["linas"]["nsga2_mean_evals_to_match_linas_mean"] = needed
        results = {
            "description": __doc__.split("\n\n")[0],
            "problem": {
                "model": "SmolLM2-135M-Instruct (GGUF Q4_1 de-quantised to fp32)",
                "search_space": space.to_dict(),
                "num_subnets": space.num_subnets(),
                "objectives": ["perplexity (WikiText-2 test, first %d tokens, one window; minimise, log scale)"
                               % ids.numel(), "params (exact; minimise)"],
                "full_model_perplexity": full_ppl,
                "hypervolume_bounds": runs[0]["bounds"] if runs else None,
            },
            "budgets": {name: budget for name, _, budget in methods},
            "summary": summary,
            "runs": [{k: v for k, v in r.items() if k != "bounds"} for r in runs],
            "cache": {"entries": len(cache.values), "hits": cache.hits, "misses": cache.misses},
            "merged_runs_from": [str(path) for path in args.merge],
            "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "torch": torch.__version__, "python": platform.python_version()},
            "wall_time_s": time.perf_counter() - started,
            "complete": final,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
        return results

    for seed in args.seeds:
        for name, cls, budget in methods:
            if name not in selected:
                continue
            run_start = time.perf_counter()
            algorithm = cls(space, [perplexity, "params"], num_evals=budget, population=50, seed=seed)
            result = algorithm.run(model, output_dir=work / f"{name}-{seed}", progress=False,
                                   hypervolume_reference=REFERENCE)
            store = result.store
            real_eval_s = sum(cache.time_of(e.id) for e in store)
            curve = hv_curve(store, checkpoints)
            record = {
                "method": name,
                "seed": seed,
                "settings": store.header["algorithm"],
                "evaluations": len(store),
                "curve": curve,
                "wall_s": time.perf_counter() - run_start,
                "machinery_s": result.machinery_s,
                "real_evaluation_s": real_eval_s,
                "machinery_fraction": result.machinery_s / (result.machinery_s + real_eval_s),
                "best_perplexity": min(e.values["perplexity"] for e in store.ok()),
                "pareto_size": len(store.pareto()),
                "rounds": [{k: r.get(k) for k in ("round", "fit_s", "inner_search_s", "previous_batch")}
                           | {"chosen": {n: p["chosen"] for n, p in r["predictors"].items()}}
                           for r in store.rounds] if name == "linas" else [],
                "bounds": store.hypervolume(),
            }
            record["bounds"] = {"ideal": record["bounds"]["ideal"], "reference": record["bounds"]["reference"]}
            runs.append(record)
            log(f"{name} seed {seed}: HV " + ", ".join(f"{k}:{v:.4f}" for k, v in curve.items() if k in (50, 100, 250, 500, 1000))
                + f"; machinery {result.machinery_s:.1f}s of {real_eval_s:.0f}s real eval "
                f"({record['machinery_fraction']:.1%}); wall {record['wall_s']:.0f}s; cache hits {cache.hits}")
            write(final=False)
    ablations = []
    if args.ablations:
        seed = args.seeds[0]
        for label, options in ABLATIONS.items():
            algorithm = LINAS(space, [perplexity, "params"], num_evals=args.budget, population=50, seed=seed,
                              **options)
            result = algorithm.run(model, output_dir=work / f"ablation-{len(ablations)}", progress=False,
                                   hypervolume_reference=REFERENCE)
            real_eval_s = sum(cache.time_of(e.id) for e in result.store)
            ablations.append({"variant": label, "options": options, "seed": seed,
                              "curve": hv_curve(result.store, [50, 100, 150, 200, 250]),
                              "machinery_s": result.machinery_s,
                              "machinery_fraction": result.machinery_s / (result.machinery_s + real_eval_s)})
            log(f"ablation {label}: HV@{args.budget} {ablations[-1]['curve'].get(args.budget, float('nan')):.4f}")
    results = write(final=True)
    if ablations:
        results["ablations"] = ablations
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
