"""Sharing on the Hub: the model card, the folder that would be pushed, and the push itself (Hub calls mocked)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bitsandbytes as bnb
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from hf_llama_nas import ElasticLlamaForCausalLM, LlamaNASError, LlamaNASForCausalLM, SearchSpace, SubnetConfig
from hf_llama_nas.export.hub import (
    load_results,
    model_card,
    prepare_hub_folder,
    push_checkpoint_to_hub,
    push_to_hub,
    results_from_lm_eval,
    template_path,
)
from hf_llama_nas.export.save import save_subnetwork

from .conftest import tiny_tokenizer

UNIFORM = SubnetConfig(layers=[0, 1, 2], intermediate_size=[64, 64, 64])
MIXED = SubnetConfig(layers=[0, 2, 3], intermediate_size=[128, 32, 32])
RESULTS = [
    {"task": "arc_easy", "metric": "acc", "value": 0.6125, "num_fewshot": 0, "limit": 300},
    {"task": "arc_easy", "metric": "acc_norm", "value": 0.5875, "num_fewshot": 0, "limit": 300},
    {"task": "mmlu", "metric": "acc", "value": 0.2675, "num_fewshot": 5},
    {"task": "my_private_task", "metric": "f1", "value": 0.4321},
]
HUB_PARENT = "HuggingFaceTB/SmolLM2-135M"


def elastic(path: str) -> ElasticLlamaForCausalLM:
    model = ElasticLlamaForCausalLM.from_pretrained(path).eval()
    model.search_space = SearchSpace.for_model(
        model.config, num_layers=[2, 3, 4], intermediate_size=[32, 64, 96, 128], layer_mode="any"
    )
    return model


@pytest.fixture(scope="module")
def supernet(llama_dir) -> ElasticLlamaForCausalLM:
    return elastic(llama_dir)


@pytest.fixture
def uniform(supernet) -> LlamaForCausalLM:
    return supernet.extract_subnetwork(UNIFORM).eval()


@pytest.fixture
def mixed(supernet) -> LlamaNASForCausalLM:
    return supernet.extract_subnetwork(MIXED).eval()


def front_matter(text: str) -> ModelCard:
    """Parse the card back as the Hub does: YAML metadata, model-index included."""
    assert text.startswith("---\n")
    return ModelCard(text)


def test_template_is_found():
    assert template_path().is_file()
    assert "{{ card_data }}" in template_path().read_text()


def test_card_of_uniform_subnet(uniform, llama_dir):
    card = model_card(uniform)
    text = str(card)
    assert llama_dir in text
    assert "| 0–2 | 3 | 64 |" in text
    assert f"{sum(p.numel() for p in uniform.parameters()):,}" in text
    assert "64 in every layer" in text
    assert 'AutoModelForCausalLM.from_pretrained("path/to/this/folder")' in text
    assert "trust_remote_code" not in text
    assert UNIFORM.id in text
    assert "No evaluation results" in text
    data = front_matter(text).data
    assert data.library_name == "transformers" and data.pipeline_tag == "text-generation"
    assert data.tags == ["llama", "hf_llama_nas", "neural-architecture-search"]
    assert data.base_model is None  # a local parent is no Hub id
    assert data.eval_results is None


def test_card_of_mixed_subnet_with_results(mixed, supernet):
    parent_params = SubnetConfig.full(supernet.config).num_parameters(supernet.config)
    card = model_card(
        mixed, parent=HUB_PARENT, results=RESULTS, repo_id="me/tiny-nas", parent_num_parameters=parent_params
    )
    text = str(card)
    assert f"[{HUB_PARENT}](https://huggingface.co/{HUB_PARENT})" in text
    for row in ("| 0 | 1 | 128 |", "| 2–3 | 2 | 32 |"):
        assert row in text
    assert '"layers": [0, 2, 3], "intermediate_size": [128, 32, 32]' in text
    assert 'AutoModelForCausalLM.from_pretrained("me/tiny-nas", trust_remote_code=True)' in text
    ratio = sum(p.numel() for p in mixed.parameters()) / parent_params
    assert f"{ratio:.1%} of the parent" in text
    rows = ("| arc_easy | acc | 0.6125 | 0 | 300 |", "| mmlu | acc | 0.2675 | 5 | all |", "| my_private_task | f1 |")
    for row in rows:
        assert row in text
    assert "bitsandbytes" not in text

    data = front_matter(text).data
    assert data.base_model == HUB_PARENT
    assert data.model_name == "me/tiny-nas"
    parsed = {(r.dataset_type, r.dataset_config, r.metric_type): r for r in data.eval_results}
    assert parsed[("allenai/ai2_arc", "ARC-Easy", "acc")].metric_value == 0.6125
    assert parsed[("allenai/ai2_arc", "ARC-Easy", "acc_norm")].metric_value == 0.5875
    assert parsed[("allenai/ai2_arc", "ARC-Easy", "acc")].dataset_args == {"num_fewshot": 0, "limit": 300}
    assert parsed[("cais/mmlu", "all", "acc")].metric_value == 0.2675
    assert parsed[("my_private_task", None, "f1")].dataset_name == "my_private_task"
    assert {r.task_type for r in data.eval_results} == {"text-generation"}


def test_card_reads_parent_facts_recorded_at_extraction(supernet):
    sub = supernet.extract_subnetwork(UNIFORM)
    sub.config.hf_llama_nas = {**sub.config.hf_llama_nas, "parent_num_parameters": 400_000, "parent_num_layers": 4}
    text = str(model_card(sub, int8=True))
    assert "keeps 3 of the parent's 4" in text
    ratio = sum(p.numel() for p in sub.parameters()) / 400_000
    assert f"{ratio:.1%} of the parent's 400,000" in text
    assert "bitsandbytes" in text and "Linear8bitLt" in text
    assert front_matter(text).data.tags[-2:] == ["8-bit", "bitsandbytes"]


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([{"task": "arc_easy", "value": 0.5}], "lacks \\['metric'\\]"),
        ([{"task": "arc_easy", "metric": "acc", "value": 0.5, "shots": 5}], "unknown keys \\['shots'\\]"),
        ([{"task": "arc_easy", "metric": "acc", "value": "high"}], "finite number"),
        ({"task": "arc_easy", "metric": "acc", "value": 0.5}, "list of dicts"),
    ],
)
def test_bad_results_are_refused(uniform, results, message):
    with pytest.raises(LlamaNASError, match=message):
        model_card(uniform, results=results)


def test_lm_eval_results_file(tmp_path):
    output = {
        "results": {
            "arc_easy": {"alias": "arc_easy", "acc,none": 0.61, "acc_stderr,none": 0.01, "acc_norm,none": 0.58},
            "mmlu": {"alias": "mmlu", "acc,none": 0.27, "acc_stderr,none": 0.004},
            "mmlu_anatomy": {"alias": " - anatomy", "acc,none": 0.3},
        },
        "group_subtasks": {"mmlu": ["mmlu_anatomy"], "arc_easy": []},
        "n-shot": {"arc_easy": 0, "mmlu": 5, "mmlu_anatomy": 5},
        "config": {"limit": 100},
    }
    expected = [
        {"task": "arc_easy", "metric": "acc", "value": 0.61, "num_fewshot": 0, "limit": 100},
        {"task": "arc_easy", "metric": "acc_norm", "value": 0.58, "num_fewshot": 0, "limit": 100},
        {"task": "mmlu", "metric": "acc", "value": 0.27, "num_fewshot": 5, "limit": 100},
    ]
    assert results_from_lm_eval(output) == expected
    path = tmp_path / "results.json"
    path.write_text(json.dumps(output))
    assert load_results(path) == expected
    path.write_text(json.dumps(RESULTS))
    assert load_results(path) == RESULTS
    path.write_text("{not json")
    with pytest.raises(LlamaNASError, match="not valid JSON"):
        load_results(path)
    with pytest.raises(LlamaNASError, match="does not exist"):
        load_results(tmp_path / "missing.json")


def test_prepared_folder_loads_with_plain_transformers(uniform, tmp_path, input_ids):
    folder = prepare_hub_folder(uniform, tmp_path / "hub", tokenizer=tiny_tokenizer(), results=RESULTS[:1])
    files = {p.name for p in folder.iterdir()}
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= files
    card = ModelCard.load(folder / "README.md")
    assert card.data.eval_results[0].metric_value == 0.6125
    loaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert type(loaded) is LlamaForCausalLM
    with torch.no_grad():
        assert torch.equal(loaded(input_ids).logits, uniform(input_ids).logits)


def test_prepared_folder_without_tokenizer_points_to_the_parent(mixed, tmp_path):
    folder = prepare_hub_folder(mixed, tmp_path / "hub", parent=HUB_PARENT)
    text = (folder / "README.md").read_text()
    assert f'AutoTokenizer.from_pretrained("{HUB_PARENT}")' in text
    assert "holds no tokenizer" in text
    assert not (folder / "tokenizer.json").exists()


def test_prepared_int8_folder_loads_as_8bit(tied_llama_dir, tmp_path):
    sub = elastic(tied_llama_dir).extract_subnetwork(MIXED).eval()
    folder = prepare_hub_folder(sub, tmp_path / "hub", int8=True)
    assert json.loads((folder / "config.json").read_text())["quantization_config"]["load_in_8bit"] is True
    assert "8-bit" in ModelCard.load(folder / "README.md").data.tags
    loaded = AutoModelForCausalLM.from_pretrained(folder)
    linears = [m for m in loaded.model.layers.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(isinstance(m, bnb.nn.Linear8bitLt) for m in linears)


def test_prepare_refuses_a_non_empty_folder(uniform, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LlamaNASError, match="not an empty directory"):
        prepare_hub_folder(uniform, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


class RecordingHub:
    """Stands in for the Hub: records the calls and keeps a copy of the uploaded folder."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, copy_to: Path):
        self.calls: list[tuple[str, dict]] = []
        self.copy_to = copy_to
        self.uploaded_from: Path | None = None
        monkeypatch.setattr(HfApi, "create_repo", self.create_repo)
        monkeypatch.setattr(HfApi, "upload_folder", self.upload_folder)

    def create_repo(self, repo_id: str, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        self.uploaded_from = Path(kwargs["folder_path"])
        shutil.copytree(self.uploaded_from, self.copy_to)
        return f"https://huggingface.co/{kwargs['repo_id']}/commit/0123abc"


def test_push_uploads_exactly_the_prepared_folder(monkeypatch, mixed, tmp_path, input_ids):
    hub = RecordingHub(monkeypatch, tmp_path / "uploaded")
    tokenizer = tiny_tokenizer()
    url = push_to_hub(mixed, "me/tiny-nas", tokenizer=tokenizer, results=RESULTS, private=True, token="hf_test")
    assert url == "https://huggingface.co/me/tiny-nas/commit/0123abc"
    (name, create), (name2, upload) = hub.calls
    assert (name, name2) == ("create_repo", "upload_folder")
    assert create["repo_id"] == "me/tiny-nas" and create["exist_ok"] is True and create["private"] is True
    assert upload["repo_id"] == "me/tiny-nas" and upload["commit_message"]
    assert not hub.uploaded_from.exists()  # the temporary folder is cleaned up

    expected = prepare_hub_folder(
        mixed, tmp_path / "expected", tokenizer=tokenizer, results=RESULTS, repo_id="me/tiny-nas"
    )
    uploaded = tmp_path / "uploaded"
    assert sorted(p.name for p in uploaded.iterdir()) == sorted(p.name for p in expected.iterdir())
    for name in sorted(p.name for p in expected.iterdir()):
        assert (uploaded / name).read_bytes() == (expected / name).read_bytes(), name
    assert "me/tiny-nas" in (uploaded / "README.md").read_text()
    loaded = AutoModelForCausalLM.from_pretrained(uploaded).eval()
    assert type(loaded) is LlamaNASForCausalLM
    with torch.no_grad():
        assert torch.equal(loaded(input_ids).logits, mixed(input_ids).logits)


def test_push_with_bad_results_creates_no_repo(monkeypatch, uniform, tmp_path):
    hub = RecordingHub(monkeypatch, tmp_path / "uploaded")
    with pytest.raises(LlamaNASError):
        push_to_hub(uniform, "me/tiny-nas", results=[{"task": "arc_easy"}])
    assert hub.calls == []


def test_push_checkpoint_uploads_the_saved_files_as_they_are(monkeypatch, tied_llama_dir, tmp_path):
    sub = elastic(tied_llama_dir).extract_subnetwork(UNIFORM).eval()
    checkpoint = save_subnetwork(sub, tmp_path / "int8", tokenizer=tiny_tokenizer(), int8=True)
    hub = RecordingHub(monkeypatch, tmp_path / "uploaded")
    url = push_checkpoint_to_hub(checkpoint, "me/tiny-nas-int8", results=RESULTS[:1])
    assert url.endswith("/commit/0123abc")
    create, upload = (kwargs for _, kwargs in hub.calls)
    assert create["exist_ok"] is True and upload["commit_message"].startswith("Upload INT8 sub-network with 3 layers")
    uploaded = tmp_path / "uploaded"
    assert sorted(p.name for p in uploaded.iterdir()) == sorted([*(p.name for p in checkpoint.iterdir()), "README.md"])
    for path in checkpoint.iterdir():
        assert (uploaded / path.name).read_bytes() == path.read_bytes(), path.name
    assert not (checkpoint / "README.md").exists()  # the card goes to the Hub, not into the user's checkpoint
    assert not list(checkpoint.parent.glob(".hf_llama_nas_push_*"))  # staging removed
    card = ModelCard.load(uploaded / "README.md")
    assert "8-bit" in card.data.tags and card.data.eval_results[0].metric_value == 0.6125
    loaded = AutoModelForCausalLM.from_pretrained(uploaded)
    assert isinstance(loaded.model.layers[0].mlp.up_proj, bnb.nn.Linear8bitLt)


def test_loaded_int8_model_is_pushed_as_a_checkpoint(tied_llama_dir, tmp_path):
    sub = elastic(tied_llama_dir).extract_subnetwork(UNIFORM)
    checkpoint = save_subnetwork(sub, tmp_path / "int8", int8=True)
    with pytest.raises(LlamaNASError, match="push_checkpoint_to_hub"):
        prepare_hub_folder(AutoModelForCausalLM.from_pretrained(checkpoint), tmp_path / "hub")
    (checkpoint / "README.md").write_text("my notes")
    with pytest.raises(LlamaNASError, match="already has a README.md"):
        push_checkpoint_to_hub(checkpoint, "me/x")
    with pytest.raises(LlamaNASError, match="no config.json"):
        push_checkpoint_to_hub(tmp_path / "missing", "me/x")
