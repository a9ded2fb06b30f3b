"""`gptoss-hub bench`: the figures, the table, the JSON and the chart; the choice of backends and its errors."""

from __future__ import annotations

import json

import pytest

from gptoss_hub.cli.bench import chosen_backends
from gptoss_hub.cli.main import main
from gptoss_hub.errors import NoBackendError


def test_bench_writes_the_table_json_and_chart(tmp_path, capsys):
    figures, chart = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(
        [
            *("bench", "--backend", "echo", "--concurrency", "1,2", "--repeats", "2", "--tokens", "8"),
            *("--json", str(figures), "--chart", str(chart)),
        ]
    )
    assert code == 0
    shown = capsys.readouterr().out
    assert "gptoss-hub bench: tiny" in shown and "echo" in shown
    (echo,) = json.loads(figures.read_text())["backends"]
    assert echo["backend"] == "echo" and set(echo["throughput"]) == {"1", "2"}
    assert echo["ttft_s"] > 0 and echo["decode_tokens_per_s"] > 0 and echo["decode_tokens"] == 8
    assert echo["hub_over_raw"] is None  # echo has no runtime of its own to compare with
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_all_means_the_backends_that_can_run_the_model_here_without_test_stand_ins():
    names = chosen_backends("tiny", "all")
    assert "echo" not in names and "transformers/cpu" in names
    with pytest.raises(NoBackendError, match="mlx/metal cannot run tiny-harmony here: MLX reaches a GPU through Metal"):
        chosen_backends("tiny", "echo,mlx/metal")
    with pytest.raises(NoBackendError, match="no backend has that name"):
        chosen_backends("tiny", "nonsense")


def test_bad_settings_are_refused(capsys):
    assert main(["bench", "--backend", "echo", "--concurrency", "1,many"]) == 2
    assert "--concurrency takes numbers like 1,4,16" in capsys.readouterr().err
    assert main(["bench", "--backend", "echo", "--repeats", "0"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["llamacpp/cpu", "mlx/cpu"])
def test_runtimes_with_a_loop_of_their_own_report_the_hubs_overhead(backend):
    from gptoss_hub.bench import bench_backend

    pytest.importorskip({"llamacpp/cpu": "llama_cpp", "mlx/cpu": "mlx_lm"}[backend])
    figures = bench_backend("tiny", backend, concurrency=(1, 2), decode_tokens=16, repeats=1)
    assert figures.backend == backend and figures.raw_tokens_per_s and figures.raw_tokens_per_s > 0
    assert figures.hub_over_raw is not None and 0.2 < figures.hub_over_raw < 5
    assert set(figures.throughput) == {1, 2}
