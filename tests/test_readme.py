"""README.md stays true: its commands are the ones CI runs and its Python examples execute."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _bash_blocks():
    return re.findall(r"```bash\n(.*?)```", README, re.S)


def test_ci_runs_exactly_the_readme_test_command():
    test_command = next(b.strip() for b in _bash_blocks() if "pytest" in b)
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_main_command_is_the_demo_chat():
    main_command = next(b.strip() for b in _bash_blocks() if "gptoss-hub chat" in b)
    assert main_command.endswith('gptoss-hub chat --model tiny --tools demo "What is the weather in Tokyo?"')


@pytest.mark.slow
def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["call"].name == "get_weather" and namespace["call"].arguments == {"location": "Tokyo"}
    assert namespace["ids"][-2:] == [200006, 173781]  # ends with <|start|>assistant
