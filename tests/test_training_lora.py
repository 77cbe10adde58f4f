"""LoRA adapters on the elastic model: sliced with the sub-network, trainable with sampling, merge + extract exact."""

from __future__ import annotations

import torch

from hf_llama_nas import SubnetConfig
from hf_llama_nas.training import ElasticLoraLinear, InstaTuneTrainer, get_elastic_peft_model

from .training_helpers import quiet_args, tiny_elastic, token_blocks, single_thread  # noqa: F401 (autouse fixture)

SUBNET = SubnetConfig(layers=(0, 2, 3), intermediate_size=(64, 128, 96))


def adapted(llama_dir):
    peft_model = get_elastic_peft_model(tiny_elastic(llama_dir), r=4, lora_alpha=8, lora_dropout=0.0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.2)
    return peft_model


def test_every_linear_layer_gets_an_adapter_and_elastic_ones_follow_the_subnet(llama_dir, input_ids):
    peft_model = adapted(llama_dir)
    mlp = peft_model.get_base_model().model.layers[0].mlp
    assert all(isinstance(getattr(mlp, name), ElasticLoraLinear) for name in ("gate_proj", "up_proj", "down_proj"))
    assert hasattr(peft_model.get_base_model().model.layers[0].self_attn.q_proj, "lora_A")
    elastic = peft_model.get_base_model()
    with torch.no_grad(), elastic.subnet(SUBNET):
        assert mlp.active_intermediate_size == 64
        assert mlp.gate_proj.get_base_layer().active_out_features == 64
        logits = peft_model(input_ids).logits
    assert logits.shape == (2, 12, 96) and torch.isfinite(logits).all()
    assert mlp.gate_proj.get_base_layer().active_out_features is None


def test_lora_trains_with_sampling_and_merge_then_extract_matches(llama_dir, input_ids, tmp_path):
    peft_model = adapted(llama_dir)
    elastic = peft_model.get_base_model()
    frozen = {n: p.detach().clone() for n, p in elastic.named_parameters() if "lora_" not in n}
    lora_before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    trainer = InstaTuneTrainer(model=peft_model, args=quiet_args(tmp_path, nas_strategy="joint", max_steps=2),
                               train_dataset=token_blocks())
    trainer.train()
    assert any(not torch.equal(p, lora_before[n]) for n, p in peft_model.named_parameters() if p.requires_grad)
    assert all(torch.equal(p, frozen[n]) for n, p in elastic.named_parameters() if "lora_" not in n)

    peft_model.eval()
    with torch.no_grad(), elastic.subnet(SUBNET):
        adapted_logits = peft_model(input_ids).logits
    merged = peft_model.merge_and_unload()
    extracted = merged.extract_subnetwork(SUBNET).eval()
    with torch.no_grad():
        torch.testing.assert_close(extracted(input_ids).logits, adapted_logits, atol=1e-4, rtol=1e-4)
