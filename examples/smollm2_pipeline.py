"""The whole pipeline on the real SmolLM2-135M-Instruct, offline, on CPU: the README's main job.

    python examples/smollm2_pipeline.py              # ~5 minutes on 2 idle CPU cores
    python examples/smollm2_pipeline.py --resume     # continue a killed run (the search resumes from its results file)

1. Load SmolLM2 (the GGUF in ../shared/data, de-quantised to fp32) as an `ElasticLlamaForCausalLM` whose space keeps
   {22, 26, 30} of its layers (`any` layer mode) with per-layer MLP widths {768, 1152, 1536}.
2. Importance ordering: on calibration tokens of the WikiText-2 validation split, sort every MLP's neurons
   most-important-first and rank layers by block influence (which layers a sub-network drops first).
3. InstaTune: `--steps` optimizer steps of the `alternate` strategy (full network, then a sampled sub-network) on the
   WikiText-2 validation split, disjoint from the test text that is evaluated.
4. LINAS: `--num-evals` real evaluations of perplexity (first `--eval-tokens` WikiText-2 test tokens) against the exact
   parameter count; a report (Pareto plot, search-space analysis, notable sub-networks) under `--report-dir`.
5. Extraction: the best sub-network with at most `--max-params-ratio` of the parameters becomes a real checkpoint,
   saved in fp32 and INT8 with a model card (the folder `push_to_hub` would upload), reloaded with plain
   `AutoModelForCausalLM` and measured again. The reloaded fp32 model must give the perplexity the search measured
   (relative difference <= 1e-4), else the run fails.

Everything measured goes to `--output` (JSON) and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hf_llama_nas import LINAS, ElasticLlamaForCausalLM, SearchSpace, write_report  # noqa: E402
from hf_llama_nas.data import shared_data_dir, smollm2_gguf_path, wikitext2_test_text  # noqa: E402
from hf_llama_nas.evaluation import evaluate_perplexity  # noqa: E402
from hf_llama_nas.export.hub import prepare_hub_folder  # noqa: E402
from hf_llama_nas.export.save import checkpoint_nbytes  # noqa: E402
from hf_llama_nas.modeling import resolve_checkpoint  # noqa: E402
from hf_llama_nas.search.objectives import params_objective, perplexity_objective  # noqa: E402
from hf_llama_nas.training import (  # noqa: E402
    InstaTuneArguments,
    InstaTuneTrainer,
    apply_importance_ordering_,
    chunk_token_ids,
)

NUM_LAYERS = (22, 26, 30)
WIDTHS = (768, 1152, 1536)
TRAINING_TEXT = Path("text/wikitext-2-tokens/valid.txt")
CONTEXT = 256


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="InstaTune optimizer steps (default 30)")
    parser.add_argument("--block-size", type=int, default=128, help="tokens per training step (default 128)")
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--calibration-tokens", type=int, default=512)
    parser.add_argument("--eval-tokens", type=int, default=256, help="WikiText-2 test tokens scored (default 256)")
    parser.add_argument("--num-evals", type=int, default=48, help="real evaluations of the search (default 48)")
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--max-params-ratio", type=float, default=0.75)
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "examples/out/pipeline")
    parser.add_argument("--report-dir", type=Path, default=REPO_ROOT / "examples/results/pipeline")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "examples/results/smollm2_pipeline.json")
    parser.add_argument("--resume", action="store_true", help="reuse the trained super-network and search results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    torch.manual_seed(0)
    results: dict[str, Any] = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    supernet_dir = args.out_dir / "supernet"
    search_dir = args.out_dir / "search"
    if not args.resume and args.out_dir.exists():
        shutil.rmtree(args.out_dir)

    gguf = smollm2_gguf_path()
    directory, gguf_file = resolve_checkpoint(gguf)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    eval_ids = tokenizer(wikitext2_test_text(), return_tensors="pt")["input_ids"][0][: args.eval_tokens]
    train_text = (shared_data_dir() / TRAINING_TEXT).read_text(encoding="utf-8")
    train_ids = tokenizer(train_text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    space = SearchSpace(num_hidden_layers=30, num_layers=NUM_LAYERS, intermediate_size=WIDTHS, layer_mode="any")
    log(f"space: {space.num_subnets():.3e} sub-networks; evaluation: first {eval_ids.numel()} WikiText-2 test tokens")

    def ppl(model: torch.nn.Module) -> float:
        return evaluate_perplexity(model, eval_ids, context_length=CONTEXT, progress=False).perplexity

    if args.resume and (supernet_dir / "config.json").is_file():
        log(f"resuming with the trained super-network in {supernet_dir}")
    else:
        tick = time.perf_counter()
        model = ElasticLlamaForCausalLM.from_pretrained(str(gguf), search_space=space, dtype=torch.float32)
        results["full_perplexity_pretrained"] = ppl(model)
        log(f"1. loaded SmolLM2 in {time.perf_counter() - tick:.0f} s; full-network perplexity "
            f"{results['full_perplexity_pretrained']:.2f}")

        tick = time.perf_counter()
        calibration = train_ids[-args.calibration_tokens:].view(-1, args.block_size)
        scores = apply_importance_ordering_(model, calibration)
        results["importance"] = {"seconds": time.perf_counter() - tick, "calibration_tokens": scores.num_tokens,
                                 "layer_drop_order": list(model.config.nas_layer_drop_order)}
        log(f"2. importance ordering in {results['importance']['seconds']:.0f} s; layers dropped first: "
            f"{results['importance']['layer_drop_order'][:8]}")

        tick = time.perf_counter()
        train_data = chunk_token_ids(train_ids[: -args.calibration_tokens], args.block_size)
        training_args = InstaTuneArguments(
            output_dir=str(args.out_dir / "instatune"), nas_strategy="alternate", max_steps=args.steps,
            per_device_train_batch_size=1, learning_rate=args.learning_rate, warmup_steps=3, weight_decay=0.0,
            logging_steps=10, save_strategy="no", report_to=[], use_cpu=True, seed=0, dataloader_num_workers=0,
        )
        trainer = InstaTuneTrainer(model=model.train(), args=training_args, train_dataset=train_data)
        trainer.train()
        model.eval()
        results["instatune"] = {"strategy": "alternate", "steps": args.steps, "tokens": args.steps * args.block_size,
                                "seconds": time.perf_counter() - tick,
                                "log": [e for e in trainer.state.log_history if "loss" in e]}
        log(f"3. InstaTune alternate: {args.steps} steps x {args.block_size} tokens in "
            f"{results['instatune']['seconds']:.0f} s")
        model.save_pretrained(supernet_dir)
        del trainer, model

    # The search runs on the saved checkpoint, so a resumed run searches exactly the same model.
    model = ElasticLlamaForCausalLM.from_pretrained(supernet_dir, dtype=torch.float32).eval()

    tick = time.perf_counter()
    objectives = [perplexity_objective(eval_ids, context_length=CONTEXT), params_objective()]
    search = LINAS(space, objectives, num_evals=args.num_evals, population=args.population,
                   batch_size=max(1, args.population // 2), seed=0)
    found = search.run(model, output_dir=search_dir, resume=args.resume, evaluate_full=True)
    report = write_report(search_dir, args.report_dir)
    full_params = sum(p.numel() for p in model.parameters())
    budget = args.max_params_ratio * full_params
    best = found.best_under({"params": budget}, "perplexity")
    if best is None:
        log(f"no sub-network of at most {args.max_params_ratio:.2f}x the parameters was evaluated")
        return 1
    results["search"] = {
        "evaluations": len(found.store), "seconds": time.perf_counter() - tick,
        "evaluation_s": found.evaluation_s, "machinery_s": found.machinery_s,
        "hypervolume": report["hypervolume"], "pareto": [{"subnet": e.subnet.to_dict(), **e.values} for e in found.pareto()],
        "full_network": found.store.reference.values if found.store.reference is not None else None,
        "best_under_ratio": {"subnet": best.subnet.to_dict(), **best.values, "params_ratio": best.values["params"] / full_params},
        "report": {k: v for k, v in report.items() if k not in ("hypervolume",)},
    }
    log(f"4. LINAS: {len(found.store)} evaluations in {results['search']['seconds']:.0f} s; best at <= "
        f"{args.max_params_ratio:.2f}x params: {best.subnet.num_layers} layers, perplexity "
        f"{best.values['perplexity']:.2f}, {best.values['params'] / full_params:.3f}x params")

    sub = model.extract_subnetwork(best.subnet).eval()
    rows = []
    for int8 in (False, True):
        folder = args.out_dir / ("best-int8" if int8 else "best")
        if folder.exists():
            shutil.rmtree(folder)
        prepare_hub_folder(sub, folder, tokenizer=tokenizer, int8=int8, parent="HuggingFaceTB/SmolLM2-135M-Instruct",
                           results=[{"task": "wikitext", "metric": "perplexity", "value": best.values["perplexity"]}])
        reloaded = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
        rows.append({"checkpoint": str(folder), "int8": int8,
                     "loaded_as": type(reloaded).__name__, "size_mb": checkpoint_nbytes(folder) / 1e6,
                     "perplexity": ppl(reloaded), "model_card": (folder / "README.md").is_file()})
        log(f"5. {'INT8' if int8 else 'fp32'} checkpoint {folder.name}: {rows[-1]['size_mb']:.1f} MB, loaded as "
            f"{rows[-1]['loaded_as']}, perplexity {rows[-1]['perplexity']:.2f}")
        del reloaded
    results["extracted"] = rows
    results["full_checkpoint_mb_fp32"] = full_params * 4 / 1e6
    deviation = abs(rows[0]["perplexity"] - best.values["perplexity"]) / best.values["perplexity"]
    results["checks"] = {"reloaded_fp32_equals_search": deviation <= 1e-4, "relative_difference": deviation}
    results["machine"] = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "torch": torch.__version__, "python": platform.python_version()}
    results["wall_time_s"] = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    log(f"done in {results['wall_time_s']:.0f} s; results in {args.output}")
    if not results["checks"]["reloaded_fp32_equals_search"]:
        log(f"FAILED: the reloaded checkpoint's perplexity differs from the search's by {deviation:.2e}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
