"""A LINAS search on the synthetic problem, run as its own process by the resume and distributed tests.

    python -m tests.search_worker OUTPUT_DIR NUM_EVALS SLEEP_S [--resume]
"""

from __future__ import annotations

import sys

from hf_llama_nas.search import LINAS
from tests.search_helpers import DIMS, SPACE, loss_objective

SETTINGS = dict(population=10, batch_size=5, seed=7, inner_population=24, inner_generations=6)


def search(num_evals: int, sleep: float = 0.0) -> LINAS:
    return LINAS(SPACE, [loss_objective(sleep), "params"], num_evals=num_evals, **SETTINGS)


def main(argv: list[str]) -> None:
    output_dir, num_evals, sleep = argv[0], int(argv[1]), float(argv[2])
    search(num_evals, sleep).run(dims=DIMS, output_dir=output_dir, resume="--resume" in argv, progress=False)


if __name__ == "__main__":
    main(sys.argv[1:])
