"""Loading the real SmolLM2-135M-Instruct GGUF from ../shared/data (the one test that reads shared data).

It checks what a tiny random model cannot: transformers' GGUF de-quantisation path, the rebuild that
makes a GGUF-loaded model savable, and equivalence with plain `LlamaForCausalLM` on real weights.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from hf_llama_nas import ElasticLlamaForCausalLM, SearchSpace, SubnetConfig
from hf_llama_nas.data import smollm2_gguf_path

GGUF = smollm2_gguf_path()


@pytest.fixture(scope="module")
def smollm2() -> ElasticLlamaForCausalLM:
    return ElasticLlamaForCausalLM.from_pretrained(GGUF).eval()


def test_gguf_file_loads_as_elastic_llama_equal_to_llama(smollm2):
    assert smollm2.config.num_hidden_layers == 30 and smollm2.config.intermediate_size == 1536
    assert getattr(smollm2, "hf_quantizer", None) is None
    assert sum(p.numel() for p in smollm2.parameters()) == 134_515_008
    assert sum(p.numel() for p in smollm2.parameters()) == SubnetConfig.full(smollm2.config).num_parameters(smollm2.config)
    llama = LlamaForCausalLM.from_pretrained(GGUF.parent, gguf_file=GGUF.name).eval()
    ids = torch.tensor([[1, 504, 3458, 282, 4649, 314, 3725, 30, 378, 2036, 253, 1345]])
    with torch.no_grad():
        assert (smollm2(ids).logits - llama(ids).logits).abs().max() <= 1e-5


def test_gguf_loaded_supernet_saves_and_extracts(smollm2, tmp_path):
    smollm2.search_space = SearchSpace.for_model(smollm2.config, num_layers=[26, 30], intermediate_size=[1024, 1536])
    smollm2.save_pretrained(tmp_path / "supernet")
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "supernet").search_space == smollm2.search_space
    subnet = SubnetConfig(layers=[i for i in range(30) if i not in (14, 15, 16, 17)], intermediate_size=[1536] * 26)
    sub = smollm2.extract_subnetwork(subnet)
    sub.save_pretrained(tmp_path / "sub")
    ids = torch.tensor([[1, 504, 3458, 282, 4649, 314, 3725, 30]])
    with torch.no_grad(), smollm2.subnet(subnet):
        assert (AutoModelForCausalLM.from_pretrained(tmp_path / "sub")(ids).logits - smollm2(ids).logits).abs().max() <= 1e-5
