"""`ElasticLlamaLM`: lm-eval's HF model (`HFLM`) for an elastic super-network, with prefix-shared scoring.

Registered in lm-eval's model registry as `elastic-llama` (alias `hf-llama-nas`), so both work:

    lm_eval --model elastic-llama --model_args pretrained=model.gguf,subnet=subnet.json --tasks arc_easy
    lm = ElasticLlamaLM(model, tokenizer=tokenizer, batch_size=16); lm.set_subnet(subnet)

It evaluates the model object it is given with the chosen sub-network active (no extraction, no weight copy) and
switches sub-networks between evaluations with `set_subnet`, reloading nothing. `loglikelihood` requests are
scored by `prefix_scoring`: each shared prefix once, in a tree-masked packed forward pass; everything else
(tokenisation, truncation, rolling windows, generation) is `HFLM`'s own code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import torch
import transformers
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm.auto import tqdm
from transformers import AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerBase

from ..errors import LlamaNASError
from ..modeling import ElasticLlamaForCausalLM, as_subnet, resolve_checkpoint
from ..modeling.modeling_elastic_llama import SubnetLike
from .prefix_scoring import TokenRequest, score_requests

#: Attention implementations that accept the 4-D tree mask of the packed forward pass.
TREE_MASK_ATTENTION = ("sdpa", "eager")
#: Default cap on the trie nodes of one packed forward pass (bounds the attention mask's memory).
DEFAULT_MAX_TOKENS_PER_ROW = 2048


def load_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """The tokenizer stored with a checkpoint (directory, hub id or `.gguf` file), or an error naming the fix.

    A directory without tokenizer files but with exactly one `.gguf` file (where a GGUF-loaded model says it came
    from) uses that file's tokenizer.
    """
    path, gguf_file = resolve_checkpoint(name_or_path)
    if gguf_file is None and os.path.isdir(path) and not os.path.isfile(os.path.join(path, "tokenizer_config.json")):
        ggufs = [name for name in os.listdir(path) if name.endswith(".gguf")]
        gguf_file = ggufs[0] if len(ggufs) == 1 else None
    try:
        return AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
    except (OSError, ValueError) as err:
        raise LlamaNASError(
            f"Could not load a tokenizer from {os.fspath(name_or_path)!r} ({err.__class__.__name__}): pass "
            "tokenizer=... (a tokenizer object, or the directory / .gguf file it is stored in)."
        ) from err


@register_model("elastic-llama", "hf-llama-nas")
class ElasticLlamaLM(HFLM):
    """lm-eval model over an `ElasticLlamaForCausalLM` (or any Llama causal LM) with a selectable sub-network.

    `pretrained` is a loaded model (used as is, never copied) or a checkpoint directory / hub id / `.gguf` file
    (loaded as `ElasticLlamaForCausalLM`). `subnet` is a `SubnetConfig`, its dict, or a JSON file/string; with
    `check_space=False` it need only fit the model, not its search space.
    `prefix_sharing=False` falls back to `HFLM`'s scoring (the reference the fast path is tested against);
    `max_tokens_per_row` caps the packed sequence of one forward pass. Other arguments are `HFLM`'s.
    """

    def __init__(
        self,
        pretrained: str | os.PathLike | transformers.PreTrainedModel,
        subnet: SubnetLike = None,
        tokenizer: str | PreTrainedTokenizerBase | None = None,
        prefix_sharing: bool = True,
        max_tokens_per_row: int = DEFAULT_MAX_TOKENS_PER_ROW,
        check_space: bool | str = True,
        **kwargs: Any,
    ) -> None:
        if isinstance(pretrained, (str, os.PathLike)):
            source = os.fspath(pretrained)
            load_kwargs = {"dtype": kwargs.pop("dtype")} if kwargs.get("dtype") not in (None, "auto") else {}
            pretrained = ElasticLlamaForCausalLM.from_pretrained(source, **load_kwargs)
            pretrained.to(kwargs.get("device") or "cpu")
        else:
            source = pretrained.name_or_path
        if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = load_tokenizer(tokenizer or source)
        kwargs.pop("dtype", None)
        kwargs.pop("device", None)
        kwargs.setdefault("backend", "causal")
        super().__init__(pretrained=pretrained, tokenizer=tokenizer, **kwargs)
        self.prefix_sharing = _as_bool(prefix_sharing)
        self.max_tokens_per_row = int(max_tokens_per_row)
        if subnet is not None:
            self.set_subnet(subnet, check_space=_as_bool(check_space))

    def set_subnet(self, subnet: SubnetLike, check_space: bool = True) -> None:
        """Activate `subnet` (None: the full network) for the following evaluations; nothing is reloaded."""
        model = self.model
        if not isinstance(model, ElasticLlamaForCausalLM):
            if subnet is None:
                return
            raise LlamaNASError(
                f"Sub-networks need an ElasticLlamaForCausalLM, got {type(model).__name__}: load the model with "
                "ElasticLlamaForCausalLM.from_pretrained(...)."
            )
        model.set_subnet(None if subnet is None else as_subnet(subnet), check_space=check_space)

    @property
    def active_subnet(self):
        """The sub-network evaluated now (the full network for a non-elastic model: `None`)."""
        model = self.model
        return model.active_subnet if isinstance(model, ElasticLlamaForCausalLM) else None

    def _can_share_prefixes(self) -> bool:
        """The packed forward pass needs a Llama decoder, its plain LM head and an attention that takes 4-D masks."""
        model = self.model
        return (
            self.prefix_sharing
            and self.backend == "causal"
            and isinstance(model, LlamaForCausalLM)
            and model.config._attn_implementation in TREE_MASK_ATTENTION
        )

    def _loglikelihood_tokens(
        self,
        requests: Sequence[TokenRequest],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        if not self._can_share_prefixes():
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        batch_size = override_bs or self.batch_size
        if not isinstance(batch_size, int):
            batch_size = self.max_batch_size
        for _, context, continuation in requests:
            if not context or not continuation or len(continuation) > self.max_length:
                raise LlamaNASError(
                    f"A loglikelihood request needs a non-empty context and a continuation of 1..{self.max_length} "
                    f"tokens (got {len(context)} and {len(continuation)})."
                )
        model = self.model
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        with tqdm(
            total=len(requests),
            disable=disable_tqdm or self.rank != 0,
            desc="Scoring loglikelihood requests (prefix-shared)",
        ) as bar:
            scored = score_requests(
                model.get_decoder(),
                model.get_output_embeddings(),
                requests,
                max_length=self.max_length,
                batch_size=int(batch_size),
                max_tokens_per_row=self.max_tokens_per_row,
                attn_implementation=model.config._attn_implementation,
                device=self.device,
                softmax_dtype=self.softmax_dtype,
                forward_context=self._autocast,
                on_row_done=bar.update,
            )
            for index, answer in scored:
                results[index] = answer
                cache_key = requests[index][0]
                if cache_key is not None:
                    self.cache_hook.add_partial("loglikelihood", cache_key, answer)
        return results  # type: ignore[return-value]

    def _autocast(self) -> contextlib.AbstractContextManager:
        """The same mixed-precision context `HFLM._model_call` uses."""
        return torch.autocast(
            device_type=self.device.type,
            dtype=self.mixed_precision_dtype,
            enabled=self.mixed_precision_dtype is not None,
        )


def _as_bool(value: bool | str) -> bool:
    """`--model_args` passes strings: accept true/false spelled any way."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


__all__ = ["DEFAULT_MAX_TOKENS_PER_ROW", "ElasticLlamaLM", "load_tokenizer"]
