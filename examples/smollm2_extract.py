"""Extract two sub-networks from the real SmolLM2-135M-Instruct, save them (fp32 and INT8), reload them with
plain transformers, and measure their WikiText-2 perplexity.

    python examples/smollm2_extract.py                      # 1-3 minutes on 2 CPU cores, offline

Steps (each prints its progress):

1. Load SmolLM2 (the GGUF in ../shared/data, de-quantised to fp32) as `ElasticLlamaForCausalLM` with an
   "any"-layer search space, and check that with the full network active its logits equal plain
   `LlamaForCausalLM`'s loaded from the same file (max |diff| <= 1e-5, else exit code 1).
2. Extract (a) a mixed-width sub-network and (b) a uniform one (one width in every kept layer), both
   about 2/3 of the parameters (embeddings included, tied embeddings counted once), plus the full
   network as the reference row.
3. Save each with `save_subnetwork` in fp32 and in INT8 (bitsandbytes) under `examples/out/`, reload each
   with plain `AutoModelForCausalLM.from_pretrained` (`trust_remote_code=True` for the mixed one), and
   measure the perplexity on a fixed slice: the first `--max-tokens` tokens of the raw WikiText-2 test
   split, disjoint windows of `--context-length` tokens (`--stride` = context length by default).
4. Check that the elastic model with a sub-network active (and plain `LlamaForCausalLM`, for the full
   network) has the same perplexity as the reloaded fp32 extraction (relative difference <= 1e-4, else
   exit code 1), and write everything to `--output`
   (JSON) and stdout (a Markdown table).

The sub-networks are cut from the original weights with no training and no neuron reordering (first-k
MLP neurons), so at 2/3 of the parameters their perplexity is far worse than the full model's: they
show the mechanics, not a good operating point (fine-tuning and importance ordering are what fix
that, see DESIGN.md section 6). Within that limit they were chosen to be sensible: a one-off scan on
WikiText-2 text far from the evaluation slice (characters 600,000-700,000, 1,024 tokens) showed that
removing layer 0, 1, 11, 28 or 29, or narrowing layer 0 or 11, ruins the model, while single middle
layers cost little. Hence (a) drops the middle block 9-19 and keeps 1536 neurons in the first three
and last four layers, 1280 in the others; (b) drops the middle block 9-20 and keeps all widths.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hf_llama_nas import ElasticLlamaForCausalLM, SearchSpace, SubnetConfig  # noqa: E402
from hf_llama_nas.data import smollm2_gguf_path, wikitext2_test_text  # noqa: E402
from hf_llama_nas.evaluation import evaluate_perplexity  # noqa: E402
from hf_llama_nas.export.save import checkpoint_nbytes, save_subnetwork  # noqa: E402
from hf_llama_nas.modeling import load_config_dict, resolve_checkpoint  # noqa: E402

NUM_LAYERS = 30
#: (a) mixed widths: drop layers 9-19; 1536 neurons in layers 0-2 and 26-29, 1280 in 3-8 and 20-25.
MIXED = SubnetConfig(
    layers=[i for i in range(NUM_LAYERS) if not 9 <= i <= 19],
    intermediate_size=[1536 if i <= 2 or i >= 26 else 1280 for i in range(NUM_LAYERS) if not 9 <= i <= 19],
)
#: (b) uniform: drop layers 9-20, every kept layer at its full width 1536 (saved as a plain LlamaForCausalLM).
UNIFORM = SubnetConfig(layers=[i for i in range(NUM_LAYERS) if not 9 <= i <= 20], intermediate_size=[1536] * 18)
#: The search space the sub-networks come from: any 16..30 layers, each MLP 768, 1024, 1280 or 1536 wide.
SPACE_WIDTHS = (768, 1024, 1280, 1536)
EQUIVALENCE_TOLERANCE = 1e-5
PERPLEXITY_RTOL = 1e-4


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def timed(what: str, fn: Callable[[], Any]) -> Any:
    """Run `fn`, printing what it does and how long it took."""
    log(f"{what} ...")
    start = time.perf_counter()
    result = fn()
    log(f"{what}: done in {time.perf_counter() - start:.1f} s")
    return result


def safetensors_mb(directory: Path) -> float:
    """Size on disk of a checkpoint's weights (all *.safetensors files, headers included), in MB (10^6 bytes)."""
    return sum(file.stat().st_size for file in directory.glob("*.safetensors")) / 1e6


def num_parameters(model: torch.nn.Module) -> int:
    """Parameters as stored (shared tensors such as tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file or model directory (default: the shared SmolLM2 GGUF)")
    parser.add_argument("--max-tokens", type=int, default=2048, help="score the first N WikiText-2 test tokens (default 2048)")
    parser.add_argument("--context-length", type=int, default=256, help="tokens per window (default 256)")
    parser.add_argument("--stride", type=int, default=None, help="window stride (default: the context length)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "examples/results/smollm2_extract.json", help="JSON results file")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "examples/out", help="where checkpoints are saved")
    return parser.parse_args(argv)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | layers | params | params ratio | size on disk (MB) | WikiText-2 perplexity |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['layers']} | {row['params'] / 1e6:.1f}M | {row['params_ratio']:.3f} | "
            f"{row['size_mb']:.1f} | {row['perplexity']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(0)
    started = time.perf_counter()
    model_path = args.model or smollm2_gguf_path()
    directory, gguf_file = resolve_checkpoint(model_path)
    stride = args.stride or args.context_length
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model {model_path}")

    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    ids = timed("tokenise WikiText-2 test", lambda: tokenizer(wikitext2_test_text(), return_tensors="pt")["input_ids"][0])
    if ids.numel() < args.max_tokens:
        raise SystemExit(f"WikiText-2 test has only {ids.numel()} tokens; lower --max-tokens.")
    eval_ids = ids[: args.max_tokens]
    log(f"evaluation slice: first {eval_ids.numel()} of {ids.numel()} tokens, windows of {args.context_length}, stride {stride}")

    def ppl(model: torch.nn.Module, what: str) -> dict[str, Any]:
        result = timed(
            f"perplexity of {what}",
            lambda: evaluate_perplexity(model, eval_ids, context_length=args.context_length, stride=stride),
        )
        log(f"  {what}: perplexity {result.perplexity:.4f} over {result.num_scored_tokens} scored tokens")
        return result.to_dict()

    # 1. The super-network and its equivalence with plain transformers.
    config = load_config_dict(model_path)
    space = SearchSpace.for_model(config, min_layers=16, max_layers=NUM_LAYERS, intermediate_size=SPACE_WIDTHS, layer_mode="any")
    elastic = timed(
        "load ElasticLlamaForCausalLM from GGUF",
        lambda: ElasticLlamaForCausalLM.from_pretrained(model_path, search_space=space, dtype=torch.float32).eval(),
    )
    plain = timed(
        "load plain LlamaForCausalLM from the same GGUF",
        lambda: LlamaForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=torch.float32).eval(),
    )
    snippet = ids[None, : args.context_length]
    with torch.no_grad():
        max_diff = (elastic(snippet).logits - plain(snippet).logits).abs().max().item()
    equivalent = max_diff <= EQUIVALENCE_TOLERANCE
    log(f"full network vs plain LlamaForCausalLM: max |logit diff| = {max_diff:.3e} on {snippet.shape[1]} tokens "
        f"({'OK' if equivalent else 'FAILED'}, tolerance {EQUIVALENCE_TOLERANCE:g})")
    full_params = num_parameters(plain)
    full_ppl = ppl(plain, "full model (plain LlamaForCausalLM)")
    del plain

    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []

    def add_row(name: str, subnet: SubnetConfig, directory: Path, measured: dict[str, Any], params: int, loaded_as: str) -> None:
        rows.append({
            "name": name,
            "layers": subnet.num_layers,
            "params": params,
            "params_ratio": params / full_params,
            "size_mb": safetensors_mb(directory),
            "tensor_bytes": checkpoint_nbytes(directory),
            "perplexity": measured["perplexity"],
            "evaluation": measured,
            "checkpoint": os.path.relpath(directory, REPO_ROOT),
            "loaded_as": loaded_as,
            "subnet": subnet.to_dict(),
            "subnet_id": subnet.id,
        })

    # 2-3. Extract, save (fp32 and INT8), reload with plain transformers, evaluate.
    full = SubnetConfig.full(elastic.config)
    cases = [("full", "full", full, False), ("(a) mixed", "a-mixed", MIXED, True), ("(b) uniform", "b-uniform", UNIFORM, False)]
    int8_rows = []
    for name, slug, subnet, remote_code in cases:
        log(f"--- {name}: {subnet.num_layers} layers, widths {sorted(set(subnet.intermediate_size))}, id {subnet.id}")
        if subnet == full:
            reference, reference_name = full_ppl, "plain LlamaForCausalLM from the GGUF"
        else:
            space.validate_subnet(subnet)
            with elastic.subnet(subnet):
                reference = ppl(elastic, f"elastic model with {name} active")
            reference_name = "elastic model with the sub-network active"
        sub = timed(f"extract {name}", lambda: elastic.extract_subnetwork(subnet).eval())
        fp32_dir, int8_dir = args.out_dir / f"smollm2-{slug}", args.out_dir / f"smollm2-{slug}-int8"
        timed(f"save {name} fp32 -> {fp32_dir}", lambda: save_subnetwork(sub, fp32_dir, tokenizer=tokenizer))
        timed(f"save {name} INT8 -> {int8_dir}", lambda: save_subnetwork(sub, int8_dir, tokenizer=tokenizer, int8=True))
        del sub
        loaded = timed(
            f"reload {name} fp32 with AutoModelForCausalLM",
            lambda: AutoModelForCausalLM.from_pretrained(fp32_dir, trust_remote_code=remote_code, dtype=torch.float32).eval(),
        )
        params = num_parameters(loaded)
        if params != subnet.num_parameters(elastic.config):
            raise SystemExit(f"{name}: the reloaded model has {params} parameters, SubnetConfig.num_parameters says "
                             f"{subnet.num_parameters(elastic.config)}")
        measured = ppl(loaded, f"{name} reloaded fp32")
        add_row(name, subnet, fp32_dir, measured, params, type(loaded).__name__)
        relative = abs(reference["perplexity"] - measured["perplexity"]) / measured["perplexity"]
        checks.append({"subnet": name, "reference": reference_name, "reference_perplexity": reference["perplexity"],
                       "extracted_perplexity": measured["perplexity"], "relative_difference": relative,
                       "ok": relative <= PERPLEXITY_RTOL})
        log(f"  {reference_name} vs reloaded extraction: perplexity relative difference {relative:.2e} "
            f"({'OK' if relative <= PERPLEXITY_RTOL else 'FAILED'}, tolerance {PERPLEXITY_RTOL:g})")
        del loaded
        quantized = timed(
            f"reload {name} INT8 with AutoModelForCausalLM",
            lambda: AutoModelForCausalLM.from_pretrained(int8_dir, trust_remote_code=remote_code).eval(),
        )
        int8_measured = ppl(quantized, f"{name} reloaded INT8")
        int8_rows.append((f"{name}-int8", subnet, int8_dir, int8_measured, params, type(quantized).__name__))
        del quantized
    for row in int8_rows:
        add_row(*row)

    table = markdown_table(rows)
    ok = equivalent and all(check["ok"] for check in checks)
    results = {
        "description": "SmolLM2-135M-Instruct sub-networks cut from the original weights (no training, first-k MLP "
                       "neurons), saved and reloaded with plain transformers; perplexity on a fixed WikiText-2 slice.",
        "model": os.path.relpath(model_path, REPO_ROOT) if Path(model_path).is_absolute() else str(model_path),
        "dtype": "float32 (GGUF Q4_1 de-quantised); INT8 rows: bitsandbytes LLM.int8() decoder linears, "
                 "embeddings/head float16",
        "search_space": space.to_dict(),
        "evaluation_slice": {
            "text": "WikiText-2 raw test (shared/data/text/wikitext-2-raw/wiki.test.raw)",
            "tokens": int(eval_ids.numel()),
            "first_tokens_of": int(ids.numel()),
            "context_length": args.context_length,
            "stride": stride,
            "scored_tokens": full_ppl["num_scored_tokens"],
        },
        "equivalence": {"max_abs_logit_diff": max_diff, "tokens": int(snippet.shape[1]),
                        "tolerance": EQUIVALENCE_TOLERANCE, "ok": equivalent},
        "reloaded_vs_reference": checks,
        "rows": rows,
        "markdown_table": table,
        "ok": ok,
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "platform": platform.platform()},
        "wall_time_s": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"WikiText-2 test, first {eval_ids.numel()} tokens, windows of {args.context_length} tokens, stride {stride} "
          f"({full_ppl['num_scored_tokens']} scored tokens); full model max |logit diff| vs LlamaForCausalLM {max_diff:.2e}")
    print()
    print(table)
    print()
    log(f"results written to {args.output}; total {results['wall_time_s']:.0f} s; {'all checks passed' if ok else 'CHECKS FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
