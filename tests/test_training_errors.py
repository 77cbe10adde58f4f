"""Bad input to InstaTune fails before training, with a message that names the fix."""

from __future__ import annotations

import pytest
from datasets import Dataset
from transformers import LlamaForCausalLM, TrainingArguments

from hf_llama_nas import SearchSpace
from hf_llama_nas.errors import LlamaNASError, SearchSpaceError
from hf_llama_nas.training import InstaTuneError, InstaTuneTrainer, SubnetSampler

from .training_helpers import SPACE, quiet_args, tiny_elastic, token_blocks, single_thread  # noqa: F401 (autouse fixture)


def test_non_elastic_model_is_refused(llama_dir, tmp_path):
    plain = LlamaForCausalLM.from_pretrained(llama_dir)
    with pytest.raises(InstaTuneError, match="ElasticLlamaForCausalLM.from_pretrained"):
        InstaTuneTrainer(model=plain, args=quiet_args(tmp_path), train_dataset=token_blocks())


def test_plain_training_arguments_are_refused(llama_dir, tmp_path):
    with pytest.raises(InstaTuneError, match="InstaTuneArguments"):
        InstaTuneTrainer(model=tiny_elastic(llama_dir), args=TrainingArguments(output_dir=str(tmp_path)))


def test_unknown_strategy_and_bad_weights(tmp_path):
    with pytest.raises(InstaTuneError, match="alternate"):
        quiet_args(tmp_path, nas_strategy="progressive")
    with pytest.raises(InstaTuneError, match="nas_temperature"):
        quiet_args(tmp_path, nas_temperature=0)
    with pytest.raises(InstaTuneError, match="nas_distill_weight"):
        quiet_args(tmp_path, nas_distill_weight=-1)
    assert issubclass(InstaTuneError, LlamaNASError)


def test_dataset_without_labels(llama_dir, tmp_path):
    data = Dataset.from_dict({"input_ids": [[5, 6, 7, 8]] * 4, "attention_mask": [[1] * 4] * 4})
    with pytest.raises(InstaTuneError, match="labels"):
        InstaTuneTrainer(model=tiny_elastic(llama_dir), args=quiet_args(tmp_path), train_dataset=data)


def test_untokenised_dataset(llama_dir, tmp_path):
    with pytest.raises(InstaTuneError, match="input_ids"):
        InstaTuneTrainer(model=tiny_elastic(llama_dir), args=quiet_args(tmp_path),
                         train_dataset=Dataset.from_dict({"text": ["a b c"]}))


def test_sequences_over_the_context_limit(llama_dir, tmp_path):
    long = token_blocks(num_blocks=2, block_size=200)
    with pytest.raises(InstaTuneError, match="max_position_embeddings"):
        InstaTuneTrainer(model=tiny_elastic(llama_dir), args=quiet_args(tmp_path), train_dataset=long)


def test_search_space_that_does_not_fit(llama_dir, tmp_path):
    too_wide = SearchSpace(num_hidden_layers=4, num_layers=(2, 4), intermediate_size=(64, 256))
    with pytest.raises(SearchSpaceError, match="native width"):
        InstaTuneTrainer(model=tiny_elastic(llama_dir), args=quiet_args(tmp_path), search_space=too_wide)
    wrong_depth = SearchSpace(num_hidden_layers=6, num_layers=(4, 6), intermediate_size=(64, 128))
    with pytest.raises(SearchSpaceError, match="6-layer"):
        InstaTuneTrainer(model=tiny_elastic(llama_dir), args=quiet_args(tmp_path), search_space=wrong_depth)
    single = SearchSpace(num_hidden_layers=4, num_layers=(4,), intermediate_size=(128,))
    with pytest.raises(InstaTuneError, match="single network"):
        InstaTuneTrainer(model=tiny_elastic(llama_dir), args=quiet_args(tmp_path), search_space=single)


def test_sampler_and_reference_checks(llama_dir, tmp_path):
    with pytest.raises(InstaTuneError, match="permutation"):
        SubnetSampler(SPACE, 0, (0, 1, 1, 3))
    other = SearchSpace(num_hidden_layers=4, num_layers=(3, 4), intermediate_size=(64, 128), layer_mode="any")
    with pytest.raises(InstaTuneError, match="sampler's search space"):
        InstaTuneTrainer(model=tiny_elastic(llama_dir), args=quiet_args(tmp_path), sampler=SubnetSampler(other))
    bad = SubnetSampler(other).smallest()
    with pytest.raises(InstaTuneError, match="reference sub-network 'tiny'"):
        InstaTuneTrainer(model=tiny_elastic(llama_dir), args=quiet_args(tmp_path),
                         search_space=SearchSpace(num_hidden_layers=4, num_layers=(2, 4), intermediate_size=(64, 128)),
                         reference_subnets={"tiny": bad})
