"""The elastic super-network: equivalence with Llama, zero-copy activation, generate, autograd, save/load."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from hf_llama_nas import ElasticLlamaForCausalLM, SearchSpace, SubnetConfig, SubnetError
from hf_llama_nas.modeling import ElasticLinear

SPACE = dict(num_layers=[2, 3, 4], intermediate_size=[32, 64, 96, 128], layer_mode="any")
SKIP_FIRST = SubnetConfig(layers=[1, 3], intermediate_size=[64, 96])


def load(path: str, **kwargs) -> ElasticLlamaForCausalLM:
    config = AutoModelForCausalLM.from_pretrained(path).config
    space = SearchSpace.for_model(config, **SPACE)
    return ElasticLlamaForCausalLM.from_pretrained(path, search_space=space, **kwargs).eval()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_full_network_equals_llama(llama_dir, input_ids, attn):
    elastic = load(llama_dir, attn_implementation=attn)
    llama = LlamaForCausalLM.from_pretrained(llama_dir, attn_implementation=attn).eval()
    with torch.no_grad():
        diff = (elastic(input_ids).logits - llama(input_ids).logits).abs().max().item()
    assert diff <= 1e-5
    assert elastic.active_subnet == SubnetConfig.full(elastic.config)


def test_subnet_changes_output_and_context_restores(llama_dir, input_ids):
    model = load(llama_dir)
    with torch.no_grad():
        full = model(input_ids).logits
        with model.subnet(SKIP_FIRST) as active:
            assert active.active_subnet == SKIP_FIRST
            sub = model(input_ids).logits
        again = model(input_ids).logits
    assert (full - sub).abs().max() > 1e-2
    assert torch.equal(full, again)
    assert model.active_subnet == SubnetConfig.full(model.config)


class _RecordOps(TorchDispatchMode):
    """Records every aten op and the output sizes, to prove that activation copies no weight."""

    def __init__(self):
        super().__init__()
        self.copies: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket.__name__)
        if name in {"clone", "copy_", "_to_copy", "contiguous", "index_select", "cat", "stack"}:
            self.copies.append(name)
        return func(*args, **(kwargs or {}))


def test_activation_copies_no_weights(llama_dir, input_ids):
    model = load(llama_dir)
    before = {name: (p.data_ptr(), tuple(p.shape)) for name, p in model.named_parameters()}
    with _RecordOps() as ops:
        model.set_subnet(SKIP_FIRST)
    assert ops.copies == []
    assert {name: (p.data_ptr(), tuple(p.shape)) for name, p in model.named_parameters()} == before
    gate = model.model.layers[1].mlp.gate_proj
    assert isinstance(gate, ElasticLinear) and gate.active_out_features == 64
    # the slice the forward pass reads is a view of the full weight
    seen: list[torch.Tensor] = []
    original = torch.nn.functional.linear

    def spy(x, weight, bias=None):
        seen.append(weight)
        return original(x, weight, bias)

    torch.nn.functional.linear = spy
    try:
        with torch.no_grad():
            model(input_ids)
    finally:
        torch.nn.functional.linear = original
    storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert seen and all(w.untyped_storage().data_ptr() in storages for w in seen)
    gate_storage = gate.weight.untyped_storage().data_ptr()
    assert any(w.shape == (64, 64) and w.untyped_storage().data_ptr() == gate_storage for w in seen)

def test_generate_with_kv_cache_while_layers_are_skipped(llama_dir, input_ids):
    model = load(llama_dir)
    model.set_subnet(SKIP_FIRST)
    prompt = input_ids[:1, :5]
    kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    cached = model.generate(prompt, use_cache=True, **kwargs)
    uncached = model.generate(prompt, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)
    extracted = model.extract_subnetwork().eval()
    assert torch.equal(extracted.generate(prompt, **kwargs), cached)


def test_cache_of_another_subnet_is_refused(llama_dir, input_ids):
    model = load(llama_dir)
    out = model(input_ids, use_cache=True)
    model.set_subnet(SKIP_FIRST)
    with pytest.raises(SubnetError, match="another sub-network"):
        model(input_ids[:, :1], cache=out.cache, use_cache=True)


def test_gradients_reach_only_active_slices(llama_dir, input_ids):
    model = load(llama_dir).train()
    model.set_subnet(SKIP_FIRST)
    model(input_ids, labels=input_ids).loss.backward()
    skipped = model.model.layers[0]
    assert all(p.grad is None for p in skipped.parameters())
    mlp = model.model.layers[1].mlp  # width 64 of 128
    assert mlp.gate_proj.weight.grad[:64].abs().sum() > 0
    assert torch.count_nonzero(mlp.gate_proj.weight.grad[64:]) == 0
    assert torch.count_nonzero(mlp.up_proj.weight.grad[64:]) == 0
    assert torch.count_nonzero(mlp.down_proj.weight.grad[:, 64:]) == 0
    assert mlp.down_proj.weight.grad[:, :64].abs().sum() > 0


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_bf16_subnet_matches_extracted(llama_dir, input_ids, attn):
    model = load(llama_dir, dtype=torch.bfloat16, attn_implementation=attn)
    assert model.dtype == torch.bfloat16
    model.set_subnet(SKIP_FIRST)
    sub = model.extract_subnetwork().eval()
    with torch.no_grad():
        a, b = model(input_ids).logits, sub(input_ids).logits
    assert a.dtype == torch.bfloat16
    assert torch.equal(a, b)


def test_save_pretrained_keeps_space_and_stays_a_llama_checkpoint(llama_dir, input_ids, tmp_path):
    model = load(llama_dir)
    model.save_pretrained(tmp_path)
    reloaded = ElasticLlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert reloaded.search_space == model.search_space
    assert AutoModelForCausalLM.from_pretrained(tmp_path).search_space == model.search_space
    llama = LlamaForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert (llama(input_ids).logits - model(input_ids).logits).abs().max() <= 1e-5


def test_invalid_subnets_name_layer_and_value(llama_dir):
    model = load(llama_dir)
    with pytest.raises(SubnetError, match="7"):
        model.set_subnet({"layers": [0, 7], "intermediate_size": [32, 32]})
    with pytest.raises(SubnetError, match="256"):
        model.set_subnet({"layers": [0, 1], "intermediate_size": [32, 256]})
    with pytest.raises(SubnetError, match="48"):
        model.set_subnet({"layers": [0, 1], "intermediate_size": [32, 48]})  # valid for the model, not in the space
    model.set_subnet({"layers": [0, 1], "intermediate_size": [32, 48]}, check_space=False)
    assert model.model.layers[1].mlp.active_intermediate_size == 48


def test_gguf_style_loading_rejects_non_llama(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from hf_llama_nas import UnsupportedModelError

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(UnsupportedModelError, match="'gpt2' model"):
        ElasticLlamaForCausalLM.from_pretrained(tmp_path / "gpt2")
    with pytest.raises(UnsupportedModelError, match="does not exist"):
        ElasticLlamaForCausalLM.from_pretrained(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(UnsupportedModelError, match="does not exist"):
        ElasticLlamaForCausalLM.from_pretrained(str(tmp_path / "missing.gguf"))
