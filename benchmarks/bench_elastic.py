"""What the elastic super-network costs at run time, on the real SmolLM2-135M-Instruct (fp32, CPU).

    python benchmarks/bench_elastic.py            # ~4 minutes on 2 CPU cores; writes benchmarks/results/bench_elastic.json

Measured side by side in one process, every side interleaved within each repetition (so that load
from other processes hits all sides alike), after warm-up runs, medians over the repetitions:

(a) switching sub-networks: `set_subnet` between random sub-networks of the search space (median over
    many switches, in microseconds, and relative to one forward of 1x256 tokens), and a check that
    switching allocates no weight memory (every parameter keeps its storage pointer, size and dtype);
(b) forward latency (prefill, `use_cache=False`) at 1x256 and 8x256 tokens of the full model (plain
    `LlamaForCausalLM`), the elastic model with the full network and with a sub-network of about 2/3 of
    the parameters (mixed widths) active, and the extracted model of that sub-network.

Goals (written as met or not met, never dropped): elastic-with-subnet / extracted latency <= 1.15, and
extracted / full latency within 15% of the parameter ratio (|latency ratio / param ratio - 1| <= 0.15).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hf_llama_nas import ElasticLlamaForCausalLM, SearchSpace, SubnetConfig  # noqa: E402
from hf_llama_nas.data import smollm2_gguf_path  # noqa: E402
from hf_llama_nas.modeling import load_config_dict  # noqa: E402

NUM_LAYERS = 30
#: The mixed-width sub-network (a) of examples/smollm2_extract.py: drop layers 9-19, MLP 1280 in layers 3-8 and 20-25.
EXAMPLE_MIXED = SubnetConfig(
    layers=[i for i in range(NUM_LAYERS) if not 9 <= i <= 19],
    intermediate_size=[1536 if i <= 2 or i >= 26 else 1280 for i in range(NUM_LAYERS) if not 9 <= i <= 19],
)
SPACE_WIDTHS = (768, 1024, 1280, 1536)
ELASTIC_OVERHEAD_GOAL = 1.15
PARAM_RATIO_TOLERANCE = 0.15


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def num_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def sampled_subnet(space: SearchSpace, config: Any, target: float, tolerance: float) -> tuple[SubnetConfig, int]:
    """The first random sub-network of the space (seeds 0, 1, ...) whose parameter ratio is within `tolerance` of `target`."""
    full = SubnetConfig.full(config).num_parameters(config)
    for seed in range(100_000):
        subnet = space.sample(seed)
        if abs(subnet.num_parameters(config) / full - target) <= tolerance and len(set(subnet.intermediate_size)) > 2:
            return subnet, seed
    raise RuntimeError("no sampled sub-network near the target size")


def weight_storage(model: torch.nn.Module) -> dict[str, tuple[int, int, torch.dtype]]:
    """Storage pointer, bytes and dtype of every parameter: equal before and after switching means nothing was allocated."""
    return {
        name: (p.untyped_storage().data_ptr(), p.untyped_storage().nbytes(), p.dtype)
        for name, p in model.named_parameters()
    }


def bench_switching(model: ElasticLlamaForCausalLM, space: SearchSpace, count: int) -> dict[str, Any]:
    """Median time of `set_subnet` over `count` switches between random sub-networks, with and without space checks."""
    subnets = [space.sample(seed) for seed in range(count)]
    process = psutil.Process()
    before = weight_storage(model)
    rss_before = process.memory_info().rss
    results: dict[str, Any] = {}
    for label, check_space in (("validated", True), ("unchecked", False)):
        for subnet in subnets[:50]:
            model.set_subnet(subnet, check_space=check_space)
        times = []
        for subnet in subnets:
            start = time.perf_counter_ns()
            model.set_subnet(subnet, check_space=check_space)
            times.append(time.perf_counter_ns() - start)
        results[f"set_subnet_{label}_us"] = {
            "median": statistics.median(times) / 1e3,
            "p10": statistics.quantiles(times, n=10)[0] / 1e3,
            "p90": statistics.quantiles(times, n=10)[-1] / 1e3,
            "switches": len(times),
        }
    rss_after = process.memory_info().rss
    with torch.no_grad():
        model(torch.zeros(1, 8, dtype=torch.long), use_cache=False)
    after = weight_storage(model)
    model.set_subnet(None)
    results["weights_unchanged"] = before == after
    results["parameters_checked"] = len(before)
    results["parameter_bytes"] = sum(nbytes for _, nbytes, _ in {v[0]: v for v in before.values()}.values())
    results["rss_delta_mb"] = (rss_after - rss_before) / 1e6
    return results


#: A side of the latency comparison: what to do before timing (e.g. activate a sub-network), then the timed forward.
Side = tuple[Callable[[], None], Callable[[torch.Tensor], Any]]


def bench_forward(sides: dict[str, Side], batch: torch.Tensor, warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per forward of each side, the sides interleaved in every repetition (rotating their order)."""
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.no_grad():
        for _ in range(warmup):
            for name in names:
                prepare, run = sides[name]
                prepare()
                run(batch)
        for rep in range(repeats):
            order = names[rep % len(names):] + names[: rep % len(names)]
            for name in order:
                prepare, run = sides[name]
                prepare()
                gc.collect()
                start = time.perf_counter()
                run(batch)
                times[name].append(time.perf_counter() - start)
    return times


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file or model directory (default: the shared SmolLM2 GGUF)")
    parser.add_argument("--switches", type=int, default=2000, help="set_subnet calls timed (default 2000)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up forwards per side and batch size (default 2)")
    parser.add_argument("--repeats", type=int, nargs=2, default=(20, 8), metavar=("R1", "R8"),
                        help="timed forwards per side at 1x256 and at 8x256 tokens (default 20 8)")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks/results/bench_elastic.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    load_before = os.getloadavg()
    model_path = args.model or smollm2_gguf_path()
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; load average {load_before}")

    config = load_config_dict(model_path)
    space = SearchSpace.for_model(config, min_layers=16, max_layers=NUM_LAYERS, intermediate_size=SPACE_WIDTHS, layer_mode="any")
    log("loading SmolLM2 as ElasticLlamaForCausalLM (GGUF, de-quantised to fp32) ...")
    elastic = ElasticLlamaForCausalLM.from_pretrained(model_path, search_space=space, dtype=torch.float32).eval()
    full_subnet = SubnetConfig.full(elastic.config)
    plain = elastic.extract_subnetwork(full_subnet).eval()
    log(f"full model: {type(plain).__name__} with copied weights, {num_parameters(plain) / 1e6:.1f}M parameters")

    sampled, seed = sampled_subnet(space, elastic.config, target=2 / 3, tolerance=0.02)
    subnets = {"example (a)": EXAMPLE_MIXED, f"sampled (seed {seed})": sampled}
    full_params = num_parameters(plain)
    extracted = {name: elastic.extract_subnetwork(subnet).eval() for name, subnet in subnets.items()}

    log(f"(a) switching cost: {args.switches} set_subnet calls between random sub-networks ...")
    switching = bench_switching(elastic, space, args.switches)

    def forward_of(model: torch.nn.Module) -> Callable[[torch.Tensor], Any]:
        return lambda batch: model(batch, use_cache=False).logits

    def nothing() -> None:
        return None

    def activate(subnet: SubnetConfig | None) -> Callable[[], None]:
        return lambda: elastic.set_subnet(subnet)

    sides: dict[str, Side] = {
        "full (LlamaForCausalLM)": (nothing, forward_of(plain)),
        "elastic, full network": (activate(None), forward_of(elastic)),
    }
    for name, subnet in subnets.items():
        sides[f"elastic, {name}"] = (activate(subnet), forward_of(elastic))
        sides[f"extracted, {name}"] = (nothing, forward_of(extracted[name]))

    latency: dict[str, Any] = {}
    generator = torch.Generator().manual_seed(0)
    for batch_size, repeats in zip((1, 8), args.repeats):
        shape = f"{batch_size}x{args.seq_len}"
        log(f"(b) forward latency at {shape}: {len(sides)} sides x ({args.warmup} warm-up + {repeats} timed), interleaved ...")
        batch = torch.randint(0, config["vocab_size"], (batch_size, args.seq_len), generator=generator)
        times = bench_forward(sides, batch, args.warmup, repeats)
        latency[shape] = {
            name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "runs_s": t}
            for name, t in times.items()
        }
        for name, t in times.items():
            log(f"  {name:42s} median {statistics.median(t) * 1e3:8.1f} ms  (min {min(t) * 1e3:.1f}, max {max(t) * 1e3:.1f})")

    full_forward_s = latency[f"1x{args.seq_len}"]["full (LlamaForCausalLM)"]["median_s"]
    switch_us = switching["set_subnet_validated_us"]["median"]
    switching["relative_to_full_forward_1x256"] = switch_us * 1e-6 / full_forward_s

    comparisons = []
    for name, subnet in subnets.items():
        params = num_parameters(extracted[name])
        param_ratio = params / full_params
        for shape, sides_latency in latency.items():
            full_s = sides_latency["full (LlamaForCausalLM)"]["median_s"]
            elastic_s = sides_latency[f"elastic, {name}"]["median_s"]
            extracted_s = sides_latency[f"extracted, {name}"]["median_s"]
            latency_ratio = extracted_s / full_s
            deviation = latency_ratio / param_ratio - 1
            comparisons.append({
                "subnet": name,
                "subnet_config": subnet.to_dict(),
                "subnet_id": subnet.id,
                "layers": subnet.num_layers,
                "shape": shape,
                "params": params,
                "param_ratio": param_ratio,
                "elastic_over_extracted": elastic_s / extracted_s,
                "elastic_overhead_goal": ELASTIC_OVERHEAD_GOAL,
                "elastic_overhead_goal_met": elastic_s / extracted_s <= ELASTIC_OVERHEAD_GOAL,
                "extracted_over_full_latency": latency_ratio,
                "latency_ratio_over_param_ratio_minus_1": deviation,
                "param_ratio_goal_tolerance": PARAM_RATIO_TOLERANCE,
                "param_ratio_goal_met": abs(deviation) <= PARAM_RATIO_TOLERANCE,
            })
    elastic_full = {
        shape: sides_latency["elastic, full network"]["median_s"] / sides_latency["full (LlamaForCausalLM)"]["median_s"]
        for shape, sides_latency in latency.items()
    }

    results = {
        "description": __doc__.strip().split("\n\n")[0],
        "model": str(model_path),
        "dtype": "float32",
        "search_space": space.to_dict(),
        "switching": switching,
        "latency": latency,
        "elastic_full_over_plain_full": elastic_full,
        "comparisons": comparisons,
        "all_goals_met": switching["weights_unchanged"]
        and all(c["elastic_overhead_goal_met"] and c["param_ratio_goal_met"] for c in comparisons),
        "settings": {"warmup": args.warmup, "repeats": {"1x256": args.repeats[0], "8x256": args.repeats[1]},
                     "switches": args.switches, "seq_len": args.seq_len, "use_cache": False},
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpu_model": _cpu_model(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "wall_time_s": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(summary(results))
    log(f"results written to {args.output}; total {results['wall_time_s']:.0f} s")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def summary(results: dict[str, Any]) -> str:
    """The figures of the results file as a short text, goals marked met / NOT met."""
    s = results["switching"]
    machine = results["machine"]
    lines = [
        "",
        f"SmolLM2-135M fp32, CPU ({machine['cpu_model']}, {machine['cpu_count']} CPUs, {machine['torch_threads']} threads, torch {machine['torch']})",
        f"switching: set_subnet median {s['set_subnet_validated_us']['median']:.1f} us "
        f"(without space check {s['set_subnet_unchecked_us']['median']:.1f} us) = "
        f"{s['relative_to_full_forward_1x256']:.2e} of a full 1x256 forward; "
        f"weights unchanged: {s['weights_unchanged']} ({s['parameters_checked']} parameters), RSS delta {s['rss_delta_mb']:.1f} MB",
        "",
        "| side | " + " | ".join(f"{shape} median (ms)" for shape in results["latency"]) + " |",
        "|---|" + "---|" * len(results["latency"]),
    ]
    sides = next(iter(results["latency"].values())).keys()
    for side in sides:
        cells = " | ".join(f"{results['latency'][shape][side]['median_s'] * 1e3:.1f}" for shape in results["latency"])
        lines.append(f"| {side} | {cells} |")
    lines.append("")
    lines.append("elastic full / plain full: " + ", ".join(f"{k} {v:.3f}" for k, v in results["elastic_full_over_plain_full"].items()))
    for c in results["comparisons"]:
        lines.append(
            f"{c['subnet']} ({c['layers']} layers, params ratio {c['param_ratio']:.3f}) at {c['shape']}: "
            f"elastic/extracted {c['elastic_over_extracted']:.3f} (goal <= {c['elastic_overhead_goal']}: "
            f"{'met' if c['elastic_overhead_goal_met'] else 'NOT met'}); extracted/full latency {c['extracted_over_full_latency']:.3f}, "
            f"/ param ratio - 1 = {c['latency_ratio_over_param_ratio_minus_1']:+.3f} (goal |.| <= {c['param_ratio_goal_tolerance']}: "
            f"{'met' if c['param_ratio_goal_met'] else 'NOT met'})"
        )
    lines.append(f"all goals met: {results['all_goals_met']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
