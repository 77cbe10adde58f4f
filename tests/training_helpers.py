"""Shared pieces of the InstaTune tests: a tiny elastic model, random token blocks, quiet training arguments."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from datasets import Dataset

from hf_llama_nas import ElasticLlamaForCausalLM, SearchSpace
from hf_llama_nas.training import InstaTuneArguments, chunk_token_ids

from .conftest import VOCAB

SPACE = SearchSpace(num_hidden_layers=4, num_layers=(2, 3, 4), intermediate_size=(64, 96, 128), layer_mode="any")


def tiny_elastic(llama_dir: str, space: SearchSpace = SPACE) -> ElasticLlamaForCausalLM:
    return ElasticLlamaForCausalLM.from_pretrained(llama_dir, search_space=space, dtype=torch.float32)


def token_blocks(num_blocks: int = 16, block_size: int = 16, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    return chunk_token_ids(torch.randint(4, VOCAB, (num_blocks * block_size,), generator=generator), block_size)


def quiet_args(output_dir: Any, **overrides: Any) -> InstaTuneArguments:
    fields: dict[str, Any] = dict(
        output_dir=str(output_dir), per_device_train_batch_size=2, max_steps=4, learning_rate=1e-3,
        report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, disable_tqdm=True, seed=0,
        dataloader_num_workers=0,
    )
    fields.update(overrides)
    return InstaTuneArguments(**fields)


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread per test: the tiny models' ops are far shorter than the cost of syncing threads on a
    busy machine (about 3x faster here). Restored afterwards, so other test modules are unaffected."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
