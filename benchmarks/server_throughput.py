"""Our server over vLLM's own OpenAI server: tokens per second for the same concurrent requests.

Starts both on tiny-harmony, both in float32 (vLLM's `auto` would pick bfloat16 on a CPU): `gptoss-hub serve --backend vllm` and `python -m
vllm.entrypoints.openai.api_server` (with its gpt-oss tool-call parser), each in its own process. Then, in
alternating rounds, sends N Chat Completions requests at once to each (the same greedy requests, a mix
of plain questions and weather tool calls) and counts the completion tokens each server reports. Both
engines are vLLM with the same settings, so the ratio is what the servers add: the hub's harmony rendering
and parsing against vLLM's, and the HTTP layers.

    python benchmarks/server_throughput.py [--requests 32] [--rounds 5]

Prints the median tokens/s of each and **ours / vLLM's**, the median of each round's ratio. Both servers
run at once on this machine; the one not being measured is idle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.request import urlopen

QUESTIONS = ["What is 2 + 2?", "Say hello.", "What color is the sky?", "What is the weather in Tokyo?"]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a location.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": 'The city to get the weather for, e.g. "Tokyo".'}
            },
            "required": ["location"],
        },
    },
}


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(command: list[str], env: dict[str, str], log: Path, port: int) -> subprocess.Popen:
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 900
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{command[2]} exited:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{command[2]} did not start in 900 s")
        try:
            with urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(1)


async def _round(base_url: str, requests: int) -> float:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=600)

    async def one(number: int) -> int:
        question = QUESTIONS[number % len(QUESTIONS)]
        completion = await client.chat.completions.create(
            model="tiny-harmony",
            messages=[{"role": "user", "content": question}],
            tools=[WEATHER_TOOL],
            temperature=0.0,
            max_tokens=256,
        )
        return completion.usage.completion_tokens

    started = time.perf_counter()
    tokens = sum(await asyncio.gather(*(one(n) for n in range(requests))))
    elapsed = time.perf_counter() - started
    await client.close()
    return tokens / elapsed


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Start both servers, measure, print, and stop them; returns the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    from gptoss_hub.encoding import ensure_encodings_base
    from gptoss_hub.testing import checkpoint_path

    checkpoint = str(checkpoint_path("tiny-harmony"))
    env = os.environ | {"TIKTOKEN_ENCODINGS_BASE": str(ensure_encodings_base()), "VLLM_CPU_KVCACHE_SPACE": "1"}
    ours_port, theirs_port = _port(), _port()
    logs = Path(tempfile.mkdtemp(prefix="server-throughput-"))
    ours_command = [sys.executable, "-m", "gptoss_hub.cli.main", "serve", "--model", checkpoint, "--backend", "vllm"]
    ours_command += ["--port", str(ours_port), "--served-model-name", "tiny-harmony", "--option", "dtype=float32"]
    theirs_command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", checkpoint]
    theirs_command += ["--served-model-name", "tiny-harmony", "--dtype", "float32", "--port", str(theirs_port)]
    theirs_command += ["--enable-auto-tool-choice", "--tool-call-parser", "openai"]
    processes = []
    try:
        processes.append(_start(ours_command, env, logs / "ours.log", ours_port))
        processes.append(_start(theirs_command, env, logs / "vllm.log", theirs_port))
        ours_url, theirs_url = f"http://127.0.0.1:{ours_port}/v1", f"http://127.0.0.1:{theirs_port}/v1"
        asyncio.run(_round(ours_url, args.requests))  # warm up both
        asyncio.run(_round(theirs_url, args.requests))
        results: dict[str, list[float]] = {"ours": [], "vllm": []}
        ratios = []
        for number in range(args.rounds):
            order = [("ours", ours_url), ("vllm", theirs_url)]
            for name, url in order if number % 2 == 0 else reversed(order):
                results[name].append(asyncio.run(_round(url, args.requests)))
            ratios.append(results["ours"][-1] / results["vllm"][-1])
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    medians = {name: statistics.median(values) for name, values in results.items()}
    medians["ours_over_vllm"] = statistics.median(ratios)
    print(f"{args.requests} concurrent requests, median of {args.rounds} rounds (completion tokens/s)")
    print(f"gptoss-hub serve --backend vllm   {medians['ours']:9.1f}")
    print(f"vLLM's OpenAI server              {medians['vllm']:9.1f}")
    print(
        f"ours / vLLM's                     {medians['ours_over_vllm']:9.3f} x"
        f"   (rounds {min(ratios):.3f} to {max(ratios):.3f})"
    )
    return medians


if __name__ == "__main__":
    main()
