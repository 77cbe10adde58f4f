"""`llama-nas search`: find the Pareto-optimal sub-networks of a model.

    llama-nas search ./supernet --tasks arc_easy --objectives accuracy,params --num-evals 250 \\
        --population 50 --output runs/arc --limit 500
    llama-nas search ./supernet ... --output runs/arc --resume      # continue a killed search

Objectives are named (`params`, `decoder_params`, `bytes_fp16`, `bytes_int8`, `macs`, `accuracy`,
`perplexity`, `latency`, `throughput`, `peak_memory`); `--constraint params<=1e8` bounds one.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

from .objectives import OBJECTIVE_FACTORIES, ObjectiveError
from .results import Evaluation

__all__ = ["add_command", "cmd_search", "parse_constraints", "format_table"]

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


def parse_constraints(items: list[str] | None) -> dict[str, tuple[str, float]]:
    """`["params<=1e8", "accuracy>=0.5"]` as `{"params": ("<=", 1e8), ...}`."""
    constraints = {}
    for item in items or []:
        match = _CONSTRAINT.match(item)
        if not match:
            raise ObjectiveError(f"Cannot read the constraint {item!r}: write NAME<=VALUE or NAME>=VALUE, e.g. params<=1e8.")
        constraints[match.group(1)] = (match.group(2), float(match.group(3)))
    return constraints


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    if abs(value) >= 1e5:
        return f"{value / 1e6:.2f}M"
    return f"{value:.4g}"


def format_table(evaluations: list[Evaluation], names: list[str], reference: Evaluation | None = None) -> str:
    """A plain-text table of sub-networks (id, depth, objective values), the full model first if given."""
    header = ["sub-network", "layers", *names]
    rows = []
    if reference is not None:
        rows.append(["full model", str(reference.subnet.num_layers), *(_fmt(reference.values[n]) for n in names)])
    for evaluation in evaluations:
        rows.append([evaluation.id, str(evaluation.subnet.num_layers), *(_fmt(evaluation.values[n]) for n in names)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _build_objectives(args: argparse.Namespace, model: Any, tokenizer: Any) -> list[Any]:
    from .objectives import get_objective

    names = [n.strip() for n in args.objectives.split(",") if n.strip()]
    unknown = [n for n in names if n not in OBJECTIVE_FACTORIES]
    if unknown:
        raise ObjectiveError(f"Unknown objective(s) {unknown}: choose from {sorted(OBJECTIVE_FACTORIES)}.")
    constraints = parse_constraints(args.constraint)
    for name in constraints:
        if name not in names:
            raise ObjectiveError(f"--constraint names {name!r}, which is not among --objectives {names}: add it there.")
    objectives = []
    for name in names:
        options: dict[str, Any] = {}
        if name == "accuracy":
            tasks = [t.strip() for t in (args.tasks or "").split(",") if t.strip()]
            if not tasks:
                raise ObjectiveError("The accuracy objective needs --tasks, e.g. --tasks arc_easy.")
            options = {"tasks": tasks, "limit": args.limit, "num_fewshot": args.num_fewshot, "metric": args.metric,
                       "tokenizer": tokenizer}
        elif name == "perplexity":
            options = {"token_ids": _perplexity_ids(args, tokenizer), "context_length": args.seq_len}
        elif name in ("latency", "throughput"):
            options = {"batch_size": args.batch, "sequence_length": args.seq_len}
        elif name == "peak_memory":
            options = {"batch_size": args.batch, "sequence_length": args.seq_len}
        objective = get_objective(name, **options)
        if name in constraints:
            op, bound = constraints[name]
            expected = "<=" if objective.direction == "minimize" else ">="
            if op != expected:
                raise ObjectiveError(f"{name} is {objective.direction}d, so its constraint must be {name}{expected}VALUE.")
            objective = objective.with_constraint(bound)
        objectives.append(objective)
    return objectives


def _perplexity_ids(args: argparse.Namespace, tokenizer: Any) -> list[int]:
    if tokenizer is None:
        raise ObjectiveError("The perplexity objective needs the model's tokenizer, and none was found.")
    if args.text:
        text = Path(args.text).read_text(encoding="utf-8")
    else:
        from ..data import wikitext2_test_text

        text = wikitext2_test_text()
    ids = tokenizer(text[: 40 * args.perplexity_tokens], return_tensors=None)["input_ids"][: args.perplexity_tokens]
    return list(ids)


def cmd_search(args: argparse.Namespace) -> int:
    import torch
    from transformers import AutoTokenizer

    from ..modeling import ElasticLlamaForCausalLM, resolve_checkpoint
    from ..search_space import SearchSpace
    from .linas import get_algorithm

    algorithm_cls = get_algorithm(args.algorithm)
    space = SearchSpace.from_json(args.search_space) if args.search_space else None
    load_kwargs: dict[str, Any] = {"search_space": space}
    if args.dtype:
        load_kwargs["dtype"] = getattr(torch, args.dtype)
    model = ElasticLlamaForCausalLM.from_pretrained(args.model, **load_kwargs).eval()
    if args.device:
        model.to(args.device)
    path, gguf_file = resolve_checkpoint(args.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
    except (OSError, ValueError):
        tokenizer = None
    objectives = _build_objectives(args, model, tokenizer)
    output = Path(args.output)
    algorithm = algorithm_cls(model.search_space, objectives, num_evals=args.num_evals, population=args.population,
                              batch_size=args.batch_size, seed=args.seed)
    result = algorithm.run(model, output_dir=output, resume=args.resume, evaluate_full=not args.no_full)
    names = [o.name for o in objectives]
    front = result.pareto()
    hv = result.hypervolume()
    print()
    print(f"{len(result.store)} evaluations ({result.new_evaluations} in this run, "
          f"{sum(not e.ok for e in result.store)} failed); Pareto set of {len(front)}; "
          f"normalised hypervolume {hv['hypervolume']:.4f}")
    print(format_table(front, names, result.store.reference))
    print(f"\nResults: {output / 'results.jsonl'}, {output / 'pareto.json'}; plots: llama-nas report {output}")
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="Search the Pareto-optimal sub-networks (LINAS, NSGA-II or random search).",
        description="Multi-objective search of a model's sub-networks. Every evaluation is appended to "
        "DIR/results.jsonl as it finishes; --resume continues a killed search without repeating any.",
    )
    parser.add_argument("model", metavar="MODEL", help="Hub id, local checkpoint directory or .gguf file.")
    parser.add_argument("--objectives", default="accuracy,params",
                        help=f"Comma-separated objectives (default accuracy,params); any of {', '.join(OBJECTIVE_FACTORIES)}.")
    parser.add_argument("--tasks", help="lm-eval tasks for the accuracy objective, comma-separated (mean over them).")
    parser.add_argument("--limit", type=int, help="Items per task (the first N: a fixed subset).")
    parser.add_argument("--num-fewshot", type=int, help="Few-shot examples (default: each task's own).")
    parser.add_argument("--metric", default="acc", help="Task metric to maximise (acc or acc_norm; default acc).")
    parser.add_argument("--constraint", action="append", metavar="NAME<=VALUE",
                        help="Bound an objective, e.g. params<=1e8 (repeatable).")
    parser.add_argument("--num-evals", type=int, default=250, help="Real evaluations to spend (default 250).")
    parser.add_argument("--population", type=int, default=50, help="Initial random population (default 50).")
    parser.add_argument("--batch-size", type=int, help="Real evaluations per round (default population/2).")
    parser.add_argument("--algorithm", default="linas", choices=["linas", "nsga2", "random"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, metavar="DIR", help="Directory for results.jsonl and pareto.json.")
    parser.add_argument("--resume", action="store_true", help="Continue the search in DIR (same space, model, objectives).")
    parser.add_argument("--search-space", metavar="SPACE.json", help="Search space JSON (default: the model's).")
    parser.add_argument("--text", metavar="FILE", help="Text for the perplexity objective (default: WikiText-2 test).")
    parser.add_argument("--perplexity-tokens", type=int, default=256, help="Tokens of that text to score (default 256).")
    parser.add_argument("--batch", type=int, default=1, help="Batch size of latency/throughput/memory timing.")
    parser.add_argument("--seq-len", type=int, default=128, help="Sequence length of timing and perplexity windows.")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="Load the model in this precision.")
    parser.add_argument("--device", help="Device to evaluate on (e.g. cuda:0; default: where it loads).")
    parser.add_argument("--no-full", action="store_true", help="Do not measure the full model as a reference point.")
    parser.set_defaults(func=cmd_search)
