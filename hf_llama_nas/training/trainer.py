"""`InstaTuneTrainer`: the stock `transformers.Trainer`, training an elastic super-network's sub-networks too.

Only the training step, evaluation, logging and checkpoint hooks are overridden; the optimizer, scheduler,
gradient accumulation, mixed precision, gradient checkpointing, accelerate/DDP and checkpointing are the
Trainer's own. Per optimizer step the strategy (see `InstaTuneArguments`) yields a plan: the networks to run,
each with its loss weight and role (teacher, distilled student). Each planned network runs forward *and*
backward before the next one starts (with that sub-network still active, which gradient checkpointing's
recomputation needs), so several networks per step cost time but not several networks' activation memory.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer
from transformers.trainer_pt_utils import nested_gather

from ..errors import LlamaNASError
from ..modeling import ElasticLlamaForCausalLM
from ..search_space import SearchSpace, SubnetConfig
from .arguments import InstaTuneArguments
from .errors import InstaTuneError
from .sampler import SubnetSampler, layer_drop_order_of

logger = logging.getLogger(__name__)

#: JSON-lines record, in `output_dir`, of the networks every optimizer step trained (written by the main process).
SUBNET_LOG_FILE = "instatune_subnets.jsonl"


@dataclass(frozen=True)
class PlannedNetwork:
    """One network of a step's plan. `subnet=None` is the full network."""

    role: str
    subnet: SubnetConfig | None
    loss_weight: float = 1.0
    teacher: bool = False
    distilled: bool = False


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
                      temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the next-token distributions at `temperature`, times T^2, averaged over the
    positions that have a label (`labels != -100`, shifted as the causal-LM loss shifts them)."""
    student = F.log_softmax(student_logits[:, :-1].float() / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits[:, :-1].float() / temperature, dim=-1)
    per_token = F.kl_div(student, teacher, log_target=True, reduction="none").sum(-1)
    if labels is None:
        mask = torch.ones_like(per_token)
    else:
        mask = (labels[:, 1:] != -100).to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0) * temperature**2


def elastic_model_of(model: nn.Module) -> ElasticLlamaForCausalLM:
    """The `ElasticLlamaForCausalLM` inside `model` (itself, or the base model of a PEFT model), or a clear error."""
    inner = model
    while not isinstance(inner, ElasticLlamaForCausalLM):
        if hasattr(inner, "get_base_model"):
            inner = inner.get_base_model()
        elif hasattr(inner, "module") and isinstance(inner.module, nn.Module):
            inner = inner.module
        else:
            raise InstaTuneError(
                f"InstaTuneTrainer trains an elastic super-network, got a {type(model).__name__}: load the model with "
                "hf_llama_nas.ElasticLlamaForCausalLM.from_pretrained(path, search_space=...) "
                "(LoRA: hf_llama_nas.training.get_elastic_peft_model on that model)."
            )
        if inner is model:
            break
    return inner


class InstaTuneTrainer(Trainer):
    """A `Trainer` that makes every sub-network of the model's search space good (InstaTune / LLaMA-NAS).

    `model`: an `ElasticLlamaForCausalLM` (or a PEFT model around one). `search_space`: replaces the model's.
    `sampler`: a custom `SubnetSampler` (default: from `args.nas_seed` and the model's layer drop order).
    `reference_subnets`: fixed sub-networks, by name, evaluated at every evaluation besides the full network
    (default: the sampler's smallest, middle and largest), logged as `eval_<name>_loss` / `_perplexity`.
    """

    args: InstaTuneArguments

    def __init__(self, model: nn.Module | None = None, args: InstaTuneArguments | None = None, *,
                 search_space: SearchSpace | dict | None = None, sampler: SubnetSampler | None = None,
                 reference_subnets: dict[str, SubnetConfig] | None = None, **kwargs: Any) -> None:
        if model is None:
            raise InstaTuneError("InstaTuneTrainer needs a model: pass model=ElasticLlamaForCausalLM.from_pretrained(...).")
        if args is None:
            args = InstaTuneArguments(output_dir="trainer_output")
        if not isinstance(args, InstaTuneArguments):
            raise InstaTuneError(
                f"InstaTuneTrainer needs InstaTuneArguments, got {type(args).__name__}: build "
                "InstaTuneArguments(...) with the same fields (it is a TrainingArguments subclass)."
            )
        elastic = elastic_model_of(model)
        if search_space is not None:
            elastic.search_space = search_space
        elastic.search_space.validate(elastic.config)
        if elastic.search_space.num_subnets() < 2:
            raise InstaTuneError(
                f"The search space {elastic.search_space.to_dict()} holds a single network, so there is nothing to "
                "sample: add depths (num_layers) or widths (intermediate_size), or train with the plain Trainer."
            )
        self._elastic = elastic
        self.sampler = sampler or self._default_sampler(args)
        if self.sampler.space != elastic.search_space:
            raise InstaTuneError("The sampler's search space differs from the model's: build it from model.search_space.")
        self._custom_references = reference_subnets is not None
        self.reference_subnets = self._check_references(reference_subnets)
        super().__init__(model=model, args=args, **kwargs)
        self._loss_sums: dict[str, dict[int, torch.Tensor]] = defaultdict(dict)
        self._last_plan: list[PlannedNetwork] = []
        self._planned_step = -1
        self.check_train_dataset()

    # ----- set-up checks -----

    def _default_sampler(self, args: InstaTuneArguments) -> SubnetSampler:
        space = self._elastic.search_space
        order = layer_drop_order_of(self._elastic.config) if args.nas_layer_sampling == "importance" else None
        if args.nas_layer_sampling == "importance" and order is None and space.layer_mode == "any":
            logger.warning("The model has no config.nas_layer_drop_order (apply_importance_ordering_ was not run): "
                           "sub-networks drop random layers.")
        return SubnetSampler(space, args.nas_seed, order)

    def _check_references(self, references: dict[str, SubnetConfig] | None) -> dict[str, SubnetConfig]:
        full = SubnetConfig.full(self._elastic.config)
        if references is None:
            return {name: subnet for name, subnet in self.sampler.references().items() if subnet != full}
        for name, subnet in references.items():
            try:
                self._elastic.search_space.validate_subnet(subnet)
            except LlamaNASError as err:
                raise InstaTuneError(f"reference sub-network {name!r} is not in the search space: {err}") from None
        return dict(references)

    def check_train_dataset(self) -> None:
        """Refuse, before training, a dataset without labels or with sequences longer than the model's context."""
        dataset = self.train_dataset
        if dataset is None:
            return
        if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
            if len(dataset) == 0:
                raise InstaTuneError("The training dataset is empty.")
            examples = [dataset[i] for i in range(min(2, len(dataset)))]
        else:
            examples = [example for _, example in zip(range(2), iter(dataset))]
            if not examples:
                raise InstaTuneError("The training dataset is empty.")
        if not all(isinstance(example, dict) and "input_ids" in example for example in examples):
            raise InstaTuneError(
                "The training dataset's examples have no 'input_ids': tokenise the text first, e.g. with "
                "hf_llama_nas.training.load_training_data(file, tokenizer, block_size)."
            )
        if "labels" not in examples[0]:
            try:
                batch = self.data_collator(examples)
            except Exception:  # noqa: BLE001 - any collator failure means it cannot supply labels
                batch = {}
            if "labels" not in batch:
                raise InstaTuneError(
                    "The training dataset has no 'labels' and the data collator adds none: add labels (a copy of "
                    "input_ids for causal LM), pass data_collator=DataCollatorForLanguageModeling(tokenizer, "
                    "mlm=False), or build the data with hf_llama_nas.training.chunk_token_ids."
                )
        limit = getattr(self._elastic.config, "max_position_embeddings", None)
        if limit is None:
            return
        column_names = getattr(dataset, "column_names", None)
        if column_names is not None and "input_ids" in column_names:
            lengths = (len(ids) for ids in dataset["input_ids"])
        else:
            lengths = (len(example["input_ids"]) for example in examples)
        longest = max(lengths)
        if longest > limit:
            raise InstaTuneError(
                f"The training dataset has sequences of {longest} tokens, longer than the model's context of {limit} "
                f"(max_position_embeddings): cut them into blocks of at most {limit} tokens."
            )

    # ----- the training step -----

    def plan_step(self, step: int) -> list[PlannedNetwork]:
        """The networks trained in optimizer step `step` (a pure function of the step: same on every rank)."""
        args, sampler = self.args, self.sampler
        if args.nas_strategy == "alternate":
            if step % 2 == 0:
                return [PlannedNetwork("full", None)]
            return [PlannedNetwork("subnet", sampler.sample(step))]
        distill = args.nas_distill_weight > 0
        if args.nas_strategy == "joint":
            return [
                PlannedNetwork("full", None, args.nas_full_loss_weight, teacher=distill),
                PlannedNetwork("subnet", sampler.sample(step), args.nas_subnet_loss_weight, distilled=distill),
            ]
        plan = [
            PlannedNetwork("largest", sampler.largest(), 1.0, teacher=distill),
            PlannedNetwork("smallest", sampler.smallest(), args.nas_subnet_loss_weight, distilled=distill),
        ]
        plan += [PlannedNetwork(f"random{i}", sampler.sample(step, i), args.nas_subnet_loss_weight, distilled=distill)
                 for i in range(args.nas_num_random_subnets)]
        return plan

    def _scale_for_accumulation(self, loss: torch.Tensor, num_items_in_batch: Any) -> torch.Tensor:
        """Mirror `Trainer.training_step`'s loss normalisation for gradient accumulation."""
        if self.args.n_gpu > 1:
            loss = loss.mean()
        scaled = self.loss_is_scaled_for_ga
        if scaled is None:
            scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or self.compute_loss_func is not None
        return loss if scaled else loss / self.current_gradient_accumulation_steps

    def training_step(self, model: nn.Module, inputs: dict[str, torch.Tensor | Any],
                      num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
        """Run the step's plan: for each network, activate it, forward, backward (with it still active)."""
        model.train()
        if hasattr(self.optimizer, "train") and callable(self.optimizer.train):
            self.optimizer.train()
        inputs = self._prepare_inputs(inputs)
        step = self.state.global_step
        plan = self.plan_step(step)
        self._record_plan(step, plan)
        labels = inputs.get("labels")
        teacher_logits: torch.Tensor | None = None
        total = torch.zeros((), device=self.args.device)
        for member in plan:
            with self._elastic.subnet(member.subnet, check_space=False):
                with self.compute_loss_context_manager():
                    loss, outputs = self.compute_loss(model, inputs, return_outputs=True,
                                                      num_items_in_batch=num_items_in_batch)
                    loss = self._scale_for_accumulation(loss, num_items_in_batch)
                    self._add_loss(f"loss_{member.role}", step, loss)
                    loss = member.loss_weight * loss
                    if member.distilled and teacher_logits is not None:
                        kd = distillation_loss(outputs.logits, teacher_logits, labels, self.args.nas_temperature)
                        kd = kd / self.current_gradient_accumulation_steps
                        self._add_loss(f"kd_{member.role}", step, kd)
                        loss = loss + self.args.nas_distill_weight * kd
                    if member.teacher:
                        teacher_logits = outputs.logits.detach()
                    del outputs
                self.accelerator.backward(loss)
            total += loss.detach()
        return total

    # ----- logging -----

    def _record_plan(self, step: int, plan: list[PlannedNetwork]) -> None:
        """Remember the step's plan and append it to the JSON-lines record once per step (not per micro-batch)."""
        if step == self._planned_step:
            return
        self._last_plan, self._planned_step = plan, step
        if self.args.should_save:
            os.makedirs(self.args.output_dir, exist_ok=True)
            with open(os.path.join(self.args.output_dir, SUBNET_LOG_FILE), "a", encoding="utf-8") as handle:
                record = {"step": step, "networks": [
                    {"role": m.role, "subnet": None if m.subnet is None else m.subnet.to_dict()} for m in plan]}
                handle.write(json.dumps(record) + "\n")

    def _add_loss(self, key: str, step: int, value: torch.Tensor) -> None:
        sums = self._loss_sums[key]
        sums[step] = sums[step] + value.detach() if step in sums else value.detach().clone()

    def _subnet_summary(self) -> dict[str, float]:
        """Size of the last sub-network the latest step planned (full if none), as numbers loggers can plot."""
        subnets = [m.subnet for m in self._last_plan if m.subnet is not None]
        config = self._elastic.config
        subnet = subnets[-1] if subnets else SubnetConfig.full(config)
        full = SubnetConfig.full(config).num_parameters(config, include_embeddings=False)
        return {
            "nas_subnet_layers": float(subnet.num_layers),
            "nas_subnet_mean_width": sum(subnet.intermediate_size) / subnet.num_layers,
            "nas_subnet_params_fraction": subnet.num_parameters(config, include_embeddings=False) / full,
        }

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add each loss term (mean per optimizer step since the last log, all ranks) and the sampled network."""
        if "loss" in logs and self._loss_sums:
            for key in sorted(self._loss_sums):
                values = torch.stack(list(self._loss_sums[key].values()))
                logs[key] = round(nested_gather(values.mean(), self.args.parallel_mode).mean().item(), 4)
            self._loss_sums.clear()
            logs.update(self._subnet_summary())
            logger.info("step %d trained %s", self.state.global_step,
                        ", ".join(f"{m.role}={m.subnet.id if m.subnet else 'full'}" for m in self._last_plan))
        super().log(logs, start_time)

    # ----- evaluation -----

    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """Evaluate the full network, then every reference sub-network (metrics `<prefix>_<name>_...`)."""
        resolved = eval_dataset if eval_dataset is not None else self.eval_dataset
        if isinstance(resolved, dict):
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        runs: list[tuple[str, SubnetConfig | None]] = [(metric_key_prefix, None)]
        runs += [(f"{metric_key_prefix}_{name}", subnet) for name, subnet in self.reference_subnets.items()]
        metrics: dict[str, float] = {}
        perplexities: dict[str, float] = {}
        for prefix, subnet in runs:
            with self._elastic.subnet(subnet, check_space=False):
                result = super().evaluate(eval_dataset, ignore_keys, prefix)
            metrics.update(result)
            if f"{prefix}_loss" in result:
                perplexities[f"{prefix}_perplexity"] = math.exp(min(result[f"{prefix}_loss"], 700.0))
        if perplexities:
            metrics.update(perplexities)
            self.log(dict(perplexities))
        return metrics

    # ----- checkpoints -----

    def _save_rng_state(self, output_dir: str) -> None:
        super()._save_rng_state(output_dir)
        if self.args.should_save:
            self.sampler.save(output_dir)

    def _load_rng_state(self, checkpoint: str | None) -> None:
        """Resume the sub-network sequence: restore the sampler the checkpoint was trained with."""
        super()._load_rng_state(checkpoint)
        if checkpoint is None:
            return
        saved = SubnetSampler.load(checkpoint)
        if saved is None:
            logger.warning("%s has no %s: the sub-network sequence continues with this run's sampler.",
                           checkpoint, "instatune_sampler.json")
            return
        if saved.space != self._elastic.search_space:
            raise InstaTuneError(
                f"The checkpoint {checkpoint} was trained with search space {saved.space.to_dict()}, this run uses "
                f"{self._elastic.search_space.to_dict()}: resume with the checkpoint's space."
            )
        if saved != self.sampler:
            logger.warning("Restoring the sub-network sampler of %s (seed %d).", checkpoint, saved.seed)
            self.sampler = saved
            if not self._custom_references:
                self.reference_subnets = self._check_references(None)


__all__ = ["InstaTuneTrainer", "PlannedNetwork", "distillation_loss", "elastic_model_of", "SUBNET_LOG_FILE"]
