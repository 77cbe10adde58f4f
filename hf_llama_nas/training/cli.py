"""`llama-nas finetune`: InstaTune from the shell, with the Trainer's own progress bar and logs.

    llama-nas finetune ./smollm2 --data train.txt --strategy alternate --output ./smollm2-instatune \\
        --steps 200 --batch-size 1 --block-size 256 --learning-rate 3e-5 [--lora] [--search-space space.json]

The model is loaded as an elastic super-network, its MLP neurons and layers are importance-ordered on the first
`--calibration-blocks` blocks of the training data (unless 0), trained, and saved to `--output` (with `--lora`
the adapters are merged first, so the output is always a full elastic checkpoint that `extract` and `search` read).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ..modeling import ElasticLlamaForCausalLM, resolve_checkpoint
from ..search_space import SearchSpace
from .errors import InstaTuneError
from .strategies import STRATEGIES


def _training_data(source: str, tokenizer: Any, block_size: int) -> Any:
    """A local file or saved dataset folder; otherwise a `datasets` name (train split, `text` column)."""
    from .data import chunk_token_ids, load_training_data

    if Path(source).exists():
        return load_training_data(source, tokenizer, block_size)
    from datasets import load_dataset

    try:
        dataset = load_dataset(source, split="train")
    except Exception as err:  # noqa: BLE001 - datasets raises many types for a missing/offline dataset
        raise InstaTuneError(
            f"--data {source!r} is neither an existing file/folder nor a loadable dataset ({type(err).__name__}: "
            f"{err}). Pass a text/JSONL file, a folder saved with Dataset.save_to_disk, or a dataset name."
        ) from None
    if "text" not in dataset.column_names:
        raise InstaTuneError(f"Dataset {source!r} has no 'text' column (columns: {dataset.column_names}).")
    ids = tokenizer("\n".join(dataset["text"]), return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    return chunk_token_ids(ids, block_size)


def cmd_finetune(args: argparse.Namespace) -> int:
    """Heavy imports (peft, datasets) happen here, not when the CLI is built for another sub-command."""
    from transformers import AutoTokenizer

    from .arguments import InstaTuneArguments
    from .importance import apply_importance_ordering_
    from .lora import get_elastic_peft_model
    from .trainer import InstaTuneTrainer

    output = Path(args.output)
    if output.is_dir() and any(output.iterdir()) and not (args.resume or args.overwrite):
        raise InstaTuneError(
            f"--output {str(output)!r} is not empty: choose a new directory, --resume a run saved there, or --overwrite."
        )
    path, gguf_file = resolve_checkpoint(args.model)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or path, gguf_file=None if args.tokenizer else gguf_file)
    model = ElasticLlamaForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    if args.search_space:
        model.search_space = SearchSpace.from_json(args.search_space)
    data = _training_data(args.data, tokenizer, args.block_size)
    if args.calibration_blocks > 0 and not args.resume:
        calibration = torch.tensor(data[: args.calibration_blocks]["input_ids"])
        apply_importance_ordering_(model, calibration)
        print(f"importance ordering on {calibration.numel()} tokens; layer drop order "
              f"{model.config.nas_layer_drop_order}")
    train_model: torch.nn.Module = model
    if args.lora:
        train_model = get_elastic_peft_model(model, r=args.lora_rank, lora_alpha=2 * args.lora_rank, lora_dropout=0.0)
    training_args = InstaTuneArguments(
        output_dir=str(output), nas_strategy=args.strategy, max_steps=args.steps,
        per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_steps, logging_steps=args.logging_steps,
        save_steps=args.save_steps, save_strategy="steps" if args.save_steps else "no", nas_seed=args.seed,
        seed=args.seed, bf16=args.bf16, gradient_checkpointing=args.gradient_checkpointing, report_to=[],
        use_cpu=args.cpu,
    )
    trainer = InstaTuneTrainer(model=train_model, args=training_args, train_dataset=data, processing_class=tokenizer)
    trainer.train(resume_from_checkpoint=True if args.resume else None)
    final = train_model.merge_and_unload() if args.lora else model
    final.set_subnet(None)
    final.save_pretrained(output)
    tokenizer.save_pretrained(output)
    print(f"Saved the fine-tuned super-network to {output}")
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Add `llama-nas finetune` to the CLI (see `hf_llama_nas.cli.PLUGIN_COMMANDS`)."""
    parser = subparsers.add_parser(
        "finetune",
        help="InstaTune: fine-tune the elastic super-network so that its sub-networks stay good.",
        description="Fine-tune MODEL as an elastic super-network with InstaTuneTrainer (alternate, joint or sandwich).",
    )
    parser.add_argument("model", metavar="MODEL", help="Checkpoint directory, .gguf file or Hub id.")
    parser.add_argument("--data", required=True, metavar="FILE_OR_DATASET",
                        help="Training text: .txt/.jsonl file, a saved dataset folder, or a dataset name.")
    parser.add_argument("--strategy", choices=STRATEGIES, default="alternate", help="Sub-network training strategy.")
    parser.add_argument("--output", required=True, metavar="DIR", help="Where checkpoints and the final model go.")
    parser.add_argument("--search-space", metavar="SPACE.json", help="Search space (default: the model's own).")
    parser.add_argument("--steps", type=int, default=200, help="Optimizer steps (default 200).")
    parser.add_argument("--batch-size", type=int, default=1, help="Sequences per device and micro-batch (default 1).")
    parser.add_argument("--grad-accum", type=int, default=1, help="Gradient accumulation steps (default 1).")
    parser.add_argument("--block-size", type=int, default=256, help="Tokens per training sequence (default 256).")
    parser.add_argument("--learning-rate", type=float, default=3e-5, help="Peak learning rate (default 3e-5).")
    parser.add_argument("--warmup-steps", type=int, default=5, help="Linear warm-up steps (default 5).")
    parser.add_argument("--logging-steps", type=int, default=10, help="Log every N steps (default 10).")
    parser.add_argument("--save-steps", type=int, default=0, help="Checkpoint every N steps (default 0: only at the end).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data order and sub-network sequence.")
    parser.add_argument("--calibration-blocks", type=int, default=8,
                        help="Blocks of training data for importance ordering before training (0: skip).")
    parser.add_argument("--lora", action="store_true", help="Train LoRA adapters (merged into the saved model).")
    parser.add_argument("--lora-rank", type=int, default=16, help="LoRA rank (default 16).")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision.")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="Recompute activations in backward.")
    parser.add_argument("--cpu", action="store_true", help="Train on CPU even if an accelerator is present.")
    parser.add_argument("--tokenizer", help="Where the tokenizer is stored (default: MODEL).")
    parser.add_argument("--resume", action="store_true", help="Resume from the last checkpoint in --output.")
    parser.add_argument("--overwrite", action="store_true", help="Write into a non-empty --output.")
    parser.set_defaults(func=cmd_finetune)


__all__ = ["add_command", "cmd_finetune"]
