"""Sliding-window perplexity: exact token accounting, equal to a hand computation, deterministic, model-agnostic."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaForCausalLM

from hf_llama_nas import ElasticLlamaForCausalLM, LlamaNASError, SearchSpace, SubnetConfig
from hf_llama_nas.evaluation import evaluate_perplexity, perplexity, sliding_windows

from .conftest import VOCAB, tiny_llama_config, tiny_tokenizer

NUM_TOKENS = 50
CONTEXT = 16


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_llama_config()).eval()


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    return torch.randint(4, VOCAB, (NUM_TOKENS,), generator=torch.Generator().manual_seed(3))


def token_nlls(model: torch.nn.Module, window: torch.Tensor) -> torch.Tensor:
    """NLL of tokens 1.. of one window given the tokens before them in the window."""
    with torch.no_grad():
        logits = model(window[None]).logits[0].double()
    return -logits.log_softmax(-1)[:-1].gather(-1, window[1:, None])[:, 0]


def test_disjoint_windows_equal_exp_mean_nll_by_hand(model, ids):
    nlls = torch.cat([token_nlls(model, ids[begin : begin + CONTEXT]) for begin in range(0, NUM_TOKENS, CONTEXT)])
    result = evaluate_perplexity(model, ids, context_length=CONTEXT, stride=CONTEXT, progress=False)
    # 50 tokens in windows of 16, 16, 16, 2: the first token of each window has no context
    assert result.num_scored_tokens == NUM_TOKENS - math.ceil(NUM_TOKENS / CONTEXT) == nlls.numel()
    assert result.num_tokens == NUM_TOKENS
    assert result.perplexity == pytest.approx(math.exp(nlls.mean().item()), rel=1e-6)
    assert result.mean_nll == pytest.approx(nlls.mean().item(), rel=1e-6)


def test_disjoint_windows_match_the_models_own_loss(model, ids):
    """The HF guide's recipe (labels = inputs, loss weighted by scored tokens) gives the same number."""
    total, count = 0.0, 0
    with torch.no_grad():
        for begin in range(0, NUM_TOKENS, CONTEXT):
            window = ids[begin : begin + CONTEXT][None]
            total += model(window, labels=window).loss.item() * (window.shape[1] - 1)
            count += window.shape[1] - 1
    assert perplexity(model, ids, context_length=CONTEXT, stride=CONTEXT, progress=False) == pytest.approx(
        math.exp(total / count), rel=1e-5
    )


def test_overlapping_windows_score_every_token_but_the_first_once(model, ids):
    stride = 6
    windows = sliding_windows(NUM_TOKENS, CONTEXT, stride)
    assert sum(num_new for _, _, num_new in windows) == NUM_TOKENS
    assert windows[0] == (0, CONTEXT, CONTEXT) and windows[-1][1] == NUM_TOKENS
    by_hand = []
    for begin, end, num_new in windows:
        nlls = token_nlls(model, ids[begin:end])
        by_hand.append(nlls[-min(num_new, nlls.numel()) :])
    by_hand = torch.cat(by_hand)
    result = evaluate_perplexity(model, ids, context_length=CONTEXT, stride=stride, progress=False)
    assert result.num_scored_tokens == NUM_TOKENS - 1 == by_hand.numel()
    assert result.perplexity == pytest.approx(math.exp(by_hand.mean().item()), rel=1e-6)


def test_max_tokens_takes_a_fixed_prefix(model, ids):
    capped = evaluate_perplexity(model, ids, max_tokens=20, context_length=CONTEXT, stride=8, progress=False)
    prefix = evaluate_perplexity(model, ids[:20], context_length=CONTEXT, stride=8, progress=False)
    assert capped == prefix
    assert capped.num_tokens == 20 and capped.num_scored_tokens == 19


def test_deterministic_and_batch_size_independent(model, ids):
    kwargs = dict(context_length=CONTEXT, stride=4, progress=False)
    first = perplexity(model, ids, **kwargs)
    assert perplexity(model, ids, **kwargs) == first
    assert perplexity(model, ids, batch_size=3, **kwargs) == pytest.approx(first, rel=1e-6)
    assert perplexity(model, ids.tolist(), **kwargs) == first
    assert perplexity(model, ids[None], **kwargs) == first


def test_tokenizer_and_text(model):
    tokenizer = tiny_tokenizer()
    text = " ".join(f"w{4 + (i * 7) % (VOCAB - 4)}" for i in range(40))
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert perplexity(model, tokenizer, text, context_length=CONTEXT, progress=False) == perplexity(
        model, ids, context_length=CONTEXT, progress=False
    )
    with pytest.raises(LlamaNASError, match="text"):
        perplexity(model, tokenizer)


def test_training_mode_is_restored(model, ids):
    model.train()
    try:
        perplexity(model, ids, context_length=CONTEXT, progress=False)
        assert model.training
    finally:
        model.eval()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(stride=CONTEXT + 1), "stride"), (dict(stride=0), "stride"), (dict(context_length=1, stride=1), "context_length"),
     (dict(max_tokens=1), "at least 2 tokens"), (dict(batch_size=0), "batch_size")],
)
def test_bad_arguments_raise(model, ids, kwargs, match):
    with pytest.raises(LlamaNASError, match=match):
        perplexity(model, ids, **{"context_length": CONTEXT, "progress": False, **kwargs})


def test_elastic_subnet_equals_extracted(llama_dir, ids):
    elastic = ElasticLlamaForCausalLM.from_pretrained(llama_dir).eval()
    elastic.search_space = SearchSpace.for_model(
        elastic.config, num_layers=[2, 3, 4], intermediate_size=[32, 64, 96, 128], layer_mode="any"
    )
    subnet = SubnetConfig(layers=[0, 2, 3], intermediate_size=[128, 32, 96])
    kwargs = dict(context_length=CONTEXT, stride=8, progress=False)
    with elastic.subnet(subnet):
        active = perplexity(elastic, ids, **kwargs)
    extracted = perplexity(elastic.extract_subnetwork(subnet), ids, **kwargs)
    assert active == pytest.approx(extracted, rel=1e-5)
    assert active != pytest.approx(perplexity(elastic, ids, **kwargs), rel=1e-3)


def test_shared_data_dir_env_var(monkeypatch, tmp_path):
    from hf_llama_nas import data

    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(LlamaNASError, match=data.DATA_ENV_VAR):
        data.shared_data_dir()
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path))
    assert data.shared_data_dir() == tmp_path.resolve()
    with pytest.raises(LlamaNASError, match="WikiText-2"):
        data.wikitext2_test_text()
    (tmp_path / "text/wikitext-2-raw").mkdir(parents=True)
    (tmp_path / "text/wikitext-2-raw/wiki.test.raw").write_text(" = A = \n b c\n", encoding="utf-8")
    assert data.wikitext2_test_text() == " = A = \n b c\n"
    with pytest.raises(LlamaNASError, match="GGUF"):
        data.smollm2_gguf_path()
