"""Share an extracted sub-network on the Hugging Face Hub, with a model card that says what it is and how to load it.

`prepare_hub_folder` writes exactly what `push_to_hub` uploads (weights, config, tokenizer, `README.md`), so a
push can be inspected, or tested, locally first. `push_checkpoint_to_hub` uploads an already saved checkpoint as it
is (the only way for INT8 ones, which transformers cannot save again once loaded). The card is a Jinja template
(`model_cards/subnetwork.md`) filled through huggingface_hub's `ModelCard`/`ModelCardData`/`EvalResult`, so its
YAML metadata (base model, tags, `model-index` results) is what the Hub expects.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
from transformers import PreTrainedModel

from ..errors import LlamaNASError
from ..search_space import SubnetConfig
from .save import save_subnetwork

TEMPLATE_NAME = "subnetwork.md"
#: Where the card template lives: inside the package (wheel installs), then the repository (editable installs).
TEMPLATE_DIRS = (
    Path(__file__).resolve().parents[1] / "model_cards",
    Path(__file__).resolve().parents[2] / "model_cards",
)
TASK_TYPE = "text-generation"
#: Files whose presence means a checkpoint folder ships its tokenizer.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")

#: lm-eval task name -> (Hub dataset id, pretty name, dataset config, split lm-eval scores on).
LM_EVAL_DATASETS: dict[str, tuple[str, str, str | None, str | None]] = {
    "arc_easy": ("allenai/ai2_arc", "AI2 ARC (Easy)", "ARC-Easy", "test"),
    "arc_challenge": ("allenai/ai2_arc", "AI2 ARC (Challenge)", "ARC-Challenge", "test"),
    "mmlu": ("cais/mmlu", "MMLU", "all", "test"),
    "truthfulqa_mc1": ("truthfulqa/truthful_qa", "TruthfulQA (MC1)", "multiple_choice", "validation"),
    "truthfulqa_mc2": ("truthfulqa/truthful_qa", "TruthfulQA (MC2)", "multiple_choice", "validation"),
    "winogrande": ("allenai/winogrande", "WinoGrande", "winogrande_xl", "validation"),
    "piqa": ("ybisk/piqa", "PIQA", None, "validation"),
    "boolq": ("google/boolq", "BoolQ", None, "validation"),
    "hellaswag": ("Rowan/hellaswag", "HellaSwag", None, "validation"),
    "wikitext": ("wikitext", "WikiText-2", "wikitext-2-raw-v1", "test"),
}
_REQUIRED_RESULT_KEYS = ("task", "metric", "value")
_OPTIONAL_RESULT_KEYS = ("dataset_name", "dataset_type", "dataset_config", "dataset_split", "num_fewshot", "limit")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def template_path() -> Path:
    """The card template: packaged with hf_llama_nas, or in the repository's `model_cards/` for editable installs."""
    for folder in TEMPLATE_DIRS:
        if (folder / TEMPLATE_NAME).is_file():
            return folder / TEMPLATE_NAME
    searched = ", ".join(str(folder) for folder in TEMPLATE_DIRS)
    raise FileNotFoundError(
        f"The model card template {TEMPLATE_NAME} is missing (looked in {searched}): reinstall hf_llama_nas, "
        "whose package data ships it."
    )


def is_hub_id(name: str | None) -> bool:
    """Whether `name` reads as a Hub repo id rather than a local path (only Hub ids may go in `base_model`)."""
    return bool(name) and not os.path.exists(name) and _HUB_ID.match(name) is not None and ".." not in name


def check_results(results: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Check the measured results a card reports; a typo must not silently drop or mislabel a number."""
    if results is None:
        return []
    if isinstance(results, Mapping) or not isinstance(results, Sequence):
        raise LlamaNASError(
            "results must be a list of dicts such as "
            '[{"task": "arc_easy", "metric": "acc", "value": 0.61, "num_fewshot": 0}].'
        )
    checked = []
    for index, result in enumerate(results):
        if not isinstance(result, Mapping):
            raise LlamaNASError(f"results[{index}] is a {type(result).__name__}: each result must be a dict.")
        missing = [key for key in _REQUIRED_RESULT_KEYS if key not in result]
        unknown = sorted(set(result) - set(_REQUIRED_RESULT_KEYS) - set(_OPTIONAL_RESULT_KEYS))
        if missing or unknown:
            problem = f"lacks {missing}" if missing else f"has unknown keys {unknown}"
            raise LlamaNASError(
                f"results[{index}] {problem}: each result needs {list(_REQUIRED_RESULT_KEYS)} and may have "
                f"{list(_OPTIONAL_RESULT_KEYS)}."
            )
        value = result["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise LlamaNASError(f"results[{index}] ({result['task']}) has value {value!r}: give a finite number.")
        checked.append(dict(result))
    return checked


def results_from_lm_eval(output: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The results of an lm-eval run (`simple_evaluate` output or its `results_*.json`) in the card's format.

    Every numeric metric of every task is kept, except standard errors and the sub-tasks of a group (MMLU's 57
    subjects): the group's own score stands for them.
    """
    if "results" not in output or not isinstance(output["results"], Mapping):
        raise LlamaNASError("This is not an lm-eval results file: it has no 'results' mapping of task -> metrics.")
    subtasks = {task for members in output.get("group_subtasks", {}).values() for task in members}
    n_shot = output.get("n-shot", {})
    limit = (output.get("config") or {}).get("limit")
    results = []
    for task, metrics in output["results"].items():
        if task in subtasks:
            continue
        for key, value in metrics.items():
            metric = key.split(",")[0]  # lm-eval keys read "metric,filter", e.g. "acc,none"
            if metric.endswith("_stderr") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            result: dict[str, Any] = {"task": task, "metric": metric, "value": float(value)}
            if task in n_shot:
                result["num_fewshot"] = int(n_shot[task])
            if limit is not None:
                result["limit"] = limit
            results.append(result)
    return results


def load_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read measured results from JSON: a list of result dicts, or an lm-eval results file."""
    path = Path(path)
    if not path.is_file():
        raise LlamaNASError(f"Results file {str(path)!r} does not exist: check the path.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise LlamaNASError(f"Results file {str(path)!r} is not valid JSON ({err}): fix or regenerate it.") from err
    if isinstance(data, Mapping):
        return check_results(results_from_lm_eval(data))
    return check_results(data)


def _eval_result(result: Mapping[str, Any]) -> EvalResult:
    """One result as the Hub's `model-index` entry; datasets of common lm-eval tasks get their Hub ids."""
    task = str(result["task"])
    dataset_type, dataset_name, dataset_config, dataset_split = LM_EVAL_DATASETS.get(task, (task, task, None, None))
    args = {key: result[key] for key in ("num_fewshot", "limit") if result.get(key) is not None}
    return EvalResult(
        task_type=TASK_TYPE,
        task_name="Text Generation",
        dataset_type=result.get("dataset_type", dataset_type),
        dataset_name=result.get("dataset_name", dataset_name),
        dataset_config=result.get("dataset_config", dataset_config),
        dataset_split=result.get("dataset_split", dataset_split),
        dataset_args=args or None,
        metric_type=str(result["metric"]),
        metric_value=float(result["value"]),
        metric_name=f"{task} {result['metric']}",
    )


def _human_bytes(n: float) -> str:
    """Decimal units, as the Hub shows file sizes."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _human_count(n: int) -> str:
    """A parameter count as people quote it (135M, 6.7B)."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(n)


def _layer_rows(layers: Sequence[int], widths: Sequence[int]) -> list[dict[str, Any]]:
    """Runs of consecutive kept layers with one width: a 32-layer model reads as a few rows, not 32."""
    rows: list[dict[str, Any]] = []
    for layer, width in zip(layers, widths):
        last = rows[-1] if rows else None
        if last is not None and last["width"] == width and last["end"] == layer - 1:
            last["end"], last["count"] = layer, last["count"] + 1
        else:
            rows.append({"start": layer, "end": layer, "count": 1, "width": width})
    for row in rows:
        row["layers"] = str(row["start"]) if row["start"] == row["end"] else f"{row['start']}–{row['end']}"
    return rows


def _load_code(repo: str, mixed: bool, has_tokenizer: bool, parent: str | None) -> str:
    remote = ", trust_remote_code=True" if mixed else ""
    tokenizer_repo = repo if has_tokenizer or not parent else parent
    return "\n".join(
        [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f"model = AutoModelForCausalLM.from_pretrained({json.dumps(repo)}{remote})",
            f"tokenizer = AutoTokenizer.from_pretrained({json.dumps(tokenizer_repo)})",
            'inputs = tokenizer("The capital of France is", return_tensors="pt").to(model.device)',
            "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=20)[0]))",
        ]
    )


def model_card(
    model: PreTrainedModel,
    *,
    parent: str | None = None,
    results: Sequence[Mapping[str, Any]] | None = None,
    int8: bool = False,
    repo_id: str | None = None,
    parent_num_parameters: int | None = None,
    parent_num_layers: int | None = None,
    has_tokenizer: bool = True,
) -> ModelCard:
    """The model card of an extracted sub-network: parent, kept layers and widths, size, results, how to load it.

    `parent`, `parent_num_parameters` and `parent_num_layers` default to what extraction recorded in
    `config.hf_llama_nas`; `int8` is implied for a model loaded in 8 bit. `results` are measured scores,
    e.g. `[{"task": "arc_easy", "metric": "acc", "value": 0.61, "num_fewshot": 0}]`; they also go into the
    card's `model-index` metadata, which the Hub shows as evaluation results.
    """
    config = model.config
    provenance = dict(getattr(config, "hf_llama_nas", None) or {})
    parent = parent or provenance.get("parent")
    parent_num_parameters = parent_num_parameters or provenance.get("parent_num_parameters")
    parent_num_layers = parent_num_layers or provenance.get("parent_num_layers")
    int8 = bool(int8 or getattr(model, "is_loaded_in_8bit", False))
    results = check_results(results)

    own = SubnetConfig.full(config)
    recorded = provenance.get("subnet") or {}
    layers = list(recorded.get("layers", own.layers))
    widths = list(recorded.get("intermediate_size", own.intermediate_size))
    if len(layers) != config.num_hidden_layers or len(widths) != config.num_hidden_layers:
        raise LlamaNASError(
            f"config.hf_llama_nas records a sub-network of {len(layers)} layers but the model has "
            f"{config.num_hidden_layers}: the provenance does not belong to this model. Re-extract the sub-network."
        )
    mixed = len(set(widths)) > 1
    num_parameters = sum(p.numel() for p in model.parameters())
    ratio = num_parameters / parent_num_parameters if parent_num_parameters else None

    parent_short = parent.rstrip("/").split("/")[-1] if parent else "llama"
    model_id = repo_id or f"{parent_short}-nas-{len(layers)}L"
    repo = repo_id or "path/to/this/folder"
    tags = ["llama", "hf_llama_nas", "neural-architecture-search"] + (["8-bit", "bitsandbytes"] if int8 else [])
    card_data = ModelCardData(
        base_model=parent if is_hub_id(parent) else None,
        library_name="transformers",
        pipeline_tag=TASK_TYPE,
        tags=tags,
        eval_results=[_eval_result(result) for result in results] or None,
        model_name=model_id if results else None,  # the Hub reads it only as the name of the results
    )
    if parent is None:
        parent_md = "an unrecorded Llama model"
    else:
        parent_md = f"[{parent}](https://huggingface.co/{parent})" if is_hub_id(parent) else f"`{parent}`"
    # Imported here: the package's __init__ may import this module before it defines __version__.
    from .. import __version__

    return ModelCard.from_template(
        card_data,
        template_path=str(template_path()),
        model_id=model_id,
        parent_md=parent_md,
        parent_repr=json.dumps(parent) if parent else "<parent model>",
        architecture=type(model).__name__,
        config_model_type=config.model_type,
        hidden_size=config.hidden_size,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        vocab_size=config.vocab_size,
        num_layers=len(layers),
        parent_num_layers=parent_num_layers,
        widths=widths,
        mixed=mixed,
        layer_rows=_layer_rows(layers, widths),
        subnet_json=json.dumps({"layers": layers, "intermediate_size": widths}),
        subnet_id=provenance.get("subnet_id", own.id),
        num_parameters=f"{num_parameters:,}",
        num_parameters_short=_human_count(num_parameters),
        parent_num_parameters=f"{parent_num_parameters:,}" if parent_num_parameters else None,
        parameter_ratio=f"{ratio:.1%}" if ratio else None,
        smaller_by=f"{1 / ratio:.2f}×" if ratio else None,
        size_fp16=_human_bytes(own.num_bytes(config, "float16")),
        size_int8=_human_bytes(own.num_bytes(config, "int8")),
        int8=int8,
        results=[
            {
                "task": result["task"],
                "metric": result["metric"],
                "value": f"{result['value']:.4g}",
                "num_fewshot": result.get("num_fewshot", "–"),
                "limit": result.get("limit", "all"),
            }
            for result in results
        ],
        load_code=_load_code(repo, mixed, has_tokenizer, parent),
        has_tokenizer=has_tokenizer,
        hf_llama_nas_version=__version__,
    )


def _check_empty_folder(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise LlamaNASError(
            f"{str(folder)!r} already exists and is not an empty directory: pass a new or empty directory, "
            "or remove it first (nothing is overwritten)."
        )


def prepare_hub_folder(
    model: PreTrainedModel,
    folder: str | os.PathLike,
    *,
    tokenizer: Any | None = None,
    int8: bool = False,
    results: Sequence[Mapping[str, Any]] | None = None,
    parent: str | None = None,
    repo_id: str | None = None,
    parent_num_parameters: int | None = None,
) -> Path:
    """Write exactly what `push_to_hub` uploads: the checkpoint (`save_subnetwork`) and its `README.md` card.

    The folder must be new or empty, so nothing of the user's is overwritten.
    """
    folder = Path(folder)
    _check_empty_folder(folder)
    if getattr(getattr(model, "hf_quantizer", None), "pre_quantized", False):
        raise LlamaNASError(
            "This model was loaded from an INT8 checkpoint, which transformers cannot serialise again: push the "
            "checkpoint directory itself with push_checkpoint_to_hub(directory, repo_id) or "
            "`llama-nas push DIRECTORY REPO_ID`."
        )
    results = check_results(results)
    card = model_card(
        model,
        parent=parent,
        results=results,
        int8=int8,
        repo_id=repo_id,
        parent_num_parameters=parent_num_parameters,
        has_tokenizer=tokenizer is not None,
    )
    save_subnetwork(model, folder, tokenizer=tokenizer, int8=int8)
    card.save(folder / "README.md")
    return folder


def _link_or_copy(source: str, target: str) -> str:
    """Hard-link when possible: a multi-GB checkpoint is staged for upload without being copied."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def prepare_checkpoint_folder(
    checkpoint: str | os.PathLike,
    folder: str | os.PathLike,
    *,
    results: Sequence[Mapping[str, Any]] | None = None,
    parent: str | None = None,
    repo_id: str | None = None,
) -> Path:
    """Stage a saved checkpoint (e.g. the output of `llama-nas extract`) plus its `README.md` card for upload.

    The files are uploaded as saved, not re-serialised: INT8 checkpoints cannot be saved again once loaded.
    The checkpoint is loaded once, to check that it loads and to describe it in the card.
    """
    from transformers import AutoModelForCausalLM

    checkpoint, folder = Path(checkpoint), Path(folder)
    if not (checkpoint / "config.json").is_file():
        raise LlamaNASError(
            f"{str(checkpoint)!r} is not a saved checkpoint (no config.json): pass the directory written by "
            "save_subnetwork or `llama-nas extract`."
        )
    if (checkpoint / "README.md").exists():
        raise LlamaNASError(
            f"{str(checkpoint)!r} already has a README.md: remove it to have the model card generated, or upload the "
            "directory as it is with `hf upload`."
        )
    _check_empty_folder(folder)
    results = check_results(results)
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    has_tokenizer = any((checkpoint / name).is_file() for name in TOKENIZER_FILES)
    card = model_card(model, parent=parent, results=results, repo_id=repo_id, has_tokenizer=has_tokenizer)
    shutil.copytree(checkpoint, folder, copy_function=_link_or_copy, dirs_exist_ok=True)
    card.save(folder / "README.md")
    return folder


def _upload(folder: Path, repo_id: str, *, private: bool, token: str | None, commit_message: str) -> str:
    """Create the repo if needed and upload `folder` in one commit; returns the commit URL."""
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    commit = api.upload_folder(
        repo_id=getattr(repo_url, "repo_id", None) or repo_id,
        folder_path=folder,
        repo_type="model",
        commit_message=commit_message,
    )
    return str(getattr(commit, "commit_url", commit))


def _commit_message(num_layers: int, int8: bool) -> str:
    return f"Upload {'INT8 ' if int8 else ''}sub-network with {num_layers} layers (hf_llama_nas)"


def push_to_hub(
    model: PreTrainedModel,
    repo_id: str,
    *,
    tokenizer: Any | None = None,
    int8: bool = False,
    results: Sequence[Mapping[str, Any]] | None = None,
    parent: str | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    parent_num_parameters: int | None = None,
) -> str:
    """Upload an extracted sub-network with its model card to the Hub repo `repo_id` (created if needed).

    The folder is prepared first, so a failure (e.g. bitsandbytes missing for `int8`) creates no empty repo.
    Returns the URL of the commit.
    """
    with tempfile.TemporaryDirectory(prefix="hf_llama_nas_push_") as tmp:
        folder = prepare_hub_folder(
            model,
            Path(tmp) / "upload",
            tokenizer=tokenizer,
            int8=int8,
            results=results,
            parent=parent,
            repo_id=repo_id,
            parent_num_parameters=parent_num_parameters,
        )
        message = commit_message or _commit_message(model.config.num_hidden_layers, int8)
        return _upload(folder, repo_id, private=private, token=token, commit_message=message)


def push_checkpoint_to_hub(
    checkpoint: str | os.PathLike,
    repo_id: str,
    *,
    results: Sequence[Mapping[str, Any]] | None = None,
    parent: str | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a saved sub-network checkpoint as it is, plus its model card; returns the commit URL.

    This is the way to share an INT8 checkpoint, which cannot be loaded and saved again.
    """
    checkpoint = Path(checkpoint)
    # Staged next to the checkpoint, on the same file system, so its files are hard-linked rather than copied.
    staging_root = checkpoint.resolve().parent if os.access(checkpoint.resolve().parent, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix=".hf_llama_nas_push_", dir=staging_root) as tmp:
        folder = prepare_checkpoint_folder(
            checkpoint, Path(tmp) / "upload", results=results, parent=parent, repo_id=repo_id
        )
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        int8 = bool((config.get("quantization_config") or {}).get("load_in_8bit"))
        message = commit_message or _commit_message(config["num_hidden_layers"], int8)
        return _upload(folder, repo_id, private=private, token=token, commit_message=message)


__all__ = [
    "LM_EVAL_DATASETS",
    "check_results",
    "load_results",
    "model_card",
    "prepare_checkpoint_folder",
    "prepare_hub_folder",
    "push_checkpoint_to_hub",
    "push_to_hub",
    "results_from_lm_eval",
    "template_path",
]
