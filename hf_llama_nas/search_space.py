"""The search space of Llama sub-networks, as plain data.

A sub-network of a Llama super-network keeps some of its decoder layers and, in each kept layer,
the first `intermediate_size` neurons of the MLP. `SubnetConfig` is one such choice (a small frozen
value with a stable id), `SearchSpace` the set of allowed choices: it validates, samples, counts,
encodes sub-networks as integer vectors (for pymoo) and feature vectors (for predictors), and
round-trips to JSON. `ModelDims` holds the few config fields needed to count parameters and bytes.

This module deliberately imports neither torch nor transformers: search bookkeeping, the CLI and
result files must work (and be fast to import) on machines and in processes that never load a model.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import SearchSpaceError, SubnetError

__all__ = ["ModelDims", "SubnetConfig", "SearchSpace", "DTYPE_BYTES", "FEATURE_KINDS", "LAYER_MODES"]

#: Bytes per parameter of the floating-point dtypes a checkpoint can be stored in.
DTYPE_BYTES: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2}
#: The dtypes `SubnetConfig.num_bytes` understands; "int8" is bitsandbytes LLM.int8().
_NUM_BYTES_DTYPES = ("float32", "float16", "bfloat16", "int8")
#: "prefix" keeps the first N layers (LLaMA-NAS); "any" keeps any subset of allowed size.
LAYER_MODES = ("prefix", "any")
#: Feature encodings of `SearchSpace.features`.
FEATURE_KINDS = ("ordinal", "onehot")

_REQUIRED_DIMS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def _as_int(value: Any, what: str, error: type[Exception]) -> int:
    """`value` as an int; integral floats (JSON, pymoo) pass, bools and fractions do not."""
    if isinstance(value, bool):
        raise error(f"{what} must be an integer, got {value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        pass
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise error(f"{what} must be an integer, got {value!r}.") from None
    if not as_float.is_integer():
        raise error(f"{what} must be an integer, got {value!r}.")
    return int(as_float)


def _as_int_tuple(values: Any, what: str, error: type[Exception]) -> tuple[int, ...]:
    """A sequence of integers as a tuple; a bare string or scalar is refused with a hint."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise error(f"{what} must be a list of integers, got {values!r}.")
    return tuple(_as_int(v, f"{what}[{i}]", error) for i, v in enumerate(values))


def _check_ascending_unique(values: tuple[int, ...], what: str, error: type[Exception]) -> None:
    """Choices are kept sorted and unique so that encodings and ids are canonical."""
    for i in range(1, len(values)):
        if values[i] <= values[i - 1]:
            raise error(
                f"{what} must be strictly ascending without duplicates, but {what}[{i}]={values[i]} follows "
                f"{values[i - 1]} in {list(values)}: sort them ascending and remove duplicates."
            )


def _read_json(path_or_json: str | os.PathLike, error: type[Exception], what: str) -> Any:
    """Parse a JSON string, or the JSON file it names; a path-like is always a file."""
    if isinstance(path_or_json, str) and path_or_json.lstrip().startswith(("{", "[")):
        text, source = path_or_json, "the JSON string"
    else:
        path = os.fspath(path_or_json)
        if not os.path.isfile(path):
            raise error(f"{what} file {path!r} does not exist: pass an existing JSON file or a JSON string.")
        with open(path, encoding="utf-8") as handle:
            text, source = handle.read(), repr(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{source} is not valid JSON for a {what} ({err}).") from None


def _write_json(data: dict[str, Any], path: str | os.PathLike | None) -> str:
    """Serialise `data` on one line (it is small) and write it to `path` when one is given."""
    text = json.dumps(data)
    if path is not None:
        with open(os.fspath(path), "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return text


@dataclass(frozen=True)
class ModelDims:
    """The dimensions of a Llama model that parameter and byte counts depend on.

    `intermediate_size` has one entry per layer because extracted sub-networks (and their configs)
    may have a different MLP width in every layer.
    """

    hidden_size: int
    intermediate_size: tuple[int, ...]
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False

    @classmethod
    def from_config(cls, config: Any) -> ModelDims:
        """Read the dimensions from a config object (e.g. `LlamaConfig`) or a `config.json` mapping.

        Missing optional fields take Llama's defaults: `num_key_value_heads` = heads (no GQA),
        `head_dim` = hidden_size // heads, no biases, untied embeddings.
        """
        if isinstance(config, ModelDims):
            return config

        def get(name: str) -> Any:
            if isinstance(config, Mapping):
                return config.get(name)
            return getattr(config, name, None)

        for name in _REQUIRED_DIMS:
            if get(name) is None:
                raise SearchSpaceError(
                    f"The model config has no `{name}`: pass a Llama config (or its config.json dict) that sets it."
                )
        hidden = _as_int(get("hidden_size"), "hidden_size", SearchSpaceError)
        layers = _as_int(get("num_hidden_layers"), "num_hidden_layers", SearchSpaceError)
        heads = _as_int(get("num_attention_heads"), "num_attention_heads", SearchSpaceError)
        kv_heads = get("num_key_value_heads")
        kv_heads = heads if kv_heads is None else _as_int(kv_heads, "num_key_value_heads", SearchSpaceError)
        vocab = _as_int(get("vocab_size"), "vocab_size", SearchSpaceError)
        for name, value in (("hidden_size", hidden), ("num_hidden_layers", layers), ("num_attention_heads", heads),
                            ("num_key_value_heads", kv_heads), ("vocab_size", vocab)):
            if value < 1:
                raise SearchSpaceError(f"The model config has {name}={value}: it must be a positive integer.")
        head_dim = get("head_dim")
        head_dim = hidden // heads if head_dim is None else _as_int(head_dim, "head_dim", SearchSpaceError)
        width = get("intermediate_size")
        if isinstance(width, (str, bytes)) or not isinstance(width, Iterable):
            widths = (_as_int(width, "intermediate_size", SearchSpaceError),) * layers
        else:
            widths = _as_int_tuple(width, "intermediate_size", SearchSpaceError)
            if len(widths) != layers:
                raise SearchSpaceError(
                    f"The model config lists {len(widths)} intermediate sizes for {layers} layers: "
                    "give one width per layer, or a single int for all layers."
                )
        for i, w in enumerate(widths):
            if w < 1:
                raise SearchSpaceError(f"The model config has intermediate_size {w} in layer {i}: it must be positive.")
        return cls(
            hidden_size=hidden,
            intermediate_size=widths,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=head_dim,
            vocab_size=vocab,
            tie_word_embeddings=bool(get("tie_word_embeddings") or False),
            attention_bias=bool(get("attention_bias") or False),
            mlp_bias=bool(get("mlp_bias") or False),
        )


@dataclass(frozen=True)
class SubnetConfig:
    """One sub-network: which super-network layers are kept, and the MLP width of each kept layer.

    Lists are accepted and stored as tuples so the value is hashable and compares by content.
    """

    layers: tuple[int, ...]
    intermediate_size: tuple[int, ...]

    def __post_init__(self) -> None:
        layers = _as_int_tuple(self.layers, "layers", SubnetError)
        widths = _as_int_tuple(self.intermediate_size, "intermediate_size", SubnetError)
        if not layers:
            raise SubnetError("A sub-network must keep at least one layer: `layers` is empty.")
        if len(widths) != len(layers):
            raise SubnetError(
                f"A sub-network needs one intermediate_size per kept layer: got {len(layers)} layers {list(layers)} "
                f"and {len(widths)} widths {list(widths)}."
            )
        for i, layer in enumerate(layers):
            if layer < 0:
                raise SubnetError(f"layers[{i}]={layer} is negative: layer indices start at 0.")
            if i and layer <= layers[i - 1]:
                raise SubnetError(
                    f"layers must be strictly ascending without duplicates, but layers[{i}]={layer} follows "
                    f"{layers[i - 1]} in {list(layers)}: sort them ascending and remove duplicates."
                )
        for i, width in enumerate(widths):
            if width <= 0:
                raise SubnetError(
                    f"intermediate_size[{i}]={width} (layer {layers[i]}) must be positive: "
                    "drop the layer from `layers` instead."
                )
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "intermediate_size", widths)

    @property
    def num_layers(self) -> int:
        """Number of kept decoder layers (the depth of the sub-network)."""
        return len(self.layers)

    @property
    def id(self) -> str:
        """A short stable name: depth plus a content hash, equal across processes for equal sub-networks."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return f"L{self.num_layers}-{hashlib.sha1(canonical.encode('utf-8')).hexdigest()[:10]}"

    def to_dict(self) -> dict[str, list[int]]:
        """The JSON form used by the CLI and result files: `{"layers": [...], "intermediate_size": [...]}`."""
        return {"layers": list(self.layers), "intermediate_size": list(self.intermediate_size)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubnetConfig:
        """Inverse of `to_dict`; unknown or missing keys are errors so typos do not pass silently."""
        allowed = ("layers", "intermediate_size")
        if not isinstance(data, Mapping):
            raise SubnetError(f"A sub-network dict must be a mapping with keys {list(allowed)}, got {data!r}.")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise SubnetError(f"Unknown sub-network key(s) {unknown}: the allowed keys are {list(allowed)}.")
        missing = [key for key in allowed if key not in data]
        if missing:
            raise SubnetError(f"The sub-network dict lacks {missing}: it needs both keys {list(allowed)}.")
        return cls(layers=data["layers"], intermediate_size=data["intermediate_size"])

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The `to_dict` form as a JSON string, also written to `path` when one is given."""
        return _write_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, path_or_json: str | os.PathLike) -> SubnetConfig:
        """Read a sub-network from a JSON file path or a JSON string (anything starting with `{`)."""
        return cls.from_dict(_read_json(path_or_json, SubnetError, "sub-network"))

    @classmethod
    def full(cls, config: Any) -> SubnetConfig:
        """The whole super-network: every layer at its native width."""
        dims = ModelDims.from_config(config)
        return cls(layers=tuple(range(dims.num_hidden_layers)), intermediate_size=dims.intermediate_size)

    @classmethod
    def uniform(cls, config: Any, num_layers: int, intermediate_size: int) -> SubnetConfig:
        """The first `num_layers` layers, all with MLP width `intermediate_size` (validated against `config`)."""
        dims = ModelDims.from_config(config)
        depth = _as_int(num_layers, "num_layers", SubnetError)
        if not 1 <= depth <= dims.num_hidden_layers:
            raise SubnetError(
                f"num_layers={depth} is out of range: the model has {dims.num_hidden_layers} layers; "
                f"choose 1..{dims.num_hidden_layers}."
            )
        subnet = cls(layers=tuple(range(depth)), intermediate_size=(intermediate_size,) * depth)
        subnet.validate_for(dims)
        return subnet

    def widths_by_layer(self, num_hidden_layers: int) -> tuple[int, ...]:
        """The MLP width of every super-network layer, 0 where the layer is dropped."""
        if self.layers[-1] >= num_hidden_layers:
            raise SubnetError(
                f"layer {self.layers[-1]} is out of range: the model has {num_hidden_layers} layers "
                f"(indices 0..{num_hidden_layers - 1})."
            )
        widths = [0] * num_hidden_layers
        for layer, width in zip(self.layers, self.intermediate_size):
            widths[layer] = width
        return tuple(widths)

    def validate_for(self, config: Any) -> None:
        """Check that the layers exist in the model and no width exceeds that layer's native width."""
        dims = ModelDims.from_config(config)
        for layer, width in zip(self.layers, self.intermediate_size):
            if layer >= dims.num_hidden_layers:
                raise SubnetError(
                    f"layer {layer} is out of range: the model has {dims.num_hidden_layers} layers "
                    f"(indices 0..{dims.num_hidden_layers - 1})."
                )
            native = dims.intermediate_size[layer]
            if width > native:
                raise SubnetError(
                    f"layer {layer}: intermediate_size {width} exceeds the model's native {native}; "
                    f"choose a width <= {native}."
                )

    def _layer_parameter_counts(self, dims: ModelDims) -> list[tuple[list[tuple[int, int]], int]]:
        """Per kept layer: its Linear shapes (out, in) and its count of other parameters (biases, norms)."""
        hidden, q_dim = dims.hidden_size, dims.num_attention_heads * dims.head_dim
        kv_dim = dims.num_key_value_heads * dims.head_dim
        result = []
        for width in self.intermediate_size:
            linears = [(q_dim, hidden), (kv_dim, hidden), (kv_dim, hidden), (hidden, q_dim),
                       (width, hidden), (width, hidden), (hidden, width)]
            other = 2 * hidden
            if dims.attention_bias:
                other += q_dim + 2 * kv_dim + hidden
            if dims.mlp_bias:
                other += 2 * width + hidden
            result.append((linears, other))
        return result

    def num_parameters(self, config: Any, include_embeddings: bool = True) -> int:
        """Exact parameter count of the extracted model, as `sum(p.numel() for p in model.parameters())`.

        Tied input/output embeddings count once. `include_embeddings=False` counts only the decoder
        layers and the final norm: the non-embedding size used as a training-free proxy.
        """
        dims = ModelDims.from_config(config)
        self.validate_for(dims)
        total = dims.hidden_size
        for linears, other in self._layer_parameter_counts(dims):
            total += sum(out * inp for out, inp in linears) + other
        if include_embeddings:
            total += dims.vocab_size * dims.hidden_size * (1 if dims.tie_word_embeddings else 2)
        return total

    def num_bytes(self, config: Any, dtype: str = "float32", other_dtype: str = "float16") -> int:
        """Size in bytes of the extracted model's weights stored as `dtype`.

        "int8" is bitsandbytes LLM.int8() as serialised by transformers: every decoder Linear stores
        int8 weights, one float32 scale (`SCB`) per output row and a 1-byte `weight_format`; biases,
        norms, embeddings and an untied LM head stay in `other_dtype`.
        """
        if dtype not in _NUM_BYTES_DTYPES:
            raise SubnetError(f"Unknown dtype {dtype!r}: choose one of {list(_NUM_BYTES_DTYPES)}.")
        if dtype != "int8":
            return self.num_parameters(config) * DTYPE_BYTES[dtype]
        if other_dtype not in DTYPE_BYTES:
            raise SubnetError(f"Unknown other_dtype {other_dtype!r}: choose one of {list(DTYPE_BYTES)}.")
        dims = ModelDims.from_config(config)
        self.validate_for(dims)
        other_bytes = DTYPE_BYTES[other_dtype]
        kept_float = dims.hidden_size + dims.vocab_size * dims.hidden_size * (1 if dims.tie_word_embeddings else 2)
        total = kept_float * other_bytes
        for linears, other in self._layer_parameter_counts(dims):
            total += sum(out * inp + 4 * out + 1 for out, inp in linears) + other * other_bytes
        return total


@dataclass(frozen=True)
class SearchSpace:
    """The allowed sub-networks of a super-network with `num_hidden_layers` layers.

    A sub-network has one of the depths `num_layers`; in "prefix" mode it keeps the first layers
    (as LLaMA-NAS does), in "any" mode any layers. Each kept layer independently takes one of the
    MLP widths `intermediate_size`.
    """

    num_hidden_layers: int
    num_layers: tuple[int, ...]
    intermediate_size: tuple[int, ...]
    layer_mode: str = "prefix"

    def __post_init__(self) -> None:
        total = _as_int(self.num_hidden_layers, "num_hidden_layers", SearchSpaceError)
        if total < 1:
            raise SearchSpaceError(f"num_hidden_layers={total}: the super-network needs at least one layer.")
        depths = _as_int_tuple(self.num_layers, "num_layers", SearchSpaceError)
        widths = _as_int_tuple(self.intermediate_size, "intermediate_size", SearchSpaceError)
        for name, values in (("num_layers", depths), ("intermediate_size", widths)):
            if not values:
                raise SearchSpaceError(f"The search space has no {name} choices: give at least one.")
            _check_ascending_unique(values, name, SearchSpaceError)
        if depths[0] < 1 or depths[-1] > total:
            bad = depths[0] if depths[0] < 1 else depths[-1]
            raise SearchSpaceError(
                f"num_layers choice {bad} is out of range: depths must be within 1..{total} "
                f"(num_hidden_layers={total})."
            )
        if widths[0] <= 0:
            raise SearchSpaceError(f"intermediate_size choice {widths[0]} must be positive.")
        if self.layer_mode not in LAYER_MODES:
            raise SearchSpaceError(f"Unknown layer_mode {self.layer_mode!r}: choose one of {list(LAYER_MODES)}.")
        object.__setattr__(self, "num_hidden_layers", total)
        object.__setattr__(self, "num_layers", depths)
        object.__setattr__(self, "intermediate_size", widths)

    def __repr__(self) -> str:
        return (
            f"SearchSpace(num_hidden_layers={self.num_hidden_layers}, num_layers={list(self.num_layers)}, "
            f"intermediate_size={list(self.intermediate_size)}, layer_mode={self.layer_mode!r})"
        )

    # ----- construction -----

    @classmethod
    def for_model(
        cls,
        config: Any,
        num_layers: Sequence[int] | int | None = None,
        intermediate_size: Sequence[int] | int | None = None,
        layer_mode: str = "any",
        min_layers: int | None = None,
        max_layers: int | None = None,
    ) -> SearchSpace:
        """A space for the model of `config`, validated against it.

        Defaults: widths I/2, 3I/4 (rounded down to multiples of 64, at least 64) and the native I
        (the smallest native width if layers differ), depths L-8, L-4, L (at least 1).
        `min_layers`/`max_layers` give every depth in between instead of `num_layers`.
        """
        dims = ModelDims.from_config(config)
        total = dims.num_hidden_layers
        if num_layers is not None and (min_layers is not None or max_layers is not None):
            raise SearchSpaceError("Give either num_layers or min_layers/max_layers, not both.")
        if min_layers is not None or max_layers is not None:
            low = 1 if min_layers is None else _as_int(min_layers, "min_layers", SearchSpaceError)
            high = total if max_layers is None else _as_int(max_layers, "max_layers", SearchSpaceError)
            if low > high:
                raise SearchSpaceError(f"min_layers={low} is larger than max_layers={high}: swap them.")
            depths: Sequence[int] = range(low, high + 1)
        elif num_layers is None:
            depths = sorted({max(1, total - 8), max(1, total - 4), total})
        else:
            depths = (num_layers,) if isinstance(num_layers, int) else num_layers
        if intermediate_size is None:
            native = min(dims.intermediate_size)
            fractions = {min(native, max(64, (native * k // 4) // 64 * 64)) for k in (2, 3)}
            widths: Sequence[int] = sorted(fractions | {native})
        else:
            widths = (intermediate_size,) if isinstance(intermediate_size, int) else intermediate_size
        space = cls(num_hidden_layers=total, num_layers=tuple(depths), intermediate_size=tuple(widths),
                    layer_mode=layer_mode)
        space.validate(dims)
        return space

    @classmethod
    def llama_nas_llama2_7b(cls) -> SearchSpace:
        """The LLaMA-NAS paper's space for LLaMA2-7B: 24/28/32 first layers, MLP width 5504 or 11008."""
        return cls(num_hidden_layers=32, num_layers=(24, 28, 32), intermediate_size=(5504, 11008), layer_mode="prefix")

    def validate(self, config: Any) -> None:
        """Check that every sub-network of the space can be cut out of the model of `config`."""
        dims = ModelDims.from_config(config)
        if self.num_hidden_layers != dims.num_hidden_layers:
            raise SearchSpaceError(
                f"The search space is for a {self.num_hidden_layers}-layer model but the model has "
                f"{dims.num_hidden_layers} layers: build the space with SearchSpace.for_model(config)."
            )
        if self.num_layers[-1] > dims.num_hidden_layers:
            raise SearchSpaceError(
                f"num_layers choice {self.num_layers[-1]} exceeds the model's {dims.num_hidden_layers} layers: "
                f"use depths <= {dims.num_hidden_layers}."
            )
        native = min(dims.intermediate_size)
        if self.intermediate_size[-1] > native:
            layer = dims.intermediate_size.index(native)
            raise SearchSpaceError(
                f"intermediate_size choice {self.intermediate_size[-1]} exceeds the model's native width {native} "
                f"(layer {layer}): use widths <= {native}."
            )

    # ----- membership -----

    def validate_subnet(self, subnet: SubnetConfig) -> None:
        """Raise `SubnetError` naming the offending layer/value if `subnet` is not in the space."""
        if not isinstance(subnet, SubnetConfig):
            raise SubnetError(f"Expected a SubnetConfig, got {type(subnet).__name__}: use SubnetConfig.from_dict.")
        if subnet.layers[-1] >= self.num_hidden_layers:
            raise SubnetError(
                f"layer {subnet.layers[-1]} is out of range: the model has {self.num_hidden_layers} layers "
                f"(indices 0..{self.num_hidden_layers - 1})."
            )
        if subnet.num_layers not in self.num_layers:
            raise SubnetError(
                f"The sub-network has {subnet.num_layers} layers, which is not an allowed depth: "
                f"choose one of {list(self.num_layers)}."
            )
        if self.layer_mode == "prefix" and subnet.layers != tuple(range(subnet.num_layers)):
            raise SubnetError(
                f"The search space is in prefix mode and keeps the first layers 0..{subnet.num_layers - 1}, "
                f"but the sub-network keeps layers {list(subnet.layers)}: use layers "
                f"{list(range(subnet.num_layers))} or a space with layer_mode='any'."
            )
        for layer, width in zip(subnet.layers, subnet.intermediate_size):
            if width not in self.intermediate_size:
                raise SubnetError(
                    f"layer {layer}: intermediate_size {width} is not a choice of the search space; "
                    f"choose one of {list(self.intermediate_size)}."
                )

    def contains(self, subnet: SubnetConfig) -> bool:
        """Whether `subnet` is one of the space's sub-networks."""
        try:
            self.validate_subnet(subnet)
        except SubnetError:
            return False
        return True

    # ----- sampling -----

    def sample(self, seed: int | random.Random | None = None) -> SubnetConfig:
        """A random sub-network: depth uniform over the choices, then layers, then each width uniformly.

        `seed` is an int (deterministic), a `random.Random` (consumed), or None (fresh entropy).
        """
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        depth = rng.choice(self.num_layers)
        if self.layer_mode == "prefix":
            layers: Sequence[int] = range(depth)
        else:
            layers = sorted(rng.sample(range(self.num_hidden_layers), depth))
        widths = [rng.choice(self.intermediate_size) for _ in range(depth)]
        return SubnetConfig(layers=tuple(layers), intermediate_size=tuple(widths))

    def sample_many(self, n: int, seed: int | random.Random | None = None, unique: bool = False) -> list[SubnetConfig]:
        """`n` sub-networks from one random stream; `unique=True` redraws duplicates."""
        n = _as_int(n, "n", SearchSpaceError)
        if n < 0:
            raise SearchSpaceError(f"n={n} must be >= 0.")
        if unique and n > self.num_subnets():
            raise SearchSpaceError(
                f"Cannot draw {n} distinct sub-networks: the space has only {self.num_subnets()}; lower n."
            )
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        if not unique:
            return [self.sample(rng) for _ in range(n)]
        seen: dict[SubnetConfig, None] = {}
        while len(seen) < n:
            seen.setdefault(self.sample(rng), None)
        return list(seen)

    def largest(self) -> SubnetConfig:
        """The largest sub-network: deepest allowed depth (first layers), widest allowed width."""
        depth = self.num_layers[-1]
        return SubnetConfig(layers=tuple(range(depth)), intermediate_size=(self.intermediate_size[-1],) * depth)

    def smallest(self) -> SubnetConfig:
        """The smallest sub-network: shallowest allowed depth (first layers), narrowest allowed width."""
        depth = self.num_layers[0]
        return SubnetConfig(layers=tuple(range(depth)), intermediate_size=(self.intermediate_size[0],) * depth)

    # ----- gene encoding -----

    @property
    def num_genes(self) -> int:
        """Length of the integer vector `encode` returns."""
        return self.num_hidden_layers + (1 if self.layer_mode == "prefix" else 0)

    def gene_bounds(self) -> tuple[list[int], list[int]]:
        """Inclusive lower and upper bounds of every gene, as pymoo's `xl`/`xu`."""
        m = len(self.intermediate_size)
        if self.layer_mode == "prefix":
            upper = [len(self.num_layers) - 1] + [m - 1] * self.num_hidden_layers
        else:
            upper = [m] * self.num_hidden_layers
        return [0] * self.num_genes, upper

    def encode(self, subnet: SubnetConfig) -> list[int]:
        """The integer vector of `subnet`.

        prefix: [depth index] + one width index per super-network layer (0 beyond the depth);
        any: one gene per super-network layer, 0 = dropped, k = width choice k-1.
        """
        self.validate_subnet(subnet)
        widths = subnet.widths_by_layer(self.num_hidden_layers)
        if self.layer_mode == "prefix":
            depth_gene = self.num_layers.index(subnet.num_layers)
            return [depth_gene] + [self.intermediate_size.index(w) if w else 0 for w in widths]
        return [self.intermediate_size.index(w) + 1 if w else 0 for w in widths]

    def decode(self, genes: Sequence[Any], rng: random.Random | None = None) -> SubnetConfig:
        """The sub-network of an integer vector (ints or integral floats, e.g. from pymoo).

        In "any" mode the number of kept layers may not be an allowed depth: without `rng` that is a
        `SubnetError`; with `rng` the vector is repaired to the nearest allowed depth by dropping
        random kept layers or adding random dropped layers at random widths.
        """
        values = [_as_int(g, f"gene {i}", SubnetError) for i, g in enumerate(genes)]
        if len(values) != self.num_genes:
            raise SubnetError(f"Expected {self.num_genes} genes for this search space, got {len(values)}.")
        lower, upper = self.gene_bounds()
        for i, (value, low, high) in enumerate(zip(values, lower, upper)):
            if not low <= value <= high:
                raise SubnetError(f"gene {i} = {value} is outside its bounds {low}..{high}.")
        if self.layer_mode == "prefix":
            depth = self.num_layers[values[0]]
            widths = tuple(self.intermediate_size[g] for g in values[1:1 + depth])
            return SubnetConfig(layers=tuple(range(depth)), intermediate_size=widths)
        kept = {layer: self.intermediate_size[g - 1] for layer, g in enumerate(values) if g}
        if len(kept) not in self.num_layers:
            if rng is None:
                raise SubnetError(
                    f"The genes keep {len(kept)} layers, which is not an allowed depth: choose one of "
                    f"{list(self.num_layers)} (or pass rng= to repair)."
                )
            kept = self._repair(kept, rng)
        layers = tuple(sorted(kept))
        return SubnetConfig(layers=layers, intermediate_size=tuple(kept[layer] for layer in layers))

    def _repair(self, kept: dict[int, int], rng: random.Random) -> dict[int, int]:
        """Move to the nearest allowed depth (random among ties) by dropping or adding random layers."""
        count = len(kept)
        distance = min(abs(d - count) for d in self.num_layers)
        depth = rng.choice([d for d in self.num_layers if abs(d - count) == distance])
        kept = dict(kept)
        if depth < count:
            for layer in rng.sample(sorted(kept), count - depth):
                del kept[layer]
        else:
            dropped = [layer for layer in range(self.num_hidden_layers) if layer not in kept]
            for layer in rng.sample(dropped, depth - count):
                kept[layer] = rng.choice(self.intermediate_size)
        return kept

    # ----- counting -----

    def num_encodings(self) -> int:
        """Number of distinct gene vectors (the size a search over the encoding sees)."""
        m, total = len(self.intermediate_size), self.num_hidden_layers
        if self.layer_mode == "prefix":
            return len(self.num_layers) * m**total
        return (m + 1) ** total

    def num_subnets(self) -> int:
        """Number of distinct sub-networks in the space."""
        m, total = len(self.intermediate_size), self.num_hidden_layers
        if self.layer_mode == "prefix":
            return sum(m**d for d in self.num_layers)
        return sum(math.comb(total, d) * m**d for d in self.num_layers)

    # ----- features for predictors -----

    def num_features(self, kind: str = "ordinal") -> int:
        """Length of the vector `features(subnet, kind)` returns."""
        self._check_kind(kind)
        if kind == "ordinal":
            return self.num_hidden_layers + 1
        return self.num_hidden_layers * (len(self.intermediate_size) + 1) + len(self.num_layers)

    def features(self, subnet: SubnetConfig, kind: str = "ordinal") -> list[float]:
        """A fixed-length numeric description of `subnet` for accuracy/latency predictors.

        ordinal: each layer's width / max width (0 if dropped), then depth / num_hidden_layers.
        onehot: per layer a one-hot over [dropped] + widths, then a one-hot over the depth choices.
        """
        self._check_kind(kind)
        self.validate_subnet(subnet)
        widths = subnet.widths_by_layer(self.num_hidden_layers)
        if kind == "ordinal":
            widest = self.intermediate_size[-1]
            return [w / widest for w in widths] + [subnet.num_layers / self.num_hidden_layers]
        slots = len(self.intermediate_size) + 1
        result: list[float] = []
        for width in widths:
            onehot = [0.0] * slots
            onehot[self.intermediate_size.index(width) + 1 if width else 0] = 1.0
            result.extend(onehot)
        depth = [0.0] * len(self.num_layers)
        depth[self.num_layers.index(subnet.num_layers)] = 1.0
        return result + depth

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in FEATURE_KINDS:
            raise SearchSpaceError(f"Unknown feature kind {kind!r}: choose one of {list(FEATURE_KINDS)}.")

    # ----- serialisation -----

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in `config.json` (`search_space`) and search result files."""
        return {
            "num_hidden_layers": self.num_hidden_layers,
            "num_layers": list(self.num_layers),
            "intermediate_size": list(self.intermediate_size),
            "layer_mode": self.layer_mode,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Inverse of `to_dict`; `layer_mode` may be omitted (prefix), other keys are required."""
        allowed = ("num_hidden_layers", "num_layers", "intermediate_size", "layer_mode")
        if not isinstance(data, Mapping):
            raise SearchSpaceError(
                f"A search space dict must be a mapping with keys {list(allowed)}, got {data!r}."
            )
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise SearchSpaceError(f"Unknown search space key(s) {unknown}: the allowed keys are {list(allowed)}.")
        missing = [key for key in allowed[:3] if key not in data]
        if missing:
            raise SearchSpaceError(f"The search space dict lacks {missing}: keys {list(allowed[:3])} are required.")
        return cls(**dict(data))

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The `to_dict` form as a JSON string, also written to `path` when one is given."""
        return _write_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, path_or_json: str | os.PathLike) -> SearchSpace:
        """Read a space from a JSON file path or a JSON string (anything starting with `{`)."""
        return cls.from_dict(_read_json(path_or_json, SearchSpaceError, "search space"))
