"""Locate the offline material in `../shared/data` (real models and text) used by examples and benchmarks.

Tests never use it: they build tiny random models. Point `LLAMA_NAS_DATA` at another copy of the folder
(e.g. on a machine where the repository lives elsewhere) to override the default location.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import LlamaNASError

#: Environment variable that overrides the location of the shared data folder.
DATA_ENV_VAR = "LLAMA_NAS_DATA"
#: The SmolLM2-135M-Instruct GGUF checkpoint, relative to the data folder.
SMOLLM2_GGUF = Path("models/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf")
#: The raw WikiText-2 test split, relative to the data folder.
WIKITEXT2_DIR = Path("text/wikitext-2-raw")
WIKITEXT2_TEST_FILES = ("wiki.test.raw",)


def shared_data_dir() -> Path:
    """The shared data folder: `$LLAMA_NAS_DATA` if set, else `<repo root>/../shared/data`."""
    configured = os.environ.get(DATA_ENV_VAR)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise LlamaNASError(f"{DATA_ENV_VAR}={configured!r} is not a directory: point it at the shared data folder.")
        return path.resolve()
    repo_root = Path(__file__).resolve().parent.parent
    path = repo_root.parent / "shared" / "data"
    if not path.is_dir():
        raise LlamaNASError(
            f"The shared data folder was not found at {path}. Set {DATA_ENV_VAR} to the folder that holds "
            "models/ and text/ (see shared/data/README.md)."
        )
    return path


def _data_file(relative: Path, what: str) -> Path:
    """A file inside the data folder, or an error that says which file is missing and where it was looked for."""
    path = shared_data_dir() / relative
    if not path.is_file():
        raise LlamaNASError(f"{what} is missing: expected {path}. Check the data folder or set {DATA_ENV_VAR}.")
    return path


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF file (a real 30-layer Llama)."""
    return _data_file(SMOLLM2_GGUF, "The SmolLM2-135M-Instruct GGUF checkpoint")


def wikitext2_test_text() -> str:
    """The raw WikiText-2 test split as one string (its non-empty rows, each ending in a newline, in order)."""
    return "".join(
        _data_file(WIKITEXT2_DIR / name, "The WikiText-2 raw test file").read_text(encoding="utf-8")
        for name in WIKITEXT2_TEST_FILES
    )


__all__ = ["DATA_ENV_VAR", "shared_data_dir", "smollm2_gguf_path", "wikitext2_test_text"]
