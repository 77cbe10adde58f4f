"""Search space and sub-network configs: counts, JSON, ids, sampling, encodings, errors, exact sizes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hf_llama_nas.errors import SearchSpaceError, SubnetError
from hf_llama_nas.search_space import ModelDims, SearchSpace, SubnetConfig

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "hf_llama_nas"
#: Imports hf_llama_nas.search_space without running the package __init__ (which loads torch).
BARE_IMPORT = textwrap.dedent(
    f"""
    import importlib, sys, types
    pkg = types.ModuleType("hf_llama_nas")
    pkg.__path__ = [{str(PACKAGE_DIR)!r}]
    sys.modules["hf_llama_nas"] = pkg
    search_space = importlib.import_module("hf_llama_nas.search_space")
    """
)

PREFIX = SearchSpace(num_hidden_layers=6, num_layers=(2, 4, 6), intermediate_size=(16, 32, 64), layer_mode="prefix")
ANY = SearchSpace(num_hidden_layers=6, num_layers=(2, 4, 6), intermediate_size=(16, 32, 64), layer_mode="any")


def tiny_config(**overrides) -> LlamaConfig:
    fields = dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    fields.update(overrides)
    return LlamaConfig(**fields)


def run_bare(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", BARE_IMPORT + textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


# ----- purity and counts -----


def test_module_imports_without_torch_or_transformers():
    out = run_bare(
        """
        space = search_space.SearchSpace.llama_nas_llama2_7b()
        space.sample(0).num_parameters({"hidden_size": 8, "intermediate_size": 11008, "num_hidden_layers": 32,
                                        "num_attention_heads": 2, "vocab_size": 10})
        heavy = sorted(m for m in ("torch", "transformers", "numpy") if m in sys.modules)
        print(heavy)
        """
    )
    assert out == "[]"


def test_llama_nas_paper_counts():
    space = SearchSpace.llama_nas_llama2_7b()
    assert (space.num_hidden_layers, space.num_layers, space.intermediate_size) == (32, (24, 28, 32), (5504, 11008))
    assert space.layer_mode == "prefix"
    assert space.num_encodings() == 3 * 2**32
    assert 1.28e10 < space.num_encodings() < 1.30e10
    assert space.num_subnets() == 2**24 + 2**28 + 2**32
    assert space.num_genes == 33
    assert space.gene_bounds() == ([0] * 33, [2] + [1] * 32)
    with pytest.raises(TypeError):
        len(space)


def test_counts_match_enumeration_on_a_small_space():
    for layer_mode in ("prefix", "any"):
        space = SearchSpace(num_hidden_layers=4, num_layers=(1, 3, 4), intermediate_size=(8, 16), layer_mode=layer_mode)
        lower, upper = space.gene_bounds()
        vectors = [[]]
        for low, high in zip(lower, upper):
            vectors = [v + [g] for v in vectors for g in range(low, high + 1)]
        assert len(vectors) == space.num_encodings()
        decoded = set()
        for vector in vectors:
            try:
                decoded.add(space.decode(vector))
            except SubnetError:
                assert layer_mode == "any"
        assert len(decoded) == space.num_subnets()
    assert SearchSpace(4, (1, 3, 4), (8, 16), "any").num_subnets() == 4 * 2 + 4 * 8 + 16


# ----- JSON and ids -----


@pytest.mark.parametrize("space", [PREFIX, ANY, SearchSpace.llama_nas_llama2_7b()])
def test_search_space_json_round_trip(space, tmp_path):
    assert SearchSpace.from_dict(space.to_dict()) == space
    assert SearchSpace.from_json(space.to_json()) == space
    path = tmp_path / "space.json"
    text = space.to_json(path)
    assert json.loads(path.read_text()) == json.loads(text) == space.to_dict()
    assert SearchSpace.from_json(path) == space
    assert SearchSpace.from_json(str(path)) == space
    assert space.to_dict() == {
        "num_hidden_layers": space.num_hidden_layers,
        "num_layers": list(space.num_layers),
        "intermediate_size": list(space.intermediate_size),
        "layer_mode": space.layer_mode,
    }


def test_search_space_from_dict_defaults_to_prefix():
    space = SearchSpace.from_dict({"num_hidden_layers": 4, "num_layers": [4], "intermediate_size": [8]})
    assert space.layer_mode == "prefix"


def test_subnet_json_round_trip(tmp_path):
    subnet = SubnetConfig(layers=[0, 2, 5], intermediate_size=[64, 16, 32])
    assert subnet.layers == (0, 2, 5) and subnet.intermediate_size == (64, 16, 32)
    assert subnet.to_dict() == {"layers": [0, 2, 5], "intermediate_size": [64, 16, 32]}
    assert json.loads(subnet.to_json()) == subnet.to_dict()
    assert SubnetConfig.from_json(subnet.to_json()) == subnet
    assert SubnetConfig.from_dict(subnet.to_dict()) == subnet
    path = tmp_path / "subnet.json"
    subnet.to_json(path)
    assert SubnetConfig.from_json(path) == subnet
    assert SubnetConfig.from_json(str(path)) == subnet
    assert hash(SubnetConfig.from_json(path)) == hash(subnet)


def test_subnet_id_is_stable_across_processes_and_distinguishes_subnets():
    subnets = [
        SubnetConfig([0, 1, 2], [64, 64, 64]),
        SubnetConfig([0, 1, 2], [64, 64, 32]),
        SubnetConfig([0, 1, 3], [64, 64, 64]),
        SubnetConfig([0, 1], [64, 64]),
    ]
    ids = [s.id for s in subnets]
    assert len(set(ids)) == len(ids)
    assert ids[0].startswith("L3-") and ids[3].startswith("L2-") and len(ids[0]) == 3 + 10
    assert SubnetConfig((0, 1, 2), (64, 64, 64)).id == ids[0]
    dicts = [s.to_dict() for s in subnets]
    out = run_bare(
        f"""
        for d in {dicts!r}:
            print(search_space.SubnetConfig.from_dict(d).id)
        """
    )
    assert out.split() == ids


# ----- sampling -----


@pytest.mark.parametrize("space", [PREFIX, ANY])
def test_sampling_is_deterministic_in_space_and_covers_choices(space):
    samples = space.sample_many(300, seed=7)
    assert samples == space.sample_many(300, seed=7)
    assert samples != space.sample_many(300, seed=8)
    assert [space.sample(s) for s in range(20)] == [space.sample(s) for s in range(20)]
    rng_a, rng_b = random.Random(3), random.Random(3)
    assert [space.sample(rng_a) for _ in range(5)] == [space.sample(rng_b) for _ in range(5)]
    assert all(space.contains(s) for s in samples)
    assert {s.num_layers for s in samples} == set(space.num_layers)
    assert {w for s in samples for w in s.intermediate_size} == set(space.intermediate_size)
    if space.layer_mode == "prefix":
        assert all(s.layers == tuple(range(s.num_layers)) for s in samples)
    else:
        assert any(s.layers != tuple(range(s.num_layers)) for s in samples)
        assert {layer for s in samples if s.num_layers == 2 for layer in s.layers} == set(range(6))


def test_sample_many_unique():
    space = SearchSpace(num_hidden_layers=2, num_layers=(1, 2), intermediate_size=(8, 16), layer_mode="prefix")
    samples = space.sample_many(6, seed=0, unique=True)
    assert len(set(samples)) == 6 == space.num_subnets()
    with pytest.raises(SearchSpaceError, match="7"):
        space.sample_many(7, seed=0, unique=True)


def test_largest_and_smallest():
    assert PREFIX.largest() == SubnetConfig(list(range(6)), [64] * 6)
    assert PREFIX.smallest() == SubnetConfig([0, 1], [16, 16])
    assert ANY.contains(ANY.largest()) and ANY.contains(ANY.smallest())


# ----- gene encoding -----


@pytest.mark.parametrize("space", [PREFIX, ANY, SearchSpace.llama_nas_llama2_7b()])
def test_encode_decode_round_trip(space):
    lower, upper = space.gene_bounds()
    for subnet in space.sample_many(200, seed=1) + [space.largest(), space.smallest()]:
        genes = space.encode(subnet)
        assert len(genes) == space.num_genes == len(lower) == len(upper)
        assert all(isinstance(g, int) and lo <= g <= hi for g, lo, hi in zip(genes, lower, upper))
        assert space.decode(genes) == subnet
        assert space.decode([float(g) for g in genes]) == subnet


def test_encodings_follow_the_documented_layout():
    subnet = SubnetConfig([0, 1], [64, 16])
    assert PREFIX.encode(subnet) == [0, 2, 0, 0, 0, 0, 0]
    assert PREFIX.decode([0, 2, 0, 1, 2, 1, 1]) == subnet  # genes beyond the depth are ignored
    assert ANY.encode(SubnetConfig([1, 4], [32, 16])) == [0, 2, 0, 0, 1, 0]
    assert ANY.decode([0, 2, 0, 0, 1, 0]) == SubnetConfig([1, 4], [32, 16])


def test_decode_refuses_disallowed_depth_without_rng_and_repairs_with_rng():
    with pytest.raises(SubnetError, match="3 layers"):
        ANY.decode([1, 1, 1, 0, 0, 0])
    rng = random.Random(0)
    for genes in ([1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0] * 6, [3, 3, 3, 3, 3, 0], [1, 2, 3, 1, 2, 0]):
        kept_before = {i for i, g in enumerate(genes) if g}
        for _ in range(20):
            subnet = ANY.decode(genes, rng=rng)
            assert ANY.contains(subnet)
            distance = min(abs(d - len(kept_before)) for d in ANY.num_layers)
            assert abs(subnet.num_layers - len(kept_before)) == distance
            kept_after = set(subnet.layers)
            assert kept_after <= kept_before or kept_before <= kept_after
            for layer, width in zip(subnet.layers, subnet.intermediate_size):
                if layer in kept_before:
                    assert width == ANY.intermediate_size[genes[layer] - 1]
    repaired = {ANY.decode([1, 1, 1, 0, 0, 0], rng=rng) for _ in range(50)}
    assert len(repaired) > 2  # random, not a fixed rule


@pytest.mark.parametrize(
    ("genes", "match"),
    [([0] * 6, "Expected 7 genes"), ([3, 0, 0, 0, 0, 0, 0], "gene 0 = 3"), ([0, 0, 0, 0, 0, 0, -1], "gene 6 = -1"),
     ([0, 0.5, 0, 0, 0, 0, 0], "0.5")],
)
def test_decode_rejects_bad_genes(genes, match):
    with pytest.raises(SubnetError, match=match):
        PREFIX.decode(genes)


# ----- features -----


def test_features():
    subnet = SubnetConfig([1, 4], [32, 16])
    assert ANY.num_features("ordinal") == 7
    assert ANY.features(subnet) == [0.0, 0.5, 0.0, 0.0, 0.25, 0.0, 2 / 6]
    onehot = ANY.features(subnet, kind="onehot")
    assert len(onehot) == ANY.num_features("onehot") == 6 * 4 + 3
    assert onehot[:8] == [1.0, 0, 0, 0, 0, 0, 1.0, 0]
    assert onehot[-3:] == [1.0, 0.0, 0.0]
    assert sum(onehot) == 6 + 1
    assert len({tuple(ANY.features(s, "onehot")) for s in ANY.sample_many(100, seed=0)}) == len(
        set(ANY.sample_many(100, seed=0))
    )
    with pytest.raises(SearchSpaceError, match="'binary'"):
        ANY.features(subnet, kind="binary")


# ----- construction for a model -----


def test_for_model_defaults_and_ranges():
    config = tiny_config(num_hidden_layers=16, intermediate_size=1000)
    space = SearchSpace.for_model(config)
    assert space.num_layers == (8, 12, 16)
    assert space.intermediate_size == (448, 704, 1000)
    assert space.layer_mode == "any"
    llama2 = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
              "vocab_size": 32000}
    assert SearchSpace.for_model(llama2).intermediate_size == (5504, 8256, 11008)
    tiny = SearchSpace.for_model(tiny_config(intermediate_size=128))
    assert tiny.num_layers == (1, 4) and tiny.intermediate_size == (64, 128)
    ranged = SearchSpace.for_model(
        config, min_layers=10, max_layers=13, intermediate_size=[64, 128], layer_mode="prefix"
    )
    assert ranged.num_layers == (10, 11, 12, 13) and ranged.layer_mode == "prefix"
    assert SearchSpace.for_model(config, max_layers=3).num_layers == (1, 2, 3)
    mixed = {**llama2, "num_hidden_layers": 3, "intermediate_size": [512, 256, 512]}
    assert SearchSpace.for_model(mixed).intermediate_size == (128, 192, 256)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(num_layers=[2, 3], min_layers=2), "either num_layers or min_layers"),
        (dict(min_layers=3, max_layers=2), "min_layers=3"),
        (dict(num_layers=[2, 5]), "5"),
        (dict(intermediate_size=[32, 128]), "128 exceeds the model's native width 64"),
        (dict(num_layers=[3, 2]), "sort them ascending and remove duplicates"),
    ],
)
def test_for_model_errors(kwargs, match):
    with pytest.raises(SearchSpaceError, match=match):
        SearchSpace.for_model(tiny_config(), **kwargs)


def test_validate_against_model():
    config = tiny_config()
    SearchSpace(4, (2, 4), (32, 64)).validate(config)
    with pytest.raises(SearchSpaceError, match="6-layer model but the model has 4 layers"):
        SearchSpace(6, (2, 4), (32, 64)).validate(config)
    with pytest.raises(SearchSpaceError, match="96 exceeds the model's native width 64"):
        SearchSpace(4, (2, 4), (32, 96)).validate(config)
    mixed = {**config.to_dict(), "intermediate_size": [64, 64, 48, 64]}
    with pytest.raises(SearchSpaceError, match="native width 48 \\(layer 2\\)"):
        SearchSpace(4, (2, 4), (32, 64)).validate(mixed)


# ----- bad inputs -----


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(num_layers=()), "no num_layers choices"),
        (dict(intermediate_size=[]), "no intermediate_size choices"),
        (dict(num_layers=(4, 2)), "num_layers\\[1\\]=2 follows 4.*sort them ascending and remove duplicates"),
        (dict(intermediate_size=(16, 16)), "intermediate_size\\[1\\]=16.*sort them ascending and remove duplicates"),
        (dict(num_layers=(2, 7)), "choice 7 is out of range"),
        (dict(num_layers=(0, 2)), "choice 0 is out of range"),
        (dict(intermediate_size=(0, 16)), "choice 0 must be positive"),
        (dict(intermediate_size=(-8, 16)), "-8"),
        (dict(layer_mode="suffix"), "'suffix'.*'prefix', 'any'"),
        (dict(num_hidden_layers=0), "num_hidden_layers=0"),
        (dict(num_layers=(2.5,)), "2.5"),
    ],
)
def test_bad_search_space(kwargs, match):
    fields = dict(num_hidden_layers=6, num_layers=(2, 4), intermediate_size=(16, 32), layer_mode="prefix")
    fields.update(kwargs)
    with pytest.raises(SearchSpaceError, match=match):
        SearchSpace(**fields)


def test_bad_search_space_dicts_and_json(tmp_path):
    good = PREFIX.to_dict()
    with pytest.raises(SearchSpaceError, match="'widths'.*allowed keys.*'intermediate_size'"):
        SearchSpace.from_dict({**good, "widths": [1]})
    with pytest.raises(SearchSpaceError, match="'num_layers'"):
        SearchSpace.from_dict({k: v for k, v in good.items() if k != "num_layers"})
    missing = tmp_path / "nope.json"
    with pytest.raises(SearchSpaceError, match="nope.json"):
        SearchSpace.from_json(missing)
    with pytest.raises(SearchSpaceError, match="not valid JSON"):
        SearchSpace.from_json("{not json")


@pytest.mark.parametrize(
    ("layers", "widths", "match"),
    [
        ([], [], "at least one layer"),
        ([0, 1], [64], "2 layers.*1 widths"),
        ([0, 2, 1], [8, 8, 8], "layers\\[2\\]=1 follows 2.*sort them ascending"),
        ([0, 0], [8, 8], "layers\\[1\\]=0 follows 0"),
        ([-1, 0], [8, 8], "layers\\[0\\]=-1 is negative"),
        ([0, 3], [8, 0], "intermediate_size\\[1\\]=0 \\(layer 3\\) must be positive"),
        ([0, 1], [8, "wide"], "'wide'"),
        ("01", [8, 8], "'01'"),
        ([0, 1.5], [8, 8], "1.5"),
    ],
)
def test_bad_subnet(layers, widths, match):
    with pytest.raises(SubnetError, match=match):
        SubnetConfig(layers=layers, intermediate_size=widths)


def test_bad_subnet_dicts_and_json(tmp_path):
    with pytest.raises(SubnetError, match="'depth'.*allowed keys.*'layers', 'intermediate_size'"):
        SubnetConfig.from_dict({"layers": [0], "intermediate_size": [8], "depth": 1})
    with pytest.raises(SubnetError, match="'intermediate_size'"):
        SubnetConfig.from_dict({"layers": [0]})
    missing = tmp_path / "missing_subnet.json"
    with pytest.raises(SubnetError, match="missing_subnet.json"):
        SubnetConfig.from_json(missing)
    with pytest.raises(SubnetError, match="missing_subnet.json"):
        SubnetConfig.from_json(str(missing))


@pytest.mark.parametrize(
    ("space", "subnet", "match"),
    [
        (PREFIX, SubnetConfig([0, 1, 2], [16, 16, 16]), "3 layers.*\\[2, 4, 6\\]"),
        (PREFIX, SubnetConfig([0, 2], [16, 16]), "prefix.*\\[0, 2\\]"),
        (PREFIX, SubnetConfig([0, 1], [16, 48]), "layer 1: intermediate_size 48 is not a choice"),
        (ANY, SubnetConfig([1, 6], [16, 16]), "layer 6 is out of range.*6 layers"),
        (ANY, SubnetConfig([1, 5], [24, 16]), "layer 1: intermediate_size 24"),
    ],
)
def test_subnet_outside_space(space, subnet, match):
    assert not space.contains(subnet)
    with pytest.raises(SubnetError, match=match):
        space.validate_subnet(subnet)
    with pytest.raises(SubnetError, match=match):
        space.encode(subnet)


def test_subnet_against_model():
    config = tiny_config(num_hidden_layers=30, intermediate_size=1536)
    with pytest.raises(SubnetError, match=r"layer 31 is out of range: the model has 30 layers \(indices 0..29\)"):
        SubnetConfig([0, 31], [8, 8]).validate_for(config)
    with pytest.raises(SubnetError, match="layer 3: intermediate_size 2048 exceeds the model's native 1536; "
                                          "choose a width <= 1536"):
        SubnetConfig([0, 3], [8, 2048]).validate_for(config)
    with pytest.raises(SubnetError, match="layer 31"):
        SubnetConfig([0, 31], [8, 8]).num_parameters(config)
    with pytest.raises(SubnetError, match="num_layers=31"):
        SubnetConfig.uniform(config, 31, 64)
    with pytest.raises(SubnetError, match="2048"):
        SubnetConfig.uniform(config, 2, 2048)
    with pytest.raises(SubnetError, match="'int4'.*'float32', 'float16', 'bfloat16', 'int8'"):
        SubnetConfig.full(config).num_bytes(config, "int4")
    with pytest.raises(SubnetError, match="'int8'"):
        SubnetConfig.full(config).num_bytes(config, "int8", other_dtype="int8")
    assert SubnetConfig([1, 3], [8, 16]).widths_by_layer(5) == (0, 8, 0, 16, 0)
    with pytest.raises(SubnetError, match="layer 3 is out of range"):
        SubnetConfig([1, 3], [8, 16]).widths_by_layer(3)


def test_model_dims():
    config = tiny_config(head_dim=16)
    dims = ModelDims.from_config(config)
    assert dims == ModelDims.from_config(config.to_dict())
    assert dims.head_dim == 16 and dims.intermediate_size == (64,) * 4 and dims.num_key_value_heads == 2
    minimal = {"hidden_size": 32, "intermediate_size": [8, 16], "num_hidden_layers": 2, "num_attention_heads": 4,
               "vocab_size": 10, "head_dim": None}
    dims = ModelDims.from_config(minimal)
    assert (dims.head_dim, dims.num_key_value_heads, dims.intermediate_size) == (8, 4, (8, 16))
    assert not (dims.tie_word_embeddings or dims.attention_bias or dims.mlp_bias)
    for name in ("hidden_size", "vocab_size", "num_hidden_layers"):
        with pytest.raises(SearchSpaceError, match=f"`{name}`"):
            ModelDims.from_config({k: v for k, v in minimal.items() if k != name})
    with pytest.raises(SearchSpaceError, match="3 intermediate sizes for 2 layers"):
        ModelDims.from_config({**minimal, "intermediate_size": [8, 8, 8]})
    assert SubnetConfig.full(minimal) == SubnetConfig([0, 1], [8, 16])
    assert SubnetConfig.uniform(config, 2, 32) == SubnetConfig([0, 1], [32, 32])


# ----- exact sizes against real models -----


def extracted_model(config: LlamaConfig, subnet: SubnetConfig) -> LlamaForCausalLM:
    """What extraction builds: the kept decoder layers, each MLP cut to its width."""
    model = LlamaForCausalLM(config)
    hidden = config.hidden_size
    kept = torch.nn.ModuleList()
    for layer, width in zip(subnet.layers, subnet.intermediate_size):
        block = model.model.layers[layer]
        block.mlp.gate_proj = torch.nn.Linear(hidden, width, bias=config.mlp_bias)
        block.mlp.up_proj = torch.nn.Linear(hidden, width, bias=config.mlp_bias)
        block.mlp.down_proj = torch.nn.Linear(width, hidden, bias=config.mlp_bias)
        kept.append(block)
    model.model.layers = kept
    return model


def state_dict_nbytes(model: torch.nn.Module) -> int:
    """Bytes of the model's tensors, tied (shared) tensors counted once."""
    seen, total = set(), 0
    for tensor in model.state_dict().values():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total


SUBNETS = [
    SubnetConfig([0, 1, 2, 3], [64, 64, 64, 64]),
    SubnetConfig([0, 1], [32, 32]),
    SubnetConfig([0, 2, 3], [64, 16, 48]),
    SubnetConfig([3], [8]),
]


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("subnet", SUBNETS, ids=lambda s: s.id)
def test_num_parameters_and_bytes_match_real_models(tie, bias, subnet):
    config = tiny_config(tie_word_embeddings=tie, attention_bias=bias, mlp_bias=bias)
    model = extracted_model(config, subnet)
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == tie
    params = sum(p.numel() for p in model.parameters())
    assert subnet.num_parameters(config) == params
    assert subnet.num_parameters(config.to_dict()) == params
    embeddings = model.model.embed_tokens.weight.numel() + (0 if tie else model.lm_head.weight.numel())
    assert subnet.num_parameters(config, include_embeddings=False) == params - embeddings
    assert subnet.num_bytes(config) == subnet.num_bytes(config, "float32") == state_dict_nbytes(model)
    assert subnet.num_bytes(config, "float16") == state_dict_nbytes(model.half())
    assert subnet.num_bytes(config, "bfloat16") == state_dict_nbytes(model.bfloat16())


def test_full_network_size_matches_llama():
    config = tiny_config(tie_word_embeddings=True)
    full = sum(p.numel() for p in LlamaForCausalLM(config).parameters())
    assert SubnetConfig.full(config).num_parameters(config) == full
    assert SubnetConfig.uniform(config, 2, 64).num_parameters(config) == sum(
        p.numel() for p in LlamaForCausalLM(tiny_config(tie_word_embeddings=True, num_hidden_layers=2)).parameters()
    )


@pytest.mark.parametrize(("tie", "bias", "other_dtype"), [(False, False, "float16"), (True, True, "float16"),
                                                          (False, True, "float32")])
def test_int8_bytes_match_bitsandbytes_checkpoint(tmp_path, tie, bias, other_dtype):
    pytest.importorskip("bitsandbytes")
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = tiny_config(tie_word_embeddings=tie, attention_bias=bias, mlp_bias=bias, num_hidden_layers=3)
    subnet = SubnetConfig.full(config)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "fp")
    quantized = AutoModelForCausalLM.from_pretrained(
        tmp_path / "fp",
        quantization_config=BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["lm_head"]),
        dtype=getattr(torch, other_dtype),
        device_map={"": "cpu"},
    )
    quantized.save_pretrained(tmp_path / "int8")
    total = 0
    for name in os.listdir(tmp_path / "int8"):
        if name.endswith(".safetensors"):
            with safe_open(tmp_path / "int8" / name, "pt") as handle:
                for key in handle.keys():
                    tensor = handle.get_tensor(key)
                    total += tensor.numel() * tensor.element_size()
    assert total == subnet.num_bytes(config, "int8", other_dtype=other_dtype)
    assert subnet.num_bytes(config, "int8") < subnet.num_bytes(config, "float16")
