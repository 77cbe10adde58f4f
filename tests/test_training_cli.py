"""`llama-nas finetune` on a tiny model and a text file: trains, saves an elastic checkpoint, refuses bad input."""

from __future__ import annotations

import json
import random

from hf_llama_nas.cli import main
from hf_llama_nas.modeling import ElasticLlamaForCausalLM

from .training_helpers import SPACE, single_thread  # noqa: F401 (autouse fixture)


def test_finetune_command_trains_and_saves(llama_dir, tmp_path, capsys):
    rng = random.Random(0)
    text = tmp_path / "train.txt"
    text.write_text(" ".join(f"w{rng.randrange(4, 96)}" for _ in range(2000)))
    space = tmp_path / "space.json"
    SPACE.to_json(space)
    output = tmp_path / "out"
    status = main(["finetune", llama_dir, "--data", str(text), "--strategy", "joint", "--output", str(output),
                   "--steps", "2", "--block-size", "16", "--batch-size", "2", "--search-space", str(space),
                   "--calibration-blocks", "4", "--lora", "--lora-rank", "4", "--logging-steps", "1", "--cpu"])
    assert status == 0
    model = ElasticLlamaForCausalLM.from_pretrained(output)
    assert model.search_space == SPACE
    assert sorted(model.config.nas_layer_drop_order) == [0, 1, 2, 3]
    assert not any("lora" in name for name, _ in model.named_parameters())
    plans = [json.loads(line) for line in (output / "instatune_subnets.jsonl").read_text().splitlines()]
    assert [p["step"] for p in plans] == [0, 1]

    assert main(["finetune", llama_dir, "--data", str(text), "--output", str(output)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["finetune", llama_dir, "--data", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "o2")]) == 2
    assert main(["finetune", llama_dir, "--data", str(text), "--strategy", "bogus", "--output", str(tmp_path / "o3")]) == 2
