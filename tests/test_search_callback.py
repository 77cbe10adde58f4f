"""LINASCallback inside a real (tiny) Trainer run: the search runs at the end and every N steps, writes its
results into the output directory and logs through the Trainer."""

from __future__ import annotations

import json

import torch
from transformers import Trainer, TrainerCallback

from hf_llama_nas.search import LINASCallback, perplexity_objective
from tests.training_helpers import quiet_args, tiny_elastic, token_blocks


def search_callback(**kwargs):
    objective = perplexity_objective(torch.arange(4, 36), context_length=16)
    return LINASCallback([objective, "params"], num_evals=8, population=4,
                         search_kwargs={"batch_size": 2, "inner_population": 12, "inner_generations": 3},
                         run_kwargs={"progress": False}, **kwargs)


class Recorder(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))


def test_callback_searches_after_training_and_logs(llama_dir, tmp_path):
    model = tiny_elastic(llama_dir)
    recorder = Recorder()
    callback = search_callback(every_n_steps=2)
    trainer = Trainer(model=model, args=quiet_args(tmp_path, max_steps=2), train_dataset=token_blocks(),
                      callbacks=[callback, recorder])
    callback.bind(trainer)
    trainer.train()
    final = tmp_path / "linas"
    assert (final / "results.jsonl").exists() and (tmp_path / "linas" / "step-2" / "results.jsonl").exists()
    pareto = json.loads((final / "pareto.json").read_text())
    assert pareto["num_evaluations"] == 8 and pareto["pareto"]
    logged = [log for log in recorder.logs if "nas/hypervolume" in log]
    assert len(logged) == 2 and logged[-1]["nas/evaluations"] == 8
    assert len(callback.results) == 2


def test_unbound_callback_appends_to_log_history(llama_dir, tmp_path):
    model = tiny_elastic(llama_dir)
    callback = search_callback()
    trainer = Trainer(model=model, args=quiet_args(tmp_path, max_steps=1), train_dataset=token_blocks(),
                      callbacks=[callback])
    trainer.train()
    assert any("nas/hypervolume" in entry for entry in trainer.state.log_history)
