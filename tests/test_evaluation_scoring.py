"""Prefix-shared scoring equals lm-eval's stock HF model request by request (tiny random Llama, fp32)."""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from hf_llama_nas import ElasticLlamaConfig, ElasticLlamaForCausalLM, SubnetConfig
from hf_llama_nas.evaluation import ElasticLlamaLM
from hf_llama_nas.evaluation.prefix_scoring import model_input, pack_requests

from .conftest import tiny_llama_config, tiny_tokenizer

TOLERANCE = 1e-4


def make_model(attn: str = "sdpa") -> ElasticLlamaForCausalLM:
    torch.manual_seed(0)
    config = ElasticLlamaConfig(**tiny_llama_config().to_dict())
    config._attn_implementation = attn
    return ElasticLlamaForCausalLM(config).eval()


def random_requests(seed: int, questions: int, max_context: int, max_continuation: int) -> list:
    """Multiple-choice-like requests: 2-5 continuations (1..max_continuation tokens) per random context."""
    generator = torch.Generator().manual_seed(seed)

    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    requests = []
    for _ in range(questions):
        context = torch.randint(4, 96, (draw(1, max_context),), generator=generator).tolist()
        for _ in range(draw(2, 5)):
            continuation = torch.randint(4, 96, (draw(1, max_continuation),), generator=generator).tolist()
            requests.append((None, context, continuation))
    return requests


def both(model: ElasticLlamaForCausalLM, batch_size: int = 4, **kwargs) -> tuple[ElasticLlamaLM, HFLM]:
    tokenizer = tiny_tokenizer()
    engine = ElasticLlamaLM(model, tokenizer=tokenizer, batch_size=batch_size, **kwargs)
    stock = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, **kwargs)
    return engine, stock


def assert_same(engine_results: list, stock_results: list) -> None:
    assert len(engine_results) == len(stock_results)
    for (ll_a, greedy_a), (ll_b, greedy_b) in zip(engine_results, stock_results):
        assert abs(ll_a - ll_b) <= TOLERANCE
        assert greedy_a == greedy_b


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_equals_stock_hflm_with_padding_and_many_questions_per_batch(attn):
    engine, stock = both(make_model(attn), batch_size=7)
    requests = random_requests(seed=1, questions=8, max_context=30, max_continuation=6)
    assert_same(engine._loglikelihood_tokens(requests, disable_tqdm=True), stock._loglikelihood_tokens(requests, disable_tqdm=True))


def test_equals_stock_hflm_when_truncated_at_the_context_limit():
    engine, stock = both(make_model(), batch_size=5, max_length=24)
    requests = random_requests(seed=2, questions=6, max_context=40, max_continuation=8)
    requests.append((None, list(range(4, 30)), list(range(30, 54))))  # continuation fills the whole window
    assert any(len(context) + len(continuation) > 25 for _, context, continuation in requests)
    assert_same(engine._loglikelihood_tokens(requests, disable_tqdm=True), stock._loglikelihood_tokens(requests, disable_tqdm=True))


def test_single_token_continuations_share_one_position():
    engine, stock = both(make_model(), batch_size=8)
    requests = [(None, [5, 6, 7, 8], [token]) for token in (10, 11, 12, 13)]
    requests += [(None, [5, 6, 9], [token]) for token in (10, 11)]
    rows = pack_requests(requests, max_length=128, max_requests_per_row=8, max_tokens_per_row=64)
    assert len(rows) == 1 and len(rows[0]) == 5  # 5 6 7 8 and the branch 9, each computed once
    assert_same(engine._loglikelihood_tokens(requests, disable_tqdm=True), stock._loglikelihood_tokens(requests, disable_tqdm=True))


def test_trie_computes_each_shared_prefix_once_and_masks_other_branches():
    requests = [(None, [4, 5, 6], [7, 8]), (None, [4, 5, 6], [9, 10, 11]), (None, [4, 5, 12], [13])]
    (row,) = pack_requests(requests, max_length=128, max_requests_per_row=8, max_tokens_per_row=64)
    # inputs: 4 5 6 7 | 4 5 6 9 10 | 4 5 12 -> trie 4 5 {6 {7, 9 10}, 12}
    assert row.tokens == [4, 5, 6, 7, 9, 10, 12]
    assert row.depths == [0, 1, 2, 3, 3, 4, 2]
    mask = row.attention_mask()
    assert mask[5].tolist() == [True, True, True, False, True, True, False]  # 10 sees 4 5 6 9 and itself
    assert mask[6].tolist() == [True, True, False, False, False, False, True]  # 12 sees only 4 5
    nodes = dict(zip(row.request_ids, row.request_nodes))
    assert nodes[0] == [2, 3] and nodes[1] == [2, 4, 5] and nodes[2] == [6]


def test_rows_respect_request_and_token_caps():
    requests = random_requests(seed=3, questions=10, max_context=20, max_continuation=4)
    rows = pack_requests(requests, max_length=128, max_requests_per_row=6, max_tokens_per_row=40)
    assert sorted(i for row in rows for i in row.request_ids) == list(range(len(requests)))
    for row in rows:
        first_input = model_input(requests[row.request_ids[0]][1], requests[row.request_ids[0]][2], 128)[0]
        assert len(row.request_ids) <= 6
        assert len(row) <= max(40, 2 * len(first_input))
    for row in rows:
        for index, nodes, targets in zip(row.request_ids, row.request_nodes, row.request_targets):
            tokens, expected_targets = model_input(requests[index][1], requests[index][2], 128)
            assert targets == expected_targets
            assert [row.tokens[n] for n in nodes] == tokens[len(tokens) - len(targets) :]


def test_prompts_longer_than_the_row_cap_still_share_their_prefix():
    """Like 5-shot MMLU on long subjects: each prompt exceeds the cap, its choices and the shared shots are packed once."""
    shots = list(range(4, 60))
    requests = [(None, shots + [60 + q, 70 + q], [token]) for q in range(3) for token in (80, 81, 82, 83)]
    rows = pack_requests(requests, max_length=128, max_requests_per_row=12, max_tokens_per_row=16)
    assert len(rows) == 1 and len(rows[0]) == len(shots) + 3 * 2
    engine, stock = both(make_model(), batch_size=12)
    engine.max_tokens_per_row = 16
    assert_same(engine._loglikelihood_tokens(requests, disable_tqdm=True), stock._loglikelihood_tokens(requests, disable_tqdm=True))


def test_text_requests_with_shared_and_partial_contexts_match_stock():
    """Through lm-eval's own tokenisation: shared questions, WinoGrande-like contexts, an empty context."""
    engine, stock = both(make_model(), batch_size=6)
    pairs = [
        ("w4 w5 w6 w7", " w8 w9"),
        ("w4 w5 w6 w7", " w10"),
        ("w4 w5 w6 w7 ", "w11 w12 w13"),
        ("w20 w21 w22 w30", " w40 w41"),
        ("w20 w21 w22 w31", " w40 w41"),
        ("", "w50 w51"),
    ]
    instances = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    assert_same(engine.loglikelihood(instances, disable_tqdm=True), stock.loglikelihood(instances, disable_tqdm=True))


def test_active_subnet_is_evaluated_and_switching_reloads_nothing():
    model = make_model()
    engine, stock = both(model, batch_size=4)
    requests = random_requests(seed=4, questions=4, max_context=12, max_continuation=3)
    full = engine._loglikelihood_tokens(requests, disable_tqdm=True)
    weights = {name: p.data_ptr() for name, p in model.named_parameters()}
    subnet = SubnetConfig(layers=[0, 2, 3], intermediate_size=[64, 128, 32])
    engine.set_subnet(subnet, check_space=False)
    assert model.active_subnet == subnet
    narrow = engine._loglikelihood_tokens(requests, disable_tqdm=True)
    assert_same(narrow, stock._loglikelihood_tokens(requests, disable_tqdm=True))
    assert max(abs(a[0] - b[0]) for a, b in zip(full, narrow)) > 1e-3
    engine.set_subnet(None)
    assert_same(engine._loglikelihood_tokens(requests, disable_tqdm=True), full)
    assert weights == {name: p.data_ptr() for name, p in model.named_parameters()}


def test_stock_path_is_kept_when_prefix_sharing_is_off():
    engine, stock = both(make_model(), batch_size=3, prefix_sharing=False)
    requests = random_requests(seed=5, questions=3, max_context=10, max_continuation=3)
    assert engine._loglikelihood_tokens(requests, disable_tqdm=True) == stock._loglikelihood_tokens(requests, disable_tqdm=True)


def test_registered_in_lm_eval_and_loads_from_a_path(llama_dir, tmp_path):
    from lm_eval.api.registry import get_model

    subnet = tmp_path / "subnet.json"
    subnet.write_text('{"layers": [0, 3], "intermediate_size": [128, 64]}')
    lm_class = get_model("elastic-llama")
    assert lm_class is ElasticLlamaLM and get_model("hf-llama-nas") is ElasticLlamaLM
    lm = lm_class.create_from_arg_string(f"pretrained={llama_dir},subnet={subnet},check_space=false", {"batch_size": 2, "device": "cpu"})
    assert isinstance(lm.model, ElasticLlamaForCausalLM)
    assert lm.active_subnet == SubnetConfig(layers=[0, 3], intermediate_size=[128, 64])
