"""`llama-nas search` and `llama-nas report` on a tiny checkpoint."""

from __future__ import annotations

import json

from hf_llama_nas.cli import main

TEXT = " ".join(f"w{4 + (i * 7) % 90}" for i in range(200))


def search_args(llama_dir, output, *extra):
    return ["search", llama_dir, "--objectives", "perplexity,params", "--text", str(output.parent / "text.txt"),
            "--perplexity-tokens", "48", "--seq-len", "16", "--num-evals", "8", "--population", "4",
            "--batch-size", "2", "--output", str(output), *extra]


def test_search_then_resume_then_report(llama_dir, tmp_path, capsys):
    (tmp_path / "text.txt").write_text(TEXT)
    output = tmp_path / "run"
    assert main(search_args(llama_dir, output)) == 0
    printed = capsys.readouterr().out
    assert "full model" in printed and "normalised hypervolume" in printed
    lines = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    assert sum(line["type"] == "evaluation" for line in lines) == 8
    assert sum(line["type"] == "reference" for line in lines) == 1

    assert main(search_args(llama_dir, output)) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*search_args(llama_dir, output, "--resume")[:-3], "--num-evals", "10", "--output", str(output),
                 "--resume"]) == 0
    assert "10 evaluations (2 in this run" in capsys.readouterr().out

    assert main(["report", str(output)]) == 0
    for name in ("pareto_perplexity_vs_params.png", "layers_by_percentile.png", "widths_by_layer.png", "notable.md"):
        assert (output / name).stat().st_size > 0
    assert "| full model |" in (output / "notable.md").read_text()


def test_search_input_errors(llama_dir, tmp_path, capsys):
    (tmp_path / "text.txt").write_text(TEXT)
    output = tmp_path / "run"
    bad = search_args(llama_dir, output)
    bad[bad.index("perplexity,params")] = "perplexity,size"
    assert main(bad) == 2
    assert "Unknown objective(s) ['size']" in capsys.readouterr().err
    assert main([*search_args(llama_dir, output), "--constraint", "params>=5"]) == 2
    assert "params<=VALUE" in capsys.readouterr().err
    assert main([*search_args(llama_dir, output), "--constraint", "latency<=5"]) == 2
    assert "not among --objectives" in capsys.readouterr().err
    accuracy = search_args(llama_dir, output)
    accuracy[accuracy.index("perplexity,params")] = "accuracy,params"
    assert main(accuracy) == 2
    assert "--tasks" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "No results file" in capsys.readouterr().err
