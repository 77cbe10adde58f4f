"""Training text -> fixed-length chunks of token ids with labels, as `datasets.Dataset`s for the Trainer.

Causal-LM fine-tuning needs `labels` (a copy of `input_ids`; the model shifts them) and sequences no longer than
the model's context. `chunk_token_ids` cuts one token stream into non-overlapping blocks, so every token of the
text is trained on once per epoch and no padding is wasted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from .errors import InstaTuneError

def chunk_token_ids(ids: torch.Tensor | list[int], block_size: int, max_blocks: int | None = None) -> Dataset:
    """Non-overlapping blocks of `block_size` tokens (the incomplete tail is dropped), each with `labels`."""
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if block_size < 2:
        raise InstaTuneError(f"block_size must be at least 2 tokens (got {block_size}).")
    count = ids.numel() // block_size
    if max_blocks is not None:
        count = min(count, max_blocks)
    if count == 0:
        raise InstaTuneError(
            f"The text has {ids.numel()} tokens, fewer than one block of {block_size}: use more text or a smaller block size."
        )
    blocks = ids[: count * block_size].view(count, block_size).tolist()
    return Dataset.from_dict({"input_ids": blocks, "attention_mask": [[1] * block_size] * count, "labels": blocks})


def read_text(source: str | os.PathLike) -> str:
    """The text of a plain-text file, or the `text` fields of a JSON-lines / JSON list file, joined by newlines."""
    path = Path(source)
    if not path.is_file():
        raise InstaTuneError(f"Training text file {str(path)!r} does not exist: pass an existing file.")
    if path.suffix in (".jsonl", ".json"):
        raw = path.read_text(encoding="utf-8")
        records: list[Any] = (
            json.loads(raw) if path.suffix == ".json" else [json.loads(line) for line in raw.splitlines() if line.strip()]
        )
        if not isinstance(records, list) or not all(isinstance(r, dict) and "text" in r for r in records):
            raise InstaTuneError(f"{str(path)!r}: every record must be an object with a 'text' field.")
        return "\n".join(str(r["text"]) for r in records)
    return path.read_text(encoding="utf-8")


def load_training_data(source: str | os.PathLike, tokenizer: Any, block_size: int,
                       max_blocks: int | None = None) -> Dataset:
    """Training chunks from a text/JSONL file, or a dataset folder saved with `Dataset.save_to_disk`.

    A saved dataset is used as is if it already has `input_ids` (the Trainer checks for `labels`), otherwise its
    `text` column is tokenised and chunked like a file.
    """
    path = Path(source)
    if path.is_dir():
        from datasets import load_from_disk

        dataset = load_from_disk(str(path))
        if "input_ids" in dataset.column_names:
            return dataset if max_blocks is None else dataset.select(range(min(max_blocks, len(dataset))))
        if "text" not in dataset.column_names:
            raise InstaTuneError(
                f"The dataset at {str(path)!r} has neither 'input_ids' nor 'text' columns ({dataset.column_names})."
            )
        text = "\n".join(dataset["text"])
    else:
        text = read_text(path)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    return chunk_token_ids(ids, block_size, max_blocks=max_blocks)


__all__ = ["chunk_token_ids", "read_text", "load_training_data"]
