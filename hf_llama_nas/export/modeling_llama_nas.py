"""A Llama causal LM whose decoder layers have individual MLP widths (a sub-network cut by NAS).

Everything but the MLP width is Llama's: the layers reuse transformers' Llama attention, norms and
rotary embedding. Self-contained like its configuration file, so it runs with `trust_remote_code=True`
where hf_llama_nas is not installed.
"""

from torch import nn
from transformers.activations import ACT2FN
from transformers import LlamaForCausalLM, LlamaModel
from transformers.models.llama.modeling_llama import (
    LlamaAttention,
    LlamaDecoderLayer,
    LlamaMLP,
    LlamaPreTrainedModel,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
)

from .configuration_llama_nas import LlamaNASConfig


class LlamaNASMLP(LlamaMLP):
    """`LlamaMLP` with the width of one layer: gate/up `(I_l, H)`, down `(H, I_l)`."""

    def __init__(self, config: LlamaNASConfig, layer_idx: int):
        nn.Module.__init__(self)
        self.config = config
        self.hidden_size = config.hidden_size
        self.intermediate_size = config.layer_intermediate_size(layer_idx)
        self.gate_proj = nn.Linear(self.hidden_size, self.intermediate_size, bias=config.mlp_bias)
        self.up_proj = nn.Linear(self.hidden_size, self.intermediate_size, bias=config.mlp_bias)
        self.down_proj = nn.Linear(self.intermediate_size, self.hidden_size, bias=config.mlp_bias)
        self.act_fn = ACT2FN[config.hidden_act]


class LlamaNASDecoderLayer(LlamaDecoderLayer):
    """`LlamaDecoderLayer` with a per-layer MLP width; attention and norms are Llama's."""

    def __init__(self, config: LlamaNASConfig, layer_idx: int):
        nn.Module.__init__(self)
        self.hidden_size = config.hidden_size
        self.self_attn = LlamaAttention(config=config, layer_idx=layer_idx)
        self.mlp = LlamaNASMLP(config, layer_idx)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)


class LlamaNASPreTrainedModel(LlamaPreTrainedModel):
    config_class = LlamaNASConfig
    config: LlamaNASConfig
    _no_split_modules = ["LlamaNASDecoderLayer"]
    _can_record_outputs = {"hidden_states": LlamaNASDecoderLayer, "attentions": LlamaAttention}


class LlamaNASModel(LlamaNASPreTrainedModel, LlamaModel):
    """`LlamaModel` built from `LlamaNASDecoderLayer`s; its forward pass is Llama's."""

    def __init__(self, config: LlamaNASConfig):
        LlamaNASPreTrainedModel.__init__(self, config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(
            [LlamaNASDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config=config)
        self.gradient_checkpointing = False
        self.post_init()


class LlamaNASForCausalLM(LlamaNASPreTrainedModel, LlamaForCausalLM):
    """`LlamaForCausalLM` over a `LlamaNASModel`; loss, generation and head are Llama's."""

    def __init__(self, config: LlamaNASConfig):
        LlamaNASPreTrainedModel.__init__(self, config)
        self.model = LlamaNASModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()


__all__ = ["LlamaNASPreTrainedModel", "LlamaNASModel", "LlamaNASForCausalLM"]
