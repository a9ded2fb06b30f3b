"""The conformance kit: it catches planted faults, and every installed backend passes it.

Both run the kit as a user would, in a subprocess, and read the JSON it writes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_hub.conformance import first_difference
from gptoss_hub.conformance.report import CHECK_ORDER, Matrix

pytest.importorskip("gptoss_hub_echo", reason="tests/plugins/gptoss_hub_echo is installed by .ci/run")

ROOT = Path(__file__).resolve().parent.parent


def _kit(args: list[str], tmp_path: Path, timeout: float = 900) -> tuple[subprocess.CompletedProcess, list[dict]]:
    report = tmp_path / "results.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", "-o", "addopts="]
    result = subprocess.run(
        [*command, *args, f"--gptoss-report={report}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=os.environ.copy(),
    )
    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    return result, json.loads(report.read_text())


def test_first_difference_spells_out_both_tokens():
    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([200005, 17], [200005, 18]).startswith("first difference at token 1: expected 17 (")
    assert "got nothing (1 tokens instead of 2)" in first_difference([5, 200002], [5])
    assert "expected nothing, got 200006 ('<|start|>') (3 tokens instead of 2)" in first_difference(
        [5, 200002], [5, 200002, 200006]
    )


@pytest.fixture(scope="module")
def fault_matrix(tmp_path_factory) -> Matrix:
    tmp_path = tmp_path_factory.mktemp("faults")
    _, results = _kit([str(ROOT / "tests" / "kit_faults.py"), "--gptoss-timeout=5"], tmp_path)
    return Matrix.from_results(results)


def test_a_faithful_engine_passes_every_check(fault_matrix):
    outcomes = fault_matrix.cells["TestFaithful"]
    assert list(outcomes) == list(CHECK_ORDER)
    assert {check: o for check, (o, _) in outcomes.items() if o != "pass"} == {
        "json_schema_output": "skip",
        "logprobs_returned": "skip",
    }
    assert "does not declare json_schema" in outcomes["json_schema_output"][1]


@pytest.mark.parametrize(
    ("engine", "check", "message"),
    [
        (
            "TestIgnoresStop",
            "stop_tokens_end_generation",
            r"first difference at token \d+: expected nothing, got 200006",
        ),
        ("TestIgnoresStop", "greedy_ids_match_reference", r"first difference at token \d+: expected nothing"),
        ("TestOffByOne", "greedy_ids_match_reference", r"first difference at token \d+: expected (\d+) .*, got \d+"),
        (
            "TestStreamDropsLastToken",
            "streaming_equals_non_streaming",
            r"first difference at token \d+: expected 20000[12] \('<\|(return|call)\|>'\), got nothing",
        ),
        ("TestClaimsLogprobs", "logprobs_returned", r"0 logprob entries for \d+ tokens"),
        ("TestClaimsJsonSchema", "json_schema_output", r"is not JSON"),
        ("TestHangsOnShortBudgets", "max_tokens_gives_length", r"no result within 5 s: the backend hangs"),
    ],
)
def test_each_planted_fault_fails_its_check_naming_the_difference(fault_matrix, engine, check, message):
    outcome, text = fault_matrix.cells[engine][check]
    assert outcome == "fail", f"{engine}: {check} did not fail"
    assert re.search(message, text), text


def test_off_by_one_is_reported_with_both_ids(fault_matrix):
    text = fault_matrix.cells["TestOffByOne"]["greedy_ids_match_reference"][1]
    expected, got = map(int, re.search(r"expected (\d+) .*, got (\d+)", text).groups())
    assert got == expected + 1


def test_faults_fail_only_where_they_should(fault_matrix):
    # A planted fault must not be hidden among unrelated failures: the rest of each row still passes.
    unrelated = {
        "TestClaimsLogprobs": {"logprobs_returned"},
        "TestClaimsJsonSchema": {"json_schema_output"},
        "TestOffByOne": {
            "greedy_ids_match_reference",
            "stop_tokens_end_generation",
            "reasoning_and_content_split",
            "weather_tool_call_arguments",
            "tool_result_then_final_answer",
            "multi_turn_prompt_ids_and_reply",
            "python_flow_runs_statefully_in_the_sandbox",
            "browser_flow_searches_opens_and_cites",
        },
    }
    for engine, allowed in unrelated.items():
        failed = {check for check, (o, _) in fault_matrix.cells[engine].items() if o == "fail"}
        assert failed <= allowed and failed, (engine, failed)


def _readme_matrix() -> str:
    text = (ROOT / "README.md").read_text()
    start, end = "<!-- conformance-matrix:start -->", "<!-- conformance-matrix:end -->"
    return text[text.index(start) + len(start) : text.index(end)].strip()


def _table(markdown: str) -> dict[str, dict[str, str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    backends = [cell.strip(" `") for cell in lines[0].strip("|").split("|")[1:]]
    table: dict[str, dict[str, str]] = {}
    for line in lines[2:]:
        check, *cells = (cell.strip() for cell in line.strip("|").split("|"))
        table[check] = dict(zip(backends, cells, strict=True))
    return table


@pytest.mark.slow
def test_every_installed_backend_passes_and_the_readme_shows_its_matrix(tmp_path):
    """`gptoss-hub conformance --backend all --quick` here: no failure, and the README's matrix (made by a full
    run) is what it wrote. Quick: on a busy machine the full corpus on every backend would take most of CI's
    time, and the checkpoint's build already verifies every corpus example."""
    report = tmp_path / "conformance.md"
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "conformance", "--backend", "all", "--quick"]
    result = subprocess.run(
        [*command, "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=2400,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert report.with_suffix(".png").stat().st_size > 1000
    assert "Quick run: greedy ids checked on" in report.read_text()
    generated = _table(report.read_text())
    backends = set(next(iter(generated.values())))
    assert {"transformers/cpu", "llamacpp/cpu", "echo"} <= backends
    readme = _table(_readme_matrix())
    # Rows the README shows for backends installed here must be exactly what this run wrote.
    for check, cells in readme.items():
        for backend, cell in cells.items():
            if backend in backends:
                assert generated[check][backend] == cell, (check, backend)


def test_the_matrix_shows_each_engines_dtype_and_reports_time_apart_from_outcomes():
    records = [
        {
            "row": "a",
            "check": "greedy_ids_match_reference",
            "outcome": "pass",
            "message": "",
            "seconds": 2.5,
            "dtype": "float32",
        },
        {
            "row": "a",
            "check": "max_tokens_gives_length",
            "outcome": "fail",
            "message": "no",
            "seconds": 0.5,
            "dtype": "float32",
        },
        {"row": "b", "check": "greedy_ids_match_reference", "outcome": "pass", "message": ""},  # an older record
    ]
    matrix = Matrix.from_results(records)
    markdown = matrix.to_markdown()
    assert "| *engine dtype* | float32 |  |" in markdown
    assert "- `a`: 2 checks in 3.0 s; the longest, greedy ids match reference, 2.5 s" in markdown
    assert matrix.failures == 1 and matrix.to_json()["dtypes"] == {"a": "float32"}


def test_the_kit_runs_vllm_in_the_references_dtype():
    from gptoss_hub.conformance.plugin import reference_options

    assert reference_options("vllm", "tiny") == {"dtype": "float32"}
    assert reference_options("transformers/cpu", "tiny") == {} and reference_options("vllm", "./mine") == {}


def test_a_quick_sample_spreads_over_the_corpus_and_keeps_every_kind():
    from gptoss_hub.conformance.plugin import sample_examples
    from gptoss_hub.testing import corpus_examples

    examples = corpus_examples()
    sample = sample_examples(examples, 64)
    assert 64 <= len(sample) <= 64 + len({example.kind for example in examples})
    assert {example.kind for example in sample} == {example.kind for example in examples}
    positions = [examples.index(example) for example in sample]
    assert positions == sorted(positions) and positions[-1] > len(examples) * 0.9  # the end is reached too
    assert sample == sample_examples(examples, 64)  # the same every run
    assert sample_examples(examples, 0) == examples == sample_examples(examples, 10**6)
