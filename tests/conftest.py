"""Tiny random Llama models for the tests: nothing is downloaded."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

VOCAB = 96


def tiny_llama_config(**overrides) -> LlamaConfig:
    """A 4-layer Llama with GQA; weights initialised large enough that sub-networks differ visibly."""
    fields = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        initializer_range=0.15,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    fields.update(overrides)
    return LlamaConfig(**fields)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the tiny vocabulary, built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({f"w{i}": i for i in range(4, VOCAB)})
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory) -> str:
    """A saved random plain Llama checkpoint (with tokenizer), the input of every loading test."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_llama_config()).eval()
    path = tmp_path_factory.mktemp("tiny_llama")
    model.save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tied_llama_dir(tmp_path_factory) -> str:
    """Like `llama_dir` but with tied input/output embeddings, as SmolLM2 has."""
    torch.manual_seed(1)
    model = LlamaForCausalLM(tiny_llama_config(tie_word_embeddings=True)).eval()
    path = tmp_path_factory.mktemp("tiny_llama_tied")
    model.save_pretrained(path)
    return str(path)


@pytest.fixture
def input_ids() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(4, VOCAB, (2, 12), generator=generator)
