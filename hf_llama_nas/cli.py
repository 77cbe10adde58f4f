"""The `llama-nas` command line: inspect a model and its search space, extract a sub-network, push it to the Hub.

    llama-nas info HuggingFaceTB/SmolLM2-135M --search-space space.json
    llama-nas extract ./supernet --subnet subnet.json --output ./smollm2-nas --int8
    llama-nas push ./smollm2-nas me/smollm2-nas --results results.json

Mistakes a user can make (a non-Llama checkpoint, a missing file, a sub-network outside the space) end with one
`error: ...` line naming the fix and exit code 2, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub.errors import HfHubHTTPError
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .errors import LlamaNASError
from .export.hub import TOKENIZER_FILES, load_results, push_checkpoint_to_hub
from .export.save import checkpoint_nbytes, save_subnetwork
from .modeling import ElasticLlamaForCausalLM, load_config_dict, resolve_checkpoint
from .search_space import ModelDims, SearchSpace, SubnetConfig

USAGE_ERROR = 2
#: Modules that add a pipeline stage's sub-command: each defines `add_command(subparsers)`, which adds its parser
#: and sets `func` (a callable of the parsed args returning the exit status), so each stage owns its CLI.
PLUGIN_COMMANDS: tuple[str, ...] = ("hf_llama_nas.evaluation.cli", "hf_llama_nas.search.cli", "hf_llama_nas.reports.cli",
                                     "hf_llama_nas.training.cli")
_DTYPES = ("float32", "bfloat16", "float16")


class CLIError(Exception):
    """A mistake in the command line itself, such as a non-empty output directory."""


def _check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuse to mix a new checkpoint into a folder that holds other files (a previous model, the user's data)."""
    if path.exists() and not path.is_dir():
        raise CLIError(f"--output {str(path)!r} is a file: choose a directory for the checkpoint.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise CLIError(
            f"--output {str(path)!r} is not empty: choose a new directory, or pass --overwrite to write into it "
            "(files of the same name are replaced)."
        )


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _ranges(values: Sequence[int]) -> str:
    """Layer indices as ranges, "0–13, 18–29": a 30-layer sub-network stays readable on one line."""
    spans: list[list[int]] = []
    for value in values:
        if spans and spans[-1][1] == value - 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans)


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive equal values as (value, count) pairs."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    return runs


def _sci(n: int) -> str:
    return f"{n:.2e}"


def model_info(model: str, search_space: str | None = None) -> dict[str, Any]:
    """What `llama-nas info` prints: the architecture, its size, and the search space over it."""
    config = load_config_dict(model)
    dims = ModelDims.from_config(config)
    if search_space is not None:
        space, space_source = SearchSpace.from_json(search_space), search_space
    elif config.get("search_space") is not None:
        space, space_source = SearchSpace.from_dict(config["search_space"]), "stored in the checkpoint"
    else:
        space, space_source = SearchSpace.for_model(dims), "default for this model"
    space.validate(dims)
    full = SubnetConfig.full(dims)
    return {
        "model": model,
        "model_type": config["model_type"],
        "num_hidden_layers": dims.num_hidden_layers,
        "hidden_size": dims.hidden_size,
        "num_attention_heads": dims.num_attention_heads,
        "num_key_value_heads": dims.num_key_value_heads,
        "intermediate_size": config["intermediate_size"],
        "vocab_size": dims.vocab_size,
        "tie_word_embeddings": dims.tie_word_embeddings,
        "num_parameters": full.num_parameters(dims),
        "num_decoder_parameters": full.num_parameters(dims, include_embeddings=False),
        "bytes": {dtype: full.num_bytes(dims, dtype) for dtype in ("float32", "float16", "int8")},
        "search_space": {
            "source": space_source,
            "layer_mode": space.layer_mode,
            "num_layers": list(space.num_layers),
            "intermediate_size": list(space.intermediate_size),
            "num_subnets": space.num_subnets(),
            "num_encodings": space.num_encodings(),
        },
    }


def _print_info(info: dict[str, Any]) -> None:
    space = info["search_space"]
    width = info["intermediate_size"]
    tied = " (tied input/output embeddings)" if info["tie_word_embeddings"] else ""
    rows = [
        ("model type", info["model_type"]),
        ("layers", info["num_hidden_layers"]),
        ("hidden size", info["hidden_size"]),
        ("attention heads", f"{info['num_attention_heads']} (key/value heads: {info['num_key_value_heads']})"),
        ("MLP width", ", ".join(map(str, width)) if isinstance(width, list) else width),
        ("vocabulary", f"{info['vocab_size']}{tied}"),
        ("parameters", f"{info['num_parameters']:,} total, {info['num_decoder_parameters']:,} non-embedding"),
        ("size", ", ".join(f"{dtype} {_human_bytes(n)}" for dtype, n in info["bytes"].items())),
    ]
    space_rows = [
        ("layer mode", space["layer_mode"]),
        ("depth choices", ", ".join(map(str, space["num_layers"]))),
        ("MLP width choices", ", ".join(map(str, space["intermediate_size"]))),
        ("sub-networks", f"{space['num_subnets']:,} ({_sci(space['num_subnets'])})"),
        ("gene encodings", f"{space['num_encodings']:,} ({_sci(space['num_encodings'])})"),
    ]
    print(f"Model {info['model']}")
    for name, value in rows:
        print(f"  {name:<20} {value}")
    print(f"Search space ({space['source']})")
    for name, value in space_rows:
        print(f"  {name:<20} {value}")


def cmd_info(args: argparse.Namespace) -> int:
    info = model_info(args.model, args.search_space)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return 0


def _load_tokenizer(path: str, gguf_file: str | None) -> PreTrainedTokenizerBase | None:
    """The checkpoint's tokenizer, or `None` (with a warning) when it has none: the model alone is still useful."""
    has_files = any(os.path.isfile(os.path.join(path, name)) for name in TOKENIZER_FILES)
    if gguf_file is None and os.path.isdir(path) and not has_files:
        print(f"warning: {path} holds no tokenizer; the checkpoint is saved without one.", file=sys.stderr)
        return None
    try:
        return AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
    except (OSError, ValueError) as err:
        print(f"warning: could not load the tokenizer of {path} ({err}); saving without one.", file=sys.stderr)
        return None


def cmd_extract(args: argparse.Namespace) -> int:
    output = Path(args.output).expanduser()
    _check_output_dir(output, args.overwrite)
    subnet = SubnetConfig.from_json(args.subnet)
    space = SearchSpace.from_json(args.search_space) if args.search_space else None
    path, gguf_file = resolve_checkpoint(args.model)
    load_kwargs: dict[str, Any] = {"search_space": space}
    if args.dtype:
        load_kwargs["dtype"] = args.dtype
    model = ElasticLlamaForCausalLM.from_pretrained(args.model, **load_kwargs).eval()
    sub = model.extract_subnetwork(subnet, check_space=space is not None)
    parent_parameters = SubnetConfig.full(model.config).num_parameters(model.config)
    provenance = dict(sub.config.hf_llama_nas)
    provenance.setdefault("parent_num_parameters", parent_parameters)
    provenance.setdefault("parent_num_layers", model.config.num_hidden_layers)
    sub.config.hf_llama_nas = provenance
    tokenizer = _load_tokenizer(path, gguf_file)
    save_subnetwork(sub, output, tokenizer=tokenizer, int8=args.int8)

    num_parameters = sum(p.numel() for p in sub.parameters())
    runs = _runs(subnet.intermediate_size)
    width_text = ", ".join(f"{width} ×{count}" if len(runs) > 1 else str(width) for width, count in runs)
    print(f"Saved {type(sub).__name__}{' (INT8)' if args.int8 else ''} to {output}")
    layers_text = _ranges(subnet.layers)
    ratio = num_parameters / parent_parameters
    print(f"  layers      {subnet.num_layers} of {model.config.num_hidden_layers}: {layers_text}")
    print(f"  MLP width   {width_text}")
    print(f"  parameters  {num_parameters:,} ({ratio:.1%} of the parent's {parent_parameters:,})")
    print(f"  weights     {_human_bytes(checkpoint_nbytes(output))} on disk")
    loader = "AutoModelForCausalLM.from_pretrained(" + repr(str(output))
    loader += ", trust_remote_code=True)" if sub.config.model_type == "llama_nas" else ")"
    print(f"  load with   {loader}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    results = load_results(args.results) if args.results else None
    url = push_checkpoint_to_hub(
        args.folder,
        args.repo_id,
        results=results,
        private=args.private,
        token=args.token,
        commit_message=args.commit_message,
    )
    print(f"Pushed {args.folder} to {args.repo_id}: {url}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llama-nas",
        description="Neural architecture search for Llama models: inspect, extract and share sub-networks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser(
        "info",
        help="Show a model's architecture, size and search space (reads only the config).",
        description="Show a model's architecture, size and search space. Only the config is read.",
    )
    info.add_argument("model", metavar="MODEL", help="Hub id, local checkpoint directory or .gguf file.")
    info.add_argument(
        "--search-space",
        metavar="SPACE.json",
        help="Search space JSON file or string (default: the one stored in an elastic checkpoint, "
        "else the model's default space).",
    )
    info.add_argument("--json", action="store_true", help="Print the information as JSON.")
    info.set_defaults(func=cmd_info)

    extract = commands.add_parser(
        "extract",
        help="Cut a sub-network out of a model and save it as a standalone checkpoint.",
        description="Cut a sub-network out of a model and save it as a checkpoint that plain transformers loads.",
    )
    extract.add_argument("model", metavar="MODEL", help="Hub id, local checkpoint directory or .gguf file.")
    extract.add_argument(
        "--subnet",
        metavar="SUBNET.json",
        required=True,
        help='Sub-network JSON file or string: {"layers": [...], "intermediate_size": [...]}.',
    )
    extract.add_argument("--output", metavar="DIR", required=True, help="Directory to save the checkpoint in.")
    extract.add_argument("--int8", action="store_true", help="Store the decoder linear layers in INT8 (bitsandbytes).")
    extract.add_argument(
        "--search-space", metavar="SPACE.json", help="Search space JSON file or string; the sub-network must lie in it."
    )
    extract.add_argument("--dtype", choices=_DTYPES, help="Precision to load and save in (default: the checkpoint's).")
    extract.add_argument("--overwrite", action="store_true", help="Write into a non-empty output directory.")
    extract.set_defaults(func=cmd_extract)

    push = commands.add_parser(
        "push",
        help="Upload an extracted checkpoint to the Hugging Face Hub with a model card.",
        description="Upload an extracted checkpoint to the Hub, with a model card recording its parent, "
        "architecture, size and measured results.",
    )
    push.add_argument("folder", metavar="DIR", help="Output directory of `llama-nas extract`.")
    push.add_argument("repo_id", metavar="REPO_ID", help="Hub repository, e.g. me/smollm2-nas (created if needed).")
    push.add_argument("--private", action="store_true", help="Create the repository as private.")
    push.add_argument(
        "--results",
        metavar="RESULTS.json",
        help='Measured results for the card: a list of {"task", "metric", "value", ...} or an lm-eval results file.',
    )
    push.add_argument("--token", help="Hub token (default: the one saved by `hf auth login`).")
    push.add_argument("--commit-message", help="Message of the commit on the Hub.")
    push.set_defaults(func=cmd_push)

    for module_name in PLUGIN_COMMANDS:
        importlib.import_module(module_name).add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `llama-nas`; returns the exit status (0 success, 2 a mistake in the input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return args.func(args)
    except (LlamaNASError, CLIError) as err:
        message = str(err)
    except HfHubHTTPError as err:
        message = (
            f"the Hub refused the request ({str(err).splitlines()[0]}): check the repo id, and log in with "
            "`hf auth login` or pass --token."
        )
    except OSError as err:
        message = f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"error: {message}", file=sys.stderr)
    return USAGE_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
