"""vLLM over several processes, for real: pipeline parallel 2 on tiny-harmony through `gh.load` and the
server's app, tensor parallel 2 on its 2-KV-head twin through `gptoss-hub serve`, and two "nodes" over
loopback, each giving the reference's greedy ids and replies.

Each run is a process of its own (vLLM's workers are spawned, and one engine per process keeps the memory of
the others out of it); each takes a minute or two to load on a 2-core machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

pytest.importorskip("vllm", reason="vLLM's CPU build is installed by .ci/run")

pytestmark = pytest.mark.slow

#: Corpus examples checked: every fourth of the first 40 (answers, tool calls and tool results among them).
EXAMPLES = slice(0, 40, 4)

_LOAD_AND_GENERATE = """
import json, sys, time
import psutil
import gptoss_hub as gh
from gptoss_hub.engine import GenerationRequest
from gptoss_hub.harmony import stop_token_ids
from gptoss_hub.testing import corpus_examples

def main():
    started = time.monotonic()
    model = gh.load(sys.argv[1], backend="vllm", **json.loads(sys.argv[2]))
    loaded = time.monotonic() - started
    workers = len(psutil.Process().children(recursive=True))
    replies = []
    for example in corpus_examples()[{start}:{stop}:{step}]:
        request = GenerationRequest(
            prompt_ids=list(example.prompt_ids), stop_token_ids=stop_token_ids(),
            max_tokens=len(example.completion_ids) + 8, temperature=0.0,
        )
        replies.append([i for chunk in model._engine.generate(request) for i in chunk.token_ids])
    details = {{k: model.info.details.get(k) for k in ("tensor_parallel_size", "pipeline_parallel_size")}}
    served = []
    if len(sys.argv) > 3:  # and through the server's app, what `gptoss-hub serve` runs
        from fastapi.testclient import TestClient
        from gptoss_hub.server import create_app

        with TestClient(create_app(model, model_name="tiny")) as client:
            for question in json.loads(sys.argv[3]):
                body = {{"model": "tiny", "messages": [{{"role": "user", "content": question}}], "temperature": 0}}
                served.append(client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"])
    print(json.dumps({{"loaded": loaded, "workers": workers, "replies": replies, "details": details, "served": served}}))
    model.close()

if __name__ == "__main__":
    main()
"""


def _reference() -> list[list[int]]:
    from gptoss_hub.testing import corpus_examples

    return [list(example.completion_ids) for example in corpus_examples()[EXAMPLES]]


QUESTIONS = ("What is the weather in Tokyo?", "How many r's are in strawberry?", "Say hello.")


def _same_as_reference(message: dict, expected) -> bool:
    calls = [(c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or ()]
    return (
        message.get("content") == (expected.content or None)
        and message.get("reasoning_content") == expected.reasoning
        and calls == [(c.name, c.raw_arguments) for c in expected.tool_calls]
    )


def test_pipeline_parallel_2_through_gh_load_and_the_server_gives_the_reference(tmp_path, tiny_model):
    script = tmp_path / "pipeline.py"
    script.write_text(_LOAD_AND_GENERATE.format(start=EXAMPLES.start, stop=EXAMPLES.stop, step=EXAMPLES.step))
    options = {"pipeline_parallel_size": 2, "distributed_executor_backend": "mp", "dtype": "float32"}
    done = subprocess.run(
        [sys.executable, str(script), "tiny", json.dumps(options), json.dumps(QUESTIONS)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1])
    assert result["details"] == {"tensor_parallel_size": 1, "pipeline_parallel_size": 2}
    assert result["workers"] >= 2  # the engine core and a worker per stage
    assert result["replies"] == _reference()
    for question, message in zip(QUESTIONS, result["served"], strict=True):
        expected = tiny_model.chat([{"role": "user", "content": question}], temperature=0)
        assert _same_as_reference(message, expected), (question, message)


def test_tensor_parallel_2_through_serve_gives_the_reference_replies(tiny_model, tmp_path):
    import httpx
    from loopback import serving_hub

    from gptoss_hub.testing import kv_heads_checkpoint_path

    arguments = ["--model", str(kv_heads_checkpoint_path()), "--backend", "vllm"]
    for option in ("tensor_parallel_size=2", "distributed_executor_backend=mp", "dtype=float32", "cpu_kv_cache_gib=1"):
        arguments += ["--option", option]
    with serving_hub(arguments, tmp_path / "serve.log", start_seconds=1200) as (_, base):
        for question in QUESTIONS:
            messages = [{"role": "user", "content": question}]
            body = {"model": kv_heads_checkpoint_path().name, "messages": messages, "temperature": 0}
            reply = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=300).json()
            assert "choices" in reply, reply
            expected = tiny_model.chat(messages, temperature=0)
            assert _same_as_reference(reply["choices"][0]["message"], expected), (question, reply)
            assert reply["usage"]["completion_tokens"] == expected.usage.completion_tokens


def test_two_nodes_without_ray_over_loopback(tmp_path):
    """Two "nodes" as two processes on this machine: the head (`node_rank=0`) through `gh.load`, the follower
    through `gptoss-hub serve --option node_rank=1`, which holds the second pipeline stage and serves nothing.
    The head gives the reference ids; the follower stops cleanly when told to."""
    import signal

    import psutil

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nodes = {"nnodes": 2, "master_addr": "127.0.0.1", "master_port": port}
    shared = {"pipeline_parallel_size": 2, "distributed_executor_backend": "mp", "dtype": "float32"} | nodes
    follower_command = [sys.executable, "-m", "gptoss_hub.cli.main", "serve", "--model", "tiny", "--backend", "vllm"]
    for name, value in (shared | {"node_rank": 1}).items():
        follower_command += ["--option", f"{name}={value}"]
    follower_log = tmp_path / "follower.log"
    with follower_log.open("w") as output:
        follower = subprocess.Popen(follower_command, stdout=output, stderr=subprocess.STDOUT)
    try:
        script = tmp_path / "head.py"
        script.write_text(_LOAD_AND_GENERATE.format(start=EXAMPLES.start, stop=EXAMPLES.stop, step=EXAMPLES.step))
        head = subprocess.run(
            [sys.executable, str(script), "tiny", json.dumps(shared | {"node_rank": 0})],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert head.returncode == 0, head.stderr[-3000:] + follower_log.read_text()[-3000:]
        lines = [line for line in head.stdout.splitlines() if line.startswith("{")]
        assert json.loads(lines[-1])["replies"] == _reference()
        assert "worker node 1 of 2" in follower_log.read_text()
        assert follower.poll() is None, follower_log.read_text()[-3000:]
        workers = psutil.Process(follower.pid).children(recursive=True)
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(120) == 128 + signal.SIGTERM
        _, alive = psutil.wait_procs(workers, timeout=30)
        assert alive == [], [process.pid for process in alive]
    finally:
        if follower.poll() is None:
            follower.kill()
