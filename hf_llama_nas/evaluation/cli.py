"""`llama-nas evaluate`: lm-eval accuracy of a model or one of its sub-networks, on the offline task pack or any task.

    llama-nas evaluate model.gguf --tasks arc_easy mmlu --subnet subnet.json --limit 200 --output scores.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..modeling import ElasticLlamaForCausalLM
    from ..search_space import SubnetConfig
    from .harness import evaluate
    from .lm_eval_model import load_tokenizer

    subnet = SubnetConfig.from_json(args.subnet) if args.subnet else None
    model = ElasticLlamaForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype)).eval()
    tokenizer = load_tokenizer(args.tokenizer or args.model)
    scores = evaluate(
        model,
        subnet,
        args.tasks,
        limit=args.limit,
        num_fewshot=args.num_fewshot,
        tokenizer=tokenizer,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        check_space=False,
    )
    report: dict[str, Any] = {
        "model": args.model,
        "subnet": subnet.to_dict() if subnet else None,
        "limit": args.limit,
        "num_fewshot": args.num_fewshot,
        "results": scores,
    }
    name_width = max(len(name) for name in scores)
    for name, metrics in scores.items():
        shown = "  ".join(f"{key} {value:.4f}" for key, value in metrics.items() if key in ("acc", "acc_norm"))
        print(f"{name:<{name_width}}  {shown}  (n={metrics.get('num_samples', '-')})")
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
        print(f"Wrote {args.output}")
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Add `llama-nas evaluate` to the CLI (see `hf_llama_nas.cli.PLUGIN_COMMANDS`)."""
    parser = subparsers.add_parser(
        "evaluate",
        help="Accuracy of a model or sub-network on lm-eval tasks (offline task pack included).",
        description="Evaluate a model, or a sub-network of it, on lm-eval tasks. The offline pack provides "
        "arc_easy, arc_challenge, piqa, winogrande, boolq, mmlu (5-shot), truthfulqa_mc1/mc2 and hellaswag_subset.",
    )
    parser.add_argument("model", metavar="MODEL", help="Checkpoint directory, .gguf file or Hub id.")
    parser.add_argument("--tasks", nargs="+", required=True, metavar="TASK", help="lm-eval task or group names.")
    parser.add_argument("--subnet", metavar="SUBNET.json", help="Sub-network JSON file or string (default: full).")
    parser.add_argument("--limit", type=int, help="Evaluate only the first N documents of each task.")
    parser.add_argument("--num-fewshot", type=int, help="Few-shot examples (default: each task's own).")
    parser.add_argument("--batch-size", type=int, default=16, help="Requests per forward pass (default 16).")
    parser.add_argument("--data-dir", help="Folder holding eval/ (default: the shared data folder).")
    parser.add_argument("--tokenizer", help="Where the tokenizer is stored (default: MODEL).")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument("--output", metavar="FILE", help="Write the scores as JSON.")
    parser.set_defaults(func=cmd_evaluate)


__all__ = ["add_command", "cmd_evaluate"]
