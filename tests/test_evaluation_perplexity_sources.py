"""Perplexity of the active sub-network on a text file or on the rows of a dataset."""

from __future__ import annotations

import datasets
import pytest
import torch

from hf_llama_nas import ElasticLlamaConfig, ElasticLlamaForCausalLM, LlamaNASError, SubnetConfig
from hf_llama_nas.evaluation import evaluate_perplexity

from .conftest import tiny_llama_config, tiny_tokenizer

ROWS = [" ".join(f"w{(7 * i + j) % 90 + 4}" for j in range(15)) for i in range(4)]


@pytest.fixture(scope="module")
def model() -> ElasticLlamaForCausalLM:
    torch.manual_seed(0)
    return ElasticLlamaForCausalLM(ElasticLlamaConfig(**tiny_llama_config().to_dict())).eval()


def test_file_dataset_and_string_give_the_same_perplexity(model, tmp_path):
    tokenizer = tiny_tokenizer()
    text = "\n".join(ROWS)
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    rows = datasets.Dataset.from_dict({"text": ROWS})["text"]
    kwargs = dict(max_tokens=48, context_length=16, stride=8, progress=False)
    from_string = evaluate_perplexity(model, tokenizer, text, **kwargs)
    assert evaluate_perplexity(model, tokenizer, path, **kwargs) == from_string
    assert evaluate_perplexity(model, tokenizer, rows, **kwargs) == from_string
    assert from_string.num_tokens == 48


def test_active_subnet_changes_perplexity(model):
    tokenizer = tiny_tokenizer()
    full = evaluate_perplexity(model, tokenizer, ROWS, context_length=16, progress=False).perplexity
    with model.subnet(SubnetConfig(layers=[0, 3], intermediate_size=[64, 32]), check_space=False):
        narrow = evaluate_perplexity(model, tokenizer, ROWS, context_length=16, progress=False).perplexity
    assert narrow != pytest.approx(full)


def test_missing_text_file_is_named(model, tmp_path):
    with pytest.raises(LlamaNASError, match="nothing.txt"):
        evaluate_perplexity(model, tiny_tokenizer(), tmp_path / "nothing.txt", progress=False)
