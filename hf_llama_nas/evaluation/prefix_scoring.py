"""Prefix-shared log-likelihood scoring: every shared token prefix is computed once, in one packed forward pass.

lm-eval's HF model scores each `(context, continuation)` request from scratch: the question of a four-choice item
goes through the network four times. Here the requests of a batch are inserted into a token trie (a prefix tree)
and the trie is run as one sequence: each node attends only to itself and its ancestors (a tree-shaped attention
mask) and gets the position id of its depth, so every node sees exactly the tokens and positions it would see in
its own request's sequence. A shared question, a shared few-shot prompt or the text before WinoGrande's blank is
then computed once, the last token of a continuation is never fed (only predicted), and the LM head runs only on
the positions whose next token is scored.

A request is taken exactly as lm-eval's `HFLM._loglikelihood_tokens` takes it: the input is
`(context + continuation)[-(max_length + 1):][:-1]` (left truncation at the context limit) and the last
`len(continuation)` positions of that input predict the continuation tokens. The result per request is
`(sum of the continuation's log-probabilities, whether each continuation token is the argmax)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: A request as lm-eval passes it to `_loglikelihood_tokens`: `(cache key, context tokens, continuation tokens)`.
TokenRequest = tuple[object, Sequence[int], Sequence[int]]


@dataclass
class PackedRow:
    """Requests packed as one token trie: node `j` holds `tokens[j]`, at position `depths[j]`, under `parents[j]`.

    `request_nodes[k]` are the nodes whose outputs predict the continuation of `request_ids[k]`, and
    `request_targets[k]` the continuation tokens they predict.
    """

    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    request_ids: list[int] = field(default_factory=list)
    request_nodes: list[list[int]] = field(default_factory=list)
    request_targets: list[list[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)

    def attention_mask(self) -> np.ndarray:
        """`mask[j, i]` is True when node `i` is node `j` or one of its ancestors (parents precede children)."""
        size = len(self.tokens)
        mask = np.zeros((size, size), dtype=bool)
        for node, parent in enumerate(self.parents):
            if parent >= 0:
                mask[node, :node] = mask[parent, :node]
            mask[node, node] = True
        return mask


def model_input(context: Sequence[int], continuation: Sequence[int], max_length: int) -> tuple[list[int], list[int]]:
    """The tokens fed to the model and the tokens scored, with lm-eval's left truncation at `max_length`."""
    whole = (list(context) + list(continuation))[-(max_length + 1) :]
    return whole[:-1], list(continuation)


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def pack_requests(
    requests: Sequence[TokenRequest],
    max_length: int,
    max_requests_per_row: int,
    max_tokens_per_row: int,
) -> list[PackedRow]:
    """Sort the requests by their input tokens and pack consecutive ones into tries.

    In lexicographic order a request shares its longest prefix with its predecessor, so each new request
    branches off the previous request's path. A row takes at most `max_requests_per_row` requests and
    `max(max_tokens_per_row, 2 * its first request's length)` trie nodes, so that requests longer than the cap
    (e.g. 5-shot MMLU prompts of some subjects) still share their prompt; a request that adds no node always fits.
    """
    inputs = [model_input(context, continuation, max_length) for _, context, continuation in requests]
    order = sorted(range(len(requests)), key=lambda index: inputs[index][0])
    rows: list[PackedRow] = []
    row = PackedRow()
    row_capacity = max_tokens_per_row
    previous_tokens: list[int] = []
    previous_path: list[int] = []
    for index in order:
        tokens, targets = inputs[index]
        shared = _common_prefix_length(previous_tokens, tokens) if row.request_ids else 0
        new_nodes = len(tokens) - shared
        if row.request_ids and (
            len(row.request_ids) >= max_requests_per_row or (new_nodes > 0 and len(row) + new_nodes > row_capacity)
        ):
            rows.append(row)
            row, shared = PackedRow(), 0
        if not row.request_ids:
            row_capacity = max(max_tokens_per_row, 2 * len(tokens))
        path = previous_path[:shared]
        for token in tokens[shared:]:
            row.parents.append(path[-1] if path else -1)
            row.depths.append(len(path))
            path.append(len(row.tokens))
            row.tokens.append(token)
        row.request_ids.append(index)
        row.request_nodes.append(path[len(tokens) - len(targets) :])
        row.request_targets.append(targets)
        previous_tokens, previous_path = tokens, path
    if row.request_ids:
        rows.append(row)
    return rows


def mask_for_attention(mask: np.ndarray, implementation: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The tree mask as the 4-D tensor the attention implementation expects: boolean for SDPA, additive for eager."""
    allowed = torch.from_numpy(mask).to(device)[None, None]
    if implementation == "sdpa":
        return allowed
    additive = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return additive.masked_fill_(~allowed, torch.finfo(dtype).min)


@torch.no_grad()
def score_row(
    decoder: nn.Module,
    lm_head: nn.Module,
    row: PackedRow,
    attn_implementation: str,
    device: torch.device,
    softmax_dtype: torch.dtype | None = None,
) -> list[tuple[float, bool]]:
    """One forward pass of the row's trie; `(log-likelihood, is_greedy)` for each of its requests, in row order."""
    input_ids = torch.tensor([row.tokens], dtype=torch.long, device=device)
    position_ids = torch.tensor([row.depths], dtype=torch.long, device=device)
    dtype = lm_head.weight.dtype
    mask = mask_for_attention(row.attention_mask(), attn_implementation, dtype, device)
    hidden = decoder(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False)
    hidden = hidden.last_hidden_state[0]
    flat_nodes = torch.tensor([node for nodes in row.request_nodes for node in nodes], dtype=torch.long, device=device)
    unique_nodes, inverse = torch.unique(flat_nodes, return_inverse=True)
    log_probs = F.log_softmax(lm_head(hidden[unique_nodes]), dim=-1, dtype=softmax_dtype)
    greedy = log_probs.argmax(dim=-1)
    targets = torch.tensor([t for ts in row.request_targets for t in ts], dtype=torch.long, device=device)
    token_log_probs = log_probs[inverse, targets]
    token_greedy = greedy[inverse] == targets
    results = []
    start = 0
    for nodes in row.request_nodes:
        end = start + len(nodes)
        results.append((float(token_log_probs[start:end].sum()), bool(token_greedy[start:end].all())))
        start = end
    return results


def score_requests(
    decoder: nn.Module,
    lm_head: nn.Module,
    requests: Sequence[TokenRequest],
    *,
    max_length: int,
    batch_size: int,
    max_tokens_per_row: int,
    attn_implementation: str,
    device: torch.device,
    softmax_dtype: torch.dtype | None = None,
    forward_context: Callable[[], object] | None = None,
    on_row_done: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, tuple[float, bool]]]:
    """Score all requests, `batch_size` requests per packed forward pass; yields `(request index, result)`.

    `forward_context` (e.g. an autocast context factory) wraps each forward pass; `on_row_done` receives the
    number of requests finished (for a progress bar).
    """
    rows = pack_requests(requests, max_length, batch_size, max_tokens_per_row)
    for row in rows:
        if forward_context is None:
            results = score_row(decoder, lm_head, row, attn_implementation, device, softmax_dtype)
        else:
            with forward_context():
                results = score_row(decoder, lm_head, row, attn_implementation, device, softmax_dtype)
        yield from zip(row.request_ids, results)
        if on_row_done is not None:
            on_row_done(len(row.request_ids))


__all__ = ["PackedRow", "TokenRequest", "model_input", "pack_requests", "score_requests", "score_row"]
