import json
import os
import subprocess
import sys

import pytest

from gptoss_hub import __version__
from gptoss_hub.cli.chat import load_tool
from gptoss_hub.cli.main import main
from gptoss_hub.errors import ToolError


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"gptoss-hub {__version__}"


def test_plan_and_doctor(capsys):
    from gptoss_hub.hardware import probe

    # On a CPU-only machine llama.cpp comes first where it is installed (docs/architecture.md).
    with_llamacpp = "llama_cpp" in probe().runtimes
    assert main(["plan", "tiny"]) == 0
    assert ("-> llamacpp" if with_llamacpp else "-> transformers/cpu") in capsys.readouterr().out
    assert main(["plan", "tiny", "--backend", "echo"]) == 0
    assert main(["plan", "20b", "--backend", "echo"]) == 1
    assert "echo only stands in for the tiny reference models" in capsys.readouterr().out
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "transformers/cpu" in out and "echo" in out and 'load("120b") has no backend here' in out
    # 20b needs about 45 GiB through transformers on the CPU, about 15 GiB as an MXFP4 GGUF.
    ram = probe().cpu.ram_usable_bytes
    if with_llamacpp and ram and ram > 16 * 1024**3:
        assert 'load("20b") would use llamacpp' in out


def test_plan_what_if_for_a_recorded_machine_as_json(capsys):
    import json

    assert main(["plan", "120b", "--hardware", "cpu-only", "--context", "32768", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["preferences"]["context_tokens"] == 32768 and data["chosen"] is None
    cpu = next(c for c in data["candidates"] if c["backend"] == "transformers/cpu")
    assert "GiB of RAM in bf16" in cpu["reasons"][0]
    assert main(["plan", "tiny", "--hardware", "no-such-machine"]) == 2
    assert "h100" in capsys.readouterr().err


def test_doctor_json_is_complete(capsys):
    import json

    assert main(["doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hardware"]["cpu"]["cores"] >= 1 and "torch" in data["hardware"]["runtimes"]
    assert {"20b", "120b"} == set(data["plans"]) and data["plugin_failures"] == []


def test_one_shot_chat_on_echo_backend(capsys):
    assert main(["chat", "--model", "tiny", "--backend", "echo", "Hello CLI"]) == 0
    out = capsys.readouterr().out
    assert "The user said something; repeat it." in out and "Hello CLI" in out
    assert main(["chat", "--backend", "echo", "--no-show-reasoning", "Hi"]) == 0
    assert "repeat it" not in capsys.readouterr().out


def test_hub_errors_are_one_line_not_tracebacks(capsys):
    assert main(["chat", "--model", "./missing-folder", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


def test_load_tool():
    assert load_tool("gptoss_hub.demo_tools:get_weather").__name__ == "get_weather"
    for bad in ("nocolon", "gptoss_hub.demo_tools:missing", "no_such_module_xyz:f"):
        with pytest.raises(ToolError):
            load_tool(bad)


def test_interactive_session_answers_each_line_until_exit():
    script = "first line\n/reset\nsecond line\n/exit\n"
    result = subprocess.run(
        [sys.executable, "-m", "gptoss_hub.cli.main", "chat", "--backend", "echo"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "first line" in result.stdout and "second line" in result.stdout


@pytest.mark.slow
def test_readme_main_job_shows_reasoning_call_result_and_answer():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gptoss_hub.cli.main",
            "chat",
            "--model",
            "tiny",
            "--tools",
            "demo",
            "What is the weather in Tokyo?",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    from gptoss_hub.demo_tools import get_weather

    out = result.stdout
    assert '→ get_weather({"location": "Tokyo"})' in out
    import json

    assert f"← {json.dumps(get_weather('Tokyo'))}" in out
    answer = out.split(f"← {json.dumps(get_weather('Tokyo'))}", 1)[1]
    assert "rainy" in answer and "-5" in answer  # the final answer repeats the tool's output


def test_doctor_imports_no_runtime():
    code = (
        "import sys, contextlib, io; from gptoss_hub.cli.main import main;"
        "out = io.StringIO();\nwith contextlib.redirect_stdout(out): main(['doctor'])\n"
        "print([m for m in ('torch', 'transformers', 'vllm', 'llama_cpp') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_serve_options_are_read_as_json_or_text():
    from gptoss_hub.cli.serve import backend_options
    from gptoss_hub.errors import InvalidRequestError

    assert backend_options(["dtype=float32", "tensor_parallel_size=2", "enforce_eager=true"]) == {
        "dtype": "float32",
        "tensor_parallel_size": 2,
        "enforce_eager": True,
    }
    with pytest.raises(InvalidRequestError, match="KEY=VALUE"):
        backend_options(["dtype"])


@pytest.mark.slow
def test_conformance_runs_only_the_checks_asked_for(tmp_path):
    report = tmp_path / "not-yet-made" / "one.md"  # the report's folder is made for it
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "conformance", "--backend", "echo", "-k", "greedy_ids"]
    done = subprocess.run(
        [*command, "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(report.with_suffix(".json").read_text())["rows"]
    assert rows == {"echo": {"greedy_ids_match_reference": {"outcome": "pass", "message": ""}}}


@pytest.mark.slow
def test_a_backend_that_cannot_load_fails_each_check_in_one_line(tmp_path):
    report = tmp_path / "cannot.md"
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "conformance", "--backend", "transformers/bf16"]
    # A wide terminal puts the message on pytest's summary line too; fix the width so the count is the same everywhere.
    wide = os.environ | {"COLUMNS": "250"}
    done = subprocess.run([*command, "--report", str(report)], capture_output=True, text=True, timeout=600, env=wide)
    assert done.returncode == 1
    rows = json.loads(report.with_suffix(".json").read_text())["rows"]["transformers/bf16"]
    messages = {cell["message"] for cell in rows.values()}
    assert len(rows) == 16 and len(messages) == 1
    (message,) = messages
    assert message.startswith("transformers/bf16 could not load tiny: BackendUnavailableError: Backend ")
    assert "Traceback" not in done.stdout and done.stdout.count("could not load tiny") <= 3 * len(rows)


def _pty_session(command: list[str], lines: list[str], *, timeout: float) -> str:
    """Run `command` on a pseudo-terminal (120 columns), typing each of `lines` at a `> ` prompt as a person
    would; returns everything the terminal showed."""
    import fcntl
    import os
    import pty
    import re
    import select
    import struct
    import termios
    import time

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    shown, pending = b"", list(lines)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the session ended and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", shown).rstrip().endswith(b">"):
                os.write(leader, pending.pop(0).encode() + b"\r")
                shown += b"\n"  # the next prompt must come after this one
            if process.poll() is not None and not ready:
                break
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(leader)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode("utf-8", "replace"))


@pytest.mark.slow
def test_the_terminal_chat_answers_commands_and_shows_no_runtime_chatter(tmp_path):
    """The main job as a person runs it, on a terminal: llama.cpp loads the tiny model without its warnings in
    the chat, the commands are answered (never sent to the model), and a saved chat resumes."""
    saved = tmp_path / "chat.json"
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "chat", "--model", "tiny", "--tools", "demo"]
    lines = [
        "/help",
        "/tools",
        "/effort low",
        "/effort extreme",
        "/frobnicate",
        "What is the weather in Tokyo?",
        f"/save {saved}",
        "/exit",
    ]
    shown = _pty_session(command, lines, timeout=600)
    assert "tiny-harmony on llamacpp/cpu" in shown, shown
    for chatter in ("llama_context", "n_ctx_seq", "llama_kv_cache", "Loading weights", "ggml_"):
        assert chatter not in shown, (chatter, shown)
    assert "/save FILE" in shown and "/effort low|medium|high" in shown  # /help
    assert "tools: get_weather" in shown and "reasoning effort: low" in shown
    assert "/effort takes low, medium or high (now low)" in shown
    assert "unknown command /frobnicate: /help lists the commands" in shown
    assert '→ get_weather({"location": "Tokyo"})' in shown and "The weather in Tokyo" in shown
    conversation = json.loads(saved.read_text())["messages"]
    assert [m["role"] for m in conversation] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]  # question, call, result, answer
    assert not any((m.get("content") or "").startswith("/") for m in conversation)  # no command reached the model

    resumed = _pty_session([*command, "--load", str(saved)], ["/exit"], timeout=600)
    assert "resumed: 4 messages" in resumed
    bad = subprocess.run([*command, "--load", str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Pass a file that /save wrote" in bad.stderr
