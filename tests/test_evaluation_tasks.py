"""The offline task pack, `evaluate`, `llama-nas evaluate` and their errors (tiny random Llama, real eval files)."""

from __future__ import annotations

import gc
import json
import shutil

import pytest
import torch

from hf_llama_nas import ElasticLlamaConfig, ElasticLlamaForCausalLM, LlamaNASError, SearchSpace, SubnetConfig
from hf_llama_nas.cli import main
from hf_llama_nas.data import shared_data_dir
from hf_llama_nas.evaluation import PACK_TASKS, ElasticLlamaLM, TaskDataError, UnknownTaskError, evaluate
from hf_llama_nas.evaluation import task_data

from .conftest import tiny_llama_config, tiny_tokenizer



def _has_eval_data() -> bool:
    try:
        return (shared_data_dir() / "eval").is_dir()
    except LlamaNASError:
        return False


pytestmark = pytest.mark.skipif(not _has_eval_data(), reason="needs the evaluation files of ../shared/data")


@pytest.fixture(scope="module")
def model() -> ElasticLlamaForCausalLM:
    torch.manual_seed(0)
    config = ElasticLlamaConfig(**tiny_llama_config().to_dict())
    elastic = ElasticLlamaForCausalLM(config).eval()
    elastic.search_space = SearchSpace.for_model(config, num_layers=[2, 3, 4], intermediate_size=[64, 128], layer_mode="any")
    return elastic


def test_every_pack_task_loads_and_runs_on_a_few_items(model):
    scores = evaluate(model, None, list(PACK_TASKS), limit=1, tokenizer=tiny_tokenizer())
    for task in PACK_TASKS:
        assert 0.0 <= scores[task]["acc"] <= 1.0
    for task in ("arc_easy", "arc_challenge", "piqa", "hellaswag_subset"):
        assert "acc_norm" in scores[task] and scores[task]["num_samples"] == 1
    assert scores["mmlu"]["num_samples"] == 57
    assert {"mmlu_stem", "mmlu_humanities", "mmlu_social_sciences", "mmlu_other", "mmlu_anatomy"} <= scores.keys()


def test_pack_rows_follow_lm_eval_schemas():
    arc = task_data.arc_easy()["test"]
    assert len(arc) == 2376 and arc[0]["choices"]["label"] == ["A", "B", "C", "D"]
    assert not arc[0]["question"].startswith("Question:")
    assert len(task_data.piqa()["validation"]) == 1838
    boolq = task_data.boolq()["validation"][0]
    assert not boolq["question"].endswith("?") and not boolq["passage"].startswith("Passage:")
    mmlu = task_data.mmlu("anatomy")
    assert len(mmlu["dev"]) == 5 and mmlu["test"][0]["answer"] in range(4)
    truthful = task_data.truthfulqa()["validation"]
    assert len(truthful) == 817 and truthful[0]["mc1_targets"]["labels"][0] == 1


def test_subnet_is_active_during_evaluation_then_restored(model):
    subnet = SubnetConfig(layers=[0, 1, 3], intermediate_size=[64, 128, 64])
    tokenizer = tiny_tokenizer()
    lm = ElasticLlamaLM(model, tokenizer=tokenizer, batch_size=8)
    model.train()
    full = evaluate(lm, None, ["arc_easy"], limit=6, return_raw=True)
    assert model.training  # the caller's mode (e.g. mid-training) is restored
    model.eval()
    narrow = evaluate(lm, subnet, ["arc_easy"], limit=6, return_raw=True)
    assert model.active_subnet == SubnetConfig.full(model.config)

    def loglikelihoods(scores):
        return [resp[0][0] for s in scores["_lm_eval"]["samples"]["arc_easy"] for resp in s["resps"]]

    assert loglikelihoods(full) != loglikelihoods(narrow)
    with model.subnet(subnet):
        direct = lm._loglikelihood_tokens(
            [(None, *lm._encode_pair(*args)) for s in narrow["_lm_eval"]["samples"]["arc_easy"] for args in s["arguments"]],
            disable_tqdm=True,
        )
    assert [ll for ll, _ in direct] == pytest.approx(loglikelihoods(narrow), abs=1e-4)


def test_memory_stays_flat_over_repeated_evaluations(model):
    """Switching sub-networks and re-evaluating leaves no tensors behind (no growing caches)."""
    tokenizer = tiny_tokenizer()
    subnets = [None, SubnetConfig(layers=[0, 2], intermediate_size=[64, 64]), SubnetConfig(layers=[1, 2, 3], intermediate_size=[128, 64, 128])]

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))

    evaluate(model, subnets[1], ["winogrande"], limit=3, tokenizer=tokenizer)
    before = live_tensors()
    for round_ in range(2):
        evaluate(model, subnets[round_ % 3], ["winogrande"], limit=3, tokenizer=tokenizer)
    assert live_tensors() <= before


def test_unknown_task_names_the_fix(model):
    with pytest.raises(UnknownTaskError, match="arc_easy"):
        evaluate(model, None, ["arc_eazy"], limit=1, tokenizer=tiny_tokenizer())


def test_missing_data_file_is_named(model, tmp_path):
    with pytest.raises(TaskDataError, match="arc_easy.jsonl is missing"):
        evaluate(model, None, ["arc_easy"], limit=1, tokenizer=tiny_tokenizer(), data_dir=tmp_path)


@pytest.mark.parametrize(
    ("loader", "relative", "bad_line", "message"),
    [
        ("arc_easy", task_data.ARC_DIR / "arc_easy.jsonl", '{"query": "Question: x", "choices": ["a"], "gold": 3}', "line 3: 'gold'"),
        ("winogrande", task_data.WINOGRANDE_FILE, '{"context_options": ["a"], "continuation": "b", "gold": 0}', "line 3: 'context_options'"),
        ("boolq", task_data.BOOLQ_FILE, "{not json", "line 3: not valid JSON"),
    ],
)
def test_malformed_row_is_named(tmp_path, loader, relative, bad_line, message):
    source = shared_data_dir() / relative
    target = tmp_path / relative
    target.parent.mkdir(parents=True)
    lines = source.read_text(encoding="utf-8").splitlines()[:4]
    lines[2] = bad_line
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=message):
        task_data.LOADERS[loader](data_dir=tmp_path)


def test_malformed_mmlu_row_is_named(tmp_path):
    for split in ("dev", "test"):
        (tmp_path / task_data.MMLU_DIR / split).mkdir(parents=True)
        shutil.copy(shared_data_dir() / task_data.MMLU_DIR / split / f"anatomy_{split}.csv", tmp_path / task_data.MMLU_DIR / split)
    test_file = tmp_path / task_data.MMLU_DIR / "test" / "anatomy_test.csv"
    test_file.write_text(test_file.read_text(encoding="utf-8") + "A question,a,b,c,d,E\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"anatomy_test.csv, row 136: the answer must be A, B, C or D"):
        task_data.mmlu("anatomy", data_dir=tmp_path)


def test_cli_evaluate(llama_dir, tmp_path, capsys):
    subnet = tmp_path / "subnet.json"
    subnet.write_text(json.dumps({"layers": [0, 1, 3], "intermediate_size": [128, 64, 128]}))
    output = tmp_path / "scores.json"
    status = main(["evaluate", llama_dir, "--tasks", "piqa", "--subnet", str(subnet), "--limit", "3", "--output", str(output)])
    assert status == 0
    report = json.loads(output.read_text())
    assert report["subnet"]["layers"] == [0, 1, 3] and report["results"]["piqa"]["num_samples"] == 3
    assert "piqa" in capsys.readouterr().out
    assert main(["evaluate", llama_dir, "--tasks", "no_such_task"]) == 2
    assert "Unknown task 'no_such_task'" in capsys.readouterr().err
