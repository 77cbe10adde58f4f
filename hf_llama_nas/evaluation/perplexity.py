"""Perplexity of any causal LM on a text, with the sliding window of the Hugging Face perplexity guide.

The token stream (at most `max_tokens` tokens from the start of the text: a fixed, reproducible slice)
is cut into windows of `context_length` tokens whose starts advance by `stride`. In every window only
the tokens that the previous window did not end with are scored, each conditioned on the rest of its
window, so each token is scored at most once and (for `stride < context_length`) with at least
`context_length - stride` tokens of context.

Which tokens are scored, for `N` tokens:

* `stride < context_length`: every token but the very first, i.e. `N - 1` tokens;
* `stride == context_length` (disjoint windows): every token but the first of each window, i.e.
  `N - ceil(N / context_length)` tokens (a token with no context in its window cannot be predicted).

The perplexity is `exp(sum of token NLLs / number of scored tokens)`, summed exactly per token (the guide's
per-window mean weighted by window length is an approximation of this). It works on any model whose
forward returns `.logits` of shape `(batch, length, vocab)`: the elastic model with whatever sub-network
is active, an extracted `LlamaForCausalLM`/`LlamaNASForCausalLM`, or a bitsandbytes INT8 model.

The text is a string, a text file (a `pathlib.Path`), or the rows of a dataset (any iterable of strings, e.g.
`dataset["text"]`), which are joined with newlines.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..errors import LlamaNASError


@dataclass(frozen=True)
class PerplexityResult:
    """A perplexity with what it was computed on, so that reported numbers say which slice they measure."""

    perplexity: float
    mean_nll: float
    num_scored_tokens: int
    num_tokens: int
    context_length: int
    stride: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sliding_windows(num_tokens: int, context_length: int, stride: int) -> list[tuple[int, int, int]]:
    """The windows `(begin, end, num_new)` of the guide: `num_new` trailing tokens of `[begin, end)` are new."""
    if context_length < 2:
        raise LlamaNASError(f"context_length must be at least 2 (got {context_length}): a token needs context.")
    if not 0 < stride <= context_length:
        raise LlamaNASError(f"stride must be in 1..context_length={context_length} (got {stride}).")
    windows = []
    previous_end = 0
    for begin in range(0, num_tokens, stride):
        end = min(begin + context_length, num_tokens)
        windows.append((begin, end, end - previous_end))
        previous_end = end
        if end == num_tokens:
            break
    return windows


TextSource = str | os.PathLike | Iterable[str]


def read_text(text: TextSource) -> str:
    """The text to score from a string, a text file (`os.PathLike`), or an iterable of rows (joined with newlines)."""
    if isinstance(text, str):
        return text
    if isinstance(text, os.PathLike):
        path = os.fspath(text)
        if not os.path.isfile(path):
            raise LlamaNASError(f"Text file {path!r} does not exist: check the path.")
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    rows = list(text)
    if not all(isinstance(row, str) for row in rows):
        raise LlamaNASError("Perplexity text rows must be strings: pass e.g. dataset['text'].")
    return "\n".join(rows)


def _token_ids(tokenizer_or_ids: Any, text: TextSource | None) -> torch.Tensor:
    """A 1-D LongTensor of token ids from either a tokenizer plus text, or ids given directly."""
    if isinstance(tokenizer_or_ids, torch.Tensor):
        ids = tokenizer_or_ids
    elif isinstance(tokenizer_or_ids, Sequence) and not isinstance(tokenizer_or_ids, str):
        ids = torch.as_tensor(tokenizer_or_ids)
    else:
        if text is None:
            raise LlamaNASError("perplexity(model, tokenizer, text): pass the text to score, or token ids instead of a tokenizer.")
        ids = tokenizer_or_ids(read_text(text), return_tensors="pt")["input_ids"]
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1:
        raise LlamaNASError(f"Expected one token sequence (shape (N,) or (1, N)), got shape {tuple(ids.shape)}.")
    return ids.long()


def _model_device(model: nn.Module) -> torch.device:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device) and device.type != "meta":
        return device
    return next(model.parameters()).device


@torch.no_grad()
def evaluate_perplexity(
    model: nn.Module,
    tokenizer_or_ids: Any,
    text: TextSource | None = None,
    *,
    max_tokens: int | None = None,
    context_length: int = 256,
    stride: int | None = None,
    batch_size: int = 1,
    progress: bool = True,
) -> PerplexityResult:
    """Perplexity of `model` on `text` (tokenised by the tokenizer) or on token ids, with its token counts.

    `max_tokens` keeps the first `max_tokens` tokens (`None`: all); `stride=None` means `stride =
    context_length` (disjoint windows). Windows of equal length are run
    `batch_size` at a time. The model is put in eval mode for the call and restored afterwards.
    """
    ids = _token_ids(tokenizer_or_ids, text)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if ids.numel() < 2:
        raise LlamaNASError(f"Perplexity needs at least 2 tokens, got {ids.numel()}: pass a longer text or larger max_tokens.")
    if batch_size < 1:
        raise LlamaNASError(f"batch_size must be at least 1 (got {batch_size}).")
    stride = context_length if stride is None else stride
    windows = sliding_windows(ids.numel(), context_length, stride)
    batches: list[list[tuple[int, int, int]]] = []
    for window in windows:
        last = batches[-1] if batches else None
        if last and len(last) < batch_size and last[0][1] - last[0][0] == window[1] - window[0]:
            last.append(window)
        else:
            batches.append([window])

    device = _model_device(model)
    was_training = model.training
    model.eval()
    total_nll = torch.zeros((), dtype=torch.float64)
    scored = 0
    try:
        with tqdm(total=len(windows), desc="perplexity", unit="window", disable=not progress, leave=False) as bar:
            for batch in batches:
                input_ids = torch.stack([ids[begin:end] for begin, end, _ in batch]).to(device)
                logits = model(input_ids=input_ids, use_cache=False).logits
                length = input_ids.shape[1]
                for row, (_, _, num_new) in enumerate(batch):
                    first_target = max(length - num_new, 1)
                    predictions = logits[row, first_target - 1 : length - 1].float()
                    targets = input_ids[row, first_target:length]
                    total_nll += F.cross_entropy(predictions, targets, reduction="sum").double().cpu()
                    scored += targets.numel()
                bar.update(len(batch))
    finally:
        model.train(was_training)
    mean_nll = (total_nll / scored).item()
    return PerplexityResult(
        perplexity=math.exp(mean_nll),
        mean_nll=mean_nll,
        num_scored_tokens=scored,
        num_tokens=ids.numel(),
        context_length=context_length,
        stride=stride,
    )


def perplexity(
    model: nn.Module,
    tokenizer_or_ids: Any,
    text: TextSource | None = None,
    *,
    max_tokens: int | None = None,
    context_length: int = 256,
    stride: int | None = None,
    batch_size: int = 1,
    progress: bool = True,
) -> float:
    """Perplexity of `model` on `text` or token ids (see the module docstring); `evaluate_perplexity` also gives counts.

    Example: `perplexity(model, tokenizer, text, max_tokens=2048, context_length=256, stride=256)`.
    """
    return evaluate_perplexity(
        model,
        tokenizer_or_ids,
        text,
        max_tokens=max_tokens,
        context_length=context_length,
        stride=stride,
        batch_size=batch_size,
        progress=progress,
    ).perplexity


__all__ = ["PerplexityResult", "evaluate_perplexity", "perplexity", "read_text", "sliding_windows"]
