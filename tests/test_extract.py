"""Extraction: a smaller standalone model equal to the active sub-network, loadable by plain transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import bitsandbytes as bnb
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from hf_llama_nas import ElasticLlamaForCausalLM, LlamaNASForCausalLM, SearchSpace, SubnetConfig
from hf_llama_nas.export.save import checkpoint_nbytes, save_subnetwork

from .conftest import tiny_tokenizer

PREFIX = SubnetConfig(layers=[0, 1, 2], intermediate_size=[64, 64, 64])
ANY_MIXED = SubnetConfig(layers=[0, 2, 3], intermediate_size=[128, 32, 96])


def elastic(path: str, layer_mode: str) -> ElasticLlamaForCausalLM:
    model = ElasticLlamaForCausalLM.from_pretrained(path).eval()
    model.search_space = SearchSpace.for_model(
        model.config, num_layers=[2, 3, 4], intermediate_size=[32, 64, 96, 128], layer_mode=layer_mode
    )
    return model


@pytest.mark.parametrize(
    ("layer_mode", "subnet", "expected_class"),
    [("prefix", PREFIX, LlamaForCausalLM), ("any", ANY_MIXED, LlamaNASForCausalLM), ("any", PREFIX, LlamaForCausalLM)],
)
@pytest.mark.parametrize("fixture", ["llama_dir", "tied_llama_dir"])
def test_extracted_logits_equal_active_subnet(request, fixture, layer_mode, subnet, expected_class, input_ids):
    model = elastic(request.getfixturevalue(fixture), layer_mode)
    sub = model.extract_subnetwork(subnet).eval()
    assert type(sub) is expected_class
    assert sub.config.num_hidden_layers == subnet.num_layers
    with torch.no_grad(), model.subnet(subnet):
        diff = (sub(input_ids).logits - model(input_ids).logits).abs().max().item()
    assert diff <= 1e-5
    real_params = sum(p.numel() for p in sub.parameters())
    assert real_params == subnet.num_parameters(model.config)
    assert real_params < sum(p.numel() for p in model.parameters())
    assert sub.config.hf_llama_nas["subnet"] == subnet.to_dict()
    # the extracted model owns its weights: training the super-network does not change it
    shared = {p.data_ptr() for p in model.parameters()} & {p.data_ptr() for p in sub.parameters()}
    assert not shared


def test_prefix_mode_refuses_non_prefix_layers(llama_dir):
    from hf_llama_nas import SubnetError

    model = elastic(llama_dir, "prefix")
    with pytest.raises(SubnetError, match="prefix"):
        model.extract_subnetwork(ANY_MIXED)


def test_uniform_subnet_saves_as_plain_llama(llama_dir, input_ids, tmp_path):
    model = elastic(llama_dir, "any")
    sub = model.extract_subnetwork(PREFIX)
    save_subnetwork(sub, tmp_path, tokenizer=AutoTokenizer.from_pretrained(llama_dir))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "llama" and config["intermediate_size"] == 64 and "auto_map" not in config
    assert {"generation_config.json", "tokenizer.json", "model.safetensors"} <= set(os.listdir(tmp_path))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is LlamaForCausalLM
    with torch.no_grad(), model.subnet(PREFIX):
        assert (loaded(input_ids).logits - model(input_ids).logits).abs().max() <= 1e-5
    assert checkpoint_nbytes(tmp_path) == PREFIX.num_bytes(model.config, "float32")


def test_mixed_widths_load_with_remote_code_without_the_plugin(llama_dir, input_ids, tmp_path):
    model = elastic(llama_dir, "any")
    sub = model.extract_subnetwork(ANY_MIXED).eval()
    out = tmp_path / "mixed"
    save_subnetwork(sub, out, tokenizer=tiny_tokenizer())
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama_nas"
    assert config["intermediate_size"] == [128, 32, 96]
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_llama_nas.LlamaNASForCausalLM"
    assert {"configuration_llama_nas.py", "modeling_llama_nas.py", "tokenizer.json"} <= set(os.listdir(out))
    with torch.no_grad():
        expected = sub(input_ids).logits
    torch.save({"input_ids": input_ids, "logits": expected}, tmp_path / "expected.pt")
    # a fresh interpreter in which `import hf_llama_nas` fails, started away from the repository
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["hf_llama_nas"] = None
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        try:
            import hf_llama_nas
        except ImportError:
            pass
        else:
            raise SystemExit("hf_llama_nas must not be importable here")
        model = AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True).eval()
        AutoTokenizer.from_pretrained({str(out)!r})
        data = torch.load({str(tmp_path / 'expected.pt')!r})
        with torch.no_grad():
            diff = (model(data["input_ids"]).logits - data["logits"]).abs().max().item()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert [l.mlp.intermediate_size for l in model.model.layers] == [128, 32, 96]
        print("MAXDIFF", diff)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    diff = float(done.stdout.split("MAXDIFF")[1])
    assert diff <= 1e-5
    # and with the plugin imported, the registered class loads it without remote code
    assert type(AutoModelForCausalLM.from_pretrained(out)) is LlamaNASForCausalLM


@pytest.mark.parametrize("subnet", [PREFIX, ANY_MIXED])
def test_int8_checkpoint_loads_as_bitsandbytes_8bit(tied_llama_dir, input_ids, tmp_path, subnet):
    model = elastic(tied_llama_dir, "any")
    sub = model.extract_subnetwork(subnet).eval()
    save_subnetwork(sub, tmp_path, int8=True)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["quantization_config"]["load_in_8bit"] is True
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    linears = [m for m in loaded.model.layers.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(isinstance(m, bnb.nn.Linear8bitLt) for m in linears)
    assert all(m.weight.dtype == torch.int8 for m in linears)
    assert not isinstance(loaded.lm_head, bnb.nn.Linear8bitLt)
    assert loaded.model.embed_tokens.weight.dtype == torch.float16
    assert checkpoint_nbytes(tmp_path) == subnet.num_bytes(model.config, "int8")
    with torch.no_grad():
        reference = sub(input_ids).logits
        quantized = loaded(input_ids).logits.float()
    relative = (quantized - reference).norm() / reference.norm()
    assert relative < 0.05
    assert (quantized.argmax(-1) == reference.argmax(-1)).float().mean() > 0.9
