"""InstaTune on the real SmolLM2-135M-Instruct, on CPU: importance ordering, then `alternate` fine-tuning of the
super-network, compared with fine-tuning the full model alone and with `joint`; WikiText-2 perplexity of fixed
sub-networks before and after.

    OMP_NUM_THREADS=1 python examples/smollm2_instatune.py   # ~30 min on a busy 2-core CPU, offline
    OMP_NUM_THREADS=1 python examples/smollm2_instatune.py --resume   # continue after an interruption (finished stages are kept)

Stages (results are written to `--output` after each one):

1. ordering: load SmolLM2 (GGUF, de-quantised to fp32) as an elastic model with the space
   layers {22, 26, 30} x per-layer MLP {768, 1152, 1536} in `any` layer mode. On calibration text taken from the
   training text, rank layers by block influence and MLP neurons by mean activation magnitude; measure the
   perplexity of sub-networks of 46-90% of the decoder parameters (a) cut natively (first layers, first-k neurons),
   (b) with the least influential layers dropped, (c) with layers dropped and neurons reordered. Save (c)'s weights.
2. alternate / full_only / joint: from the reordered weights, train `--steps` optimizer steps of 1 x `--block-size`
   tokens of the WikiText-2 *validation* split (disjoint from the test split evaluated on) with
   `InstaTuneTrainer` (`alternate`, `joint`) or the plain `Trainer` (full network only), same optimizer, learning
   rate, schedule and data order; then measure the perplexity of the full network and of the smallest, a middle
   and a large sub-network.

Perplexity is on a fixed slice: the first `--eval-tokens` tokens of the raw WikiText-2 test split, disjoint windows of
256 tokens (`hf_llama_nas.evaluation.evaluate_perplexity`).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoTokenizer, Trainer, TrainingArguments  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hf_llama_nas import ElasticLlamaForCausalLM, SearchSpace, SubnetConfig  # noqa: E402
from hf_llama_nas.data import shared_data_dir, smollm2_gguf_path, wikitext2_test_text  # noqa: E402
from hf_llama_nas.evaluation.perplexity import evaluate_perplexity  # noqa: E402
from hf_llama_nas.modeling import resolve_checkpoint  # noqa: E402
from hf_llama_nas.training import (  # noqa: E402
    InstaTuneArguments,
    InstaTuneTrainer,
    SubnetSampler,
    chunk_token_ids,
    compute_importance,
    permute_mlp_neurons_,
)

NUM_LAYERS = (22, 26, 30)
WIDTHS = (768, 1152, 1536)
#: Sub-networks (depth, width) of the ordering comparison, from 46% to 87% of the decoder parameters.
ORDERING_SUBNETS = ((22, 768), (30, 768), (26, 1152), (26, 1536))
#: Sub-networks evaluated before and after fine-tuning: the smallest, a middle one, a large one (the largest is full).
TRAINED_SUBNETS = {"smallest": (22, 768), "middle": (26, 1152), "large": (26, 1536)}
TRAINING_TEXT = Path("text/wikitext-2-tokens/valid.txt")
CALIBRATION_BLOCKS = 8


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per training run (default 100)")
    parser.add_argument("--block-size", type=int, default=128, help="tokens per training sequence (default 128)")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    parser.add_argument("--eval-tokens", type=int, default=2048, help="WikiText-2 test tokens scored (default 2048)")
    parser.add_argument("--stages", default="ordering,alternate,full_only,joint", help="comma-separated stages to run")
    parser.add_argument("--resume", action="store_true", help="keep finished stages of an existing --output")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "examples/results/smollm2_instatune.json")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "examples/out/instatune")
    return parser.parse_args(argv)


def decoder_fraction(subnet: SubnetConfig, config: Any) -> float:
    full = SubnetConfig.full(config).num_parameters(config, include_embeddings=False)
    return subnet.num_parameters(config, include_embeddings=False) / full


def total_fraction(subnet: SubnetConfig, config: Any) -> float:
    return subnet.num_parameters(config) / SubnetConfig.full(config).num_parameters(config)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    torch.manual_seed(0)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    results: dict[str, Any] = {}
    if args.resume and args.output.is_file():
        results = json.loads(args.output.read_text())
    results.setdefault("stages", {})
    args.out_dir.mkdir(parents=True, exist_ok=True)
    reordered_dir = args.out_dir / "smollm2-reordered"

    def save() -> None:
        results["machine"] = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                              "torch": torch.__version__, "python": platform.python_version(),
                              "note": "2 CPU cores shared with other jobs: times are wall-clock and pessimistic"}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")

    gguf = smollm2_gguf_path()
    directory, gguf_file = resolve_checkpoint(gguf)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    eval_ids = tokenizer(wikitext2_test_text(), return_tensors="pt")["input_ids"][0][: args.eval_tokens]
    train_text = (shared_data_dir() / TRAINING_TEXT).read_text(encoding="utf-8")
    train_ids = tokenizer(train_text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    train_data = chunk_token_ids(train_ids, args.block_size)
    calibration = train_ids[-CALIBRATION_BLOCKS * args.block_size:].view(CALIBRATION_BLOCKS, args.block_size)
    log(f"training text: {train_ids.numel()} tokens -> {len(train_data)} blocks of {args.block_size}; "
        f"evaluation: first {eval_ids.numel()} WikiText-2 test tokens")
    results["setup"] = {
        "model": "SmolLM2-135M-Instruct (shared/data GGUF Q4_1, de-quantised to fp32)",
        "search_space": {"num_layers": list(NUM_LAYERS), "intermediate_size": list(WIDTHS), "layer_mode": "any"},
        "training_text": f"WikiText-2 validation split ({TRAINING_TEXT}), {train_ids.numel()} tokens",
        "calibration": f"last {CALIBRATION_BLOCKS} x {args.block_size} tokens of the training text",
        "evaluation": f"first {eval_ids.numel()} tokens of WikiText-2 raw test, disjoint 256-token windows",
    }

    def ppl(model: torch.nn.Module, subnet: SubnetConfig | None) -> float:
        with model.subnet(subnet, check_space=False):
            return evaluate_perplexity(model, eval_ids, context_length=256, progress=False).perplexity

    space = SearchSpace(num_hidden_layers=30, num_layers=NUM_LAYERS, intermediate_size=WIDTHS, layer_mode="any")

    if "ordering" in stages and not (args.resume and "ordering" in results["stages"]):
        model = ElasticLlamaForCausalLM.from_pretrained(str(gguf), search_space=space, dtype=torch.float32).eval()
        native_sampler = SubnetSampler(SearchSpace(num_hidden_layers=30, num_layers=NUM_LAYERS,
                                                   intermediate_size=WIDTHS, layer_mode="prefix"))
        full_before = ppl(model, None)
        log(f"full network: perplexity {full_before:.2f}")
        tick = time.perf_counter()
        scores = compute_importance(model, calibration)
        order = scores.layer_drop_order()
        layer_sampler = SubnetSampler(space, 0, tuple(order))
        rows = []
        native = {}
        layers_only = {}
        for depth, width in ORDERING_SUBNETS:
            native[(depth, width)] = ppl(model, native_sampler.uniform(depth, width))
            layers_only[(depth, width)] = ppl(model, layer_sampler.uniform(depth, width))
            log(f"{depth}x{width}: native {native[(depth, width)]:.1f}, layers by influence {layers_only[(depth, width)]:.1f}")
        permute_mlp_neurons_(model, scores.neuron_orders())
        model.config.nas_layer_drop_order = order
        ordering_seconds = time.perf_counter() - tick
        full_after = ppl(model, None)
        for depth, width in ORDERING_SUBNETS:
            subnet = layer_sampler.uniform(depth, width)
            ordered = ppl(model, subnet)
            log(f"{depth}x{width}: layers by influence + neurons ordered {ordered:.1f}")
            rows.append({"subnet": f"{depth} layers x {width}", "decoder_params_fraction": decoder_fraction(subnet, model.config),
                         "params_fraction": total_fraction(subnet, model.config),
                         "native_first_layers_first_k": native[(depth, width)],
                         "layers_by_influence_first_k": layers_only[(depth, width)],
                         "layers_by_influence_neurons_ordered": ordered, "layers": list(subnet.layers)})
        model.save_pretrained(reordered_dir)
        results["stages"]["ordering"] = {
            "full_perplexity_before": full_before, "full_perplexity_after": full_after,
            "layer_drop_order": order, "block_influence": scores.layer,
            "criterion": "mean |act(gate(x)) * up(x)| per neuron; block influence 1 - cos(in, out) per layer",
            "calibration_tokens": scores.num_tokens, "seconds": time.perf_counter() - tick,
            "ordering_seconds": ordering_seconds, "rows": rows,
        }
        save()
        del model

    base = ElasticLlamaForCausalLM.from_pretrained(reordered_dir, dtype=torch.float32)
    base.search_space = space
    sampler = SubnetSampler(space, 0, tuple(base.config.nas_layer_drop_order))
    evaluated = {name: sampler.uniform(*dims) for name, dims in TRAINED_SUBNETS.items()}

    def evaluate_all(model: ElasticLlamaForCausalLM) -> dict[str, Any]:
        measured = {"full": {"perplexity": ppl(model, None), "decoder_params_fraction": 1.0}}
        for name, subnet in evaluated.items():
            measured[name] = {"perplexity": ppl(model, subnet), "subnet": f"{subnet.num_layers} layers x {subnet.intermediate_size[0]}",
                              "decoder_params_fraction": decoder_fraction(subnet, model.config),
                              "layers": list(subnet.layers)}
        return measured

    if not (args.resume and "before_training" in results["stages"]):
        results["stages"]["before_training"] = evaluate_all(base.eval())
        log(f"before training: {json.dumps({k: round(v['perplexity'], 2) for k, v in results['stages']['before_training'].items()})}")
        save()

    for stage in ("alternate", "full_only", "joint"):
        if stage not in stages or (args.resume and stage in results["stages"]):
            continue
        torch.manual_seed(0)
        model = copy.deepcopy(base).train()
        common = dict(output_dir=str(args.out_dir / stage), max_steps=args.steps, per_device_train_batch_size=1,
                      learning_rate=args.learning_rate, lr_scheduler_type="linear", warmup_steps=5, weight_decay=0.0,
                      logging_steps=10, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                      disable_tqdm=True, dataloader_num_workers=0)
        if stage == "full_only":
            trainer: Trainer = Trainer(model=model, args=TrainingArguments(**common), train_dataset=train_data)
        else:
            trainer = InstaTuneTrainer(model=model, args=InstaTuneArguments(**common, nas_strategy=stage),
                                       train_dataset=train_data)
        log(f"{stage}: training {args.steps} steps of 1 x {args.block_size} tokens")
        tick = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - tick
        model.eval()
        measured = evaluate_all(model)
        results["stages"][stage] = {
            "steps": args.steps, "tokens": args.steps * args.block_size, "train_seconds": seconds,
            "learning_rate": args.learning_rate, "perplexity": measured,
            "log": [entry for entry in trainer.state.log_history if "loss" in entry],
        }
        log(f"{stage}: {seconds:.0f} s; {json.dumps({k: round(v['perplexity'], 2) for k, v in measured.items()})}")
        save()
        del model, trainer

    before = results["stages"]["before_training"]
    table = ["| network | decoder params | before | alternate | full only | joint |", "|---|---|---|---|---|---|"]
    for name in ["full", *TRAINED_SUBNETS]:
        cells = [f"{results['stages'][s]['perplexity'][name]['perplexity']:.2f}" if s in results["stages"] else "-"
                 for s in ("alternate", "full_only", "joint")]
        label = before[name].get("subnet", "full (30 x 1536)")
        table.append(f"| {name}: {label} | {before[name]['decoder_params_fraction']:.2f} | {before[name]['perplexity']:.2f} | "
                     + " | ".join(cells) + " |")
    results["markdown_table"] = "\n".join(table)
    if "alternate" in results["stages"]:
        after = results["stages"]["alternate"]["perplexity"]
        results["checks"] = {
            "alternate_subnets_better_than_before": all(after[n]["perplexity"] < before[n]["perplexity"] for n in TRAINED_SUBNETS),
            "alternate_full_rise_at_most_2_percent": after["full"]["perplexity"] <= 1.02 * before["full"]["perplexity"],
        }
    results["wall_time_s_last_invocation"] = time.perf_counter() - started
    save()
    print("\n" + results["markdown_table"] + "\n")
    log(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
