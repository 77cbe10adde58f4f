"""The `llama-nas` command line, run in-process on tiny checkpoints (and once as a real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bitsandbytes as bnb
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaForCausalLM

from hf_llama_nas import ElasticLlamaForCausalLM, LlamaNASForCausalLM, SearchSpace, SubnetConfig
from hf_llama_nas.cli import main

from .conftest import tiny_llama_config

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE = {"num_hidden_layers": 4, "num_layers": [2, 3, 4], "intermediate_size": [32, 64, 96, 128], "layer_mode": "any"}
UNIFORM = {"layers": [0, 1, 2], "intermediate_size": [64, 64, 64]}
MIXED = {"layers": [0, 2, 3], "intermediate_size": [128, 32, 96]}


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    """JSON inputs of the commands, written as a user would."""
    paths = {}
    for name, data in {"space": SPACE, "uniform": UNIFORM, "mixed": MIXED}.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data))
        paths[name] = str(path)
    return paths


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what the test's own setup printed
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("error: "), err
    for fragment in fragments:
        assert fragment in message, err


def test_info_on_a_plain_llama(capsys, llama_dir):
    config = tiny_llama_config()
    full = SubnetConfig.full(config)
    space = SearchSpace.for_model(config)
    code, out, _ = run(capsys, "info", llama_dir)
    assert code == 0
    assert "model type           llama" in out
    assert "layers               4" in out
    assert "attention heads      4 (key/value heads: 2)" in out
    assert "MLP width            128" in out
    assert f"{full.num_parameters(config):,} total" in out
    assert f"{full.num_parameters(config, include_embeddings=False):,} non-embedding" in out
    assert "default for this model" in out
    assert f"sub-networks         {space.num_subnets():,} ({space.num_subnets():.2e})" in out
    assert f"gene encodings       {space.num_encodings():,}" in out


def test_info_with_a_search_space_file_as_json(capsys, llama_dir, files):
    config = tiny_llama_config()
    space = SearchSpace.from_dict(SPACE)
    code, out, _ = run(capsys, "info", llama_dir, "--search-space", files["space"], "--json")
    assert code == 0
    info = json.loads(out)
    assert info["num_parameters"] == SubnetConfig.full(config).num_parameters(config)
    assert info["bytes"]["int8"] == SubnetConfig.full(config).num_bytes(config, "int8")
    assert info["search_space"]["num_layers"] == [2, 3, 4]
    assert info["search_space"]["intermediate_size"] == [32, 64, 96, 128]
    assert info["search_space"]["num_subnets"] == space.num_subnets() == 608
    assert info["search_space"]["num_encodings"] == space.num_encodings() == 625
    code, out, _ = run(capsys, "info", llama_dir, "--search-space", files["space"])
    assert "sub-networks         608 (6.08e+02)" in out and "layer mode           any" in out


def test_info_reads_the_space_stored_in_an_elastic_checkpoint(capsys, llama_dir, tmp_path):
    model = ElasticLlamaForCausalLM.from_pretrained(llama_dir, search_space=SearchSpace.from_dict(SPACE))
    model.save_pretrained(tmp_path)
    code, out, _ = run(capsys, "info", str(tmp_path))
    assert code == 0
    assert "model type           elastic_llama" in out
    assert "stored in the checkpoint" in out and "MLP width choices    32, 64, 96, 128" in out


def test_extract_uniform_saves_plain_llama(capsys, llama_dir, files, tmp_path):
    out_dir = tmp_path / "uniform"
    code, out, _ = run(capsys, "extract", llama_dir, "--subnet", files["uniform"], "--output", str(out_dir))
    assert code == 0
    assert "Saved LlamaForCausalLM" in out and "3 of 4" in out and "% of the parent's" in out
    config = json.loads((out_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["intermediate_size"] == 64
    assert config["hf_llama_nas"]["parent_num_layers"] == 4
    assert (out_dir / "tokenizer.json").is_file()
    assert type(AutoModelForCausalLM.from_pretrained(out_dir)) is LlamaForCausalLM


def test_extract_mixed_in_space_saves_llama_nas(capsys, llama_dir, files, tmp_path, input_ids):
    out_dir = tmp_path / "mixed"
    code, out, _ = run(
        capsys, "extract", llama_dir, "--subnet", files["mixed"], "--search-space", files["space"],
        "--output", str(out_dir), "--dtype", "float32",
    )
    assert code == 0 and "trust_remote_code=True" in out
    config = json.loads((out_dir / "config.json").read_text())
    assert config["model_type"] == "llama_nas" and config["intermediate_size"] == [128, 32, 96]
    loaded = AutoModelForCausalLM.from_pretrained(out_dir).eval()
    assert type(loaded) is LlamaNASForCausalLM
    model = ElasticLlamaForCausalLM.from_pretrained(llama_dir).eval()
    with torch.no_grad(), model.subnet(MIXED, check_space=False):
        assert (loaded(input_ids).logits - model(input_ids).logits).abs().max() <= 1e-5


def test_extract_and_push_int8(capsys, monkeypatch, tied_llama_dir, files, tmp_path):
    out_dir = tmp_path / "int8"
    code, out, err = run(
        capsys, "extract", tied_llama_dir, "--subnet", files["mixed"], "--output", str(out_dir), "--int8"
    )
    assert code == 0 and "(INT8)" in out
    assert "holds no tokenizer" in err  # said, not silently skipped
    loaded = AutoModelForCausalLM.from_pretrained(out_dir)
    linears = [m for m in loaded.model.layers.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(isinstance(m, bnb.nn.Linear8bitLt) for m in linears)

    uploaded = tmp_path / "uploaded"
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: None)
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kwargs: shutil.copytree(kwargs["folder_path"], uploaded))
    code, out, _ = run(capsys, "push", str(out_dir), "me/tiny-nas-int8")
    assert code == 0 and "me/tiny-nas-int8" in out
    card = ModelCard.load(uploaded / "README.md")
    assert "8-bit" in card.data.tags and "trust_remote_code=True" in card.text
    loaded = AutoModelForCausalLM.from_pretrained(uploaded)
    assert isinstance(loaded.model.layers[0].mlp.up_proj, bnb.nn.Linear8bitLt)


def test_extract_overwrite(capsys, llama_dir, files, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "old.txt").write_text("old")
    code, _, err = run(capsys, "extract", llama_dir, "--subnet", files["uniform"], "--output", str(out_dir))
    assert_usage_error(code, err, "is not empty", "--overwrite")
    assert sorted(os.listdir(out_dir)) == ["old.txt"]
    code, _, _ = run(
        capsys, "extract", llama_dir, "--subnet", files["uniform"], "--output", str(out_dir), "--overwrite"
    )
    assert code == 0 and (out_dir / "config.json").is_file()


def test_non_llama_checkpoint_is_refused(capsys, tmp_path, files):
    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)).save_pretrained(gpt2)
    code, _, err = run(capsys, "info", str(gpt2))
    assert_usage_error(code, err, "'gpt2' model", "Llama")
    code, _, err = run(capsys, "extract", str(gpt2), "--subnet", files["uniform"], "--output", str(tmp_path / "o"))
    assert_usage_error(code, err, "'gpt2' model", "Llama")
    assert not (tmp_path / "o").exists()


def test_missing_model_path(capsys, tmp_path, files):
    missing = str(tmp_path / "no" / "such-model")
    code, _, err = run(capsys, "info", missing)
    assert_usage_error(code, err, "does not exist", "Hub id")
    code, _, err = run(capsys, "extract", missing, "--subnet", files["uniform"], "--output", str(tmp_path / "o"))
    assert_usage_error(code, err, "does not exist")


def test_subnet_outside_the_space_names_layer_and_value(capsys, llama_dir, files, tmp_path):
    subnet = tmp_path / "outside.json"
    subnet.write_text(json.dumps({"layers": [0, 1, 3], "intermediate_size": [64, 64, 48]}))
    code, _, err = run(
        capsys, "extract", llama_dir, "--subnet", str(subnet), "--search-space", files["space"],
        "--output", str(tmp_path / "o"),
    )
    assert_usage_error(code, err, "layer 3", "48", "choose one of [32, 64, 96, 128]")
    missing = str(tmp_path / "nope.json")
    code, _, err = run(capsys, "extract", llama_dir, "--subnet", missing, "--output", str(tmp_path / "o"))
    assert_usage_error(code, err, "does not exist")


def test_search_space_with_unknown_key(capsys, llama_dir, tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({**SPACE, "num_heads": [2, 4]}))
    code, _, err = run(capsys, "info", llama_dir, "--search-space", str(space))
    assert_usage_error(code, err, "Unknown search space key(s) ['num_heads']", "allowed keys")


def test_argparse_errors_return_2(capsys):
    assert main(["extract", "model"]) == 2
    assert "--subnet" in capsys.readouterr().err


def test_push(capsys, monkeypatch, llama_dir, files, tmp_path):
    out_dir = tmp_path / "mixed"
    assert main(["extract", llama_dir, "--subnet", files["mixed"], "--output", str(out_dir)]) == 0
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"task": "arc_easy", "metric": "acc", "value": 0.55, "num_fewshot": 0}]))
    uploaded = tmp_path / "uploaded"
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = {"repo_id": repo_id, **kwargs}

    def upload_folder(self, **kwargs):
        calls["upload_folder"] = kwargs
        shutil.copytree(kwargs["folder_path"], uploaded)
        return "https://huggingface.co/me/tiny-nas/commit/abc"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    code, out, _ = run(capsys, "push", str(out_dir), "me/tiny-nas", "--private", "--results", str(results))
    assert code == 0 and "https://huggingface.co/me/tiny-nas/commit/abc" in out
    assert calls["create_repo"]["private"] is True and calls["upload_folder"]["repo_id"] == "me/tiny-nas"
    card = ModelCard.load(uploaded / "README.md")
    assert card.data.eval_results[0].metric_value == 0.55
    assert "of the parent's 4" in card.text  # the parent's depth recorded by extract reaches the card
    assert "% of the parent's" in card.text
    assert type(AutoModelForCausalLM.from_pretrained(uploaded)) is LlamaNASForCausalLM

    code, _, err = run(capsys, "push", str(tmp_path / "nothing"), "me/tiny-nas")
    assert_usage_error(code, err, "no config.json", "llama-nas extract")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"task": "arc_easy", "value": 0.5}]))
    code, _, err = run(capsys, "push", str(out_dir), "me/tiny-nas", "--results", str(bad))
    assert_usage_error(code, err, "lacks ['metric']")


def test_console_entry_point_in_a_subprocess(llama_dir):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "hf_llama_nas.cli", "info", llama_dir, "--json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["num_hidden_layers"] == 4
    done = subprocess.run(
        [sys.executable, "-m", "hf_llama_nas.cli", "info", "/no/such/model"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
