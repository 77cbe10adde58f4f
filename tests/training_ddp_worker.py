"""One rank of the two-process DDP test (launched by torchrun from test_training_ddp.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from hf_llama_nas.training import InstaTuneTrainer

from tests.training_helpers import quiet_args, tiny_elastic, token_blocks


def main(llama_dir: str, output_dir: str) -> None:
    model = tiny_elastic(llama_dir)
    trainer = InstaTuneTrainer(
        model=model,
        args=quiet_args(output_dir, max_steps=4, per_device_train_batch_size=2, gradient_checkpointing=True,
                        nas_strategy="alternate"),
        train_dataset=token_blocks(),
    )
    seen: list[dict] = []
    original = trainer.compute_loss

    def spy(model_, inputs, **kwargs):
        seen.append({"step": trainer.state.global_step, "subnet": trainer._elastic.active_subnet.to_dict(),
                     "first_token": int(inputs["input_ids"][0, 0])})
        return original(model_, inputs, **kwargs)

    trainer.compute_loss = spy
    trainer.train()
    rank = dist.get_rank()
    checksum = sum(float(p.double().sum()) for p in model.parameters())
    result = {"rank": rank, "world_size": dist.get_world_size(), "backend": dist.get_backend(),
              "wrapped": type(trainer.model_wrapped).__name__, "seen": seen, "checksum": checksum,
              "layers_per_step": [len(s["subnet"]["layers"]) for s in seen]}
    Path(output_dir, f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    torch.manual_seed(0)
    main(sys.argv[1], sys.argv[2])
