"""The server under the worst request of each kind: does `/health` stay quick, and how much memory does it take?

Starts `gptoss-hub serve --model tiny --backend transformers` in its own process. For each kind of abuse,
sends its worst request (or a burst of them) `--rounds` times while a prober asks `/health` every 20 ms, and
prints: how the requests were answered, how long they took (median of the rounds), the slowest `/health`
answer during them (the median of the rounds' slowest, and the worst round's; target: under 100 ms, beside
the quiet baseline measured first) and the server's peak resident memory during them.

    python benchmarks/server_abuse.py [--rounds 3]

Kinds: a 16 KiB run of one letter (about the longest accepted: tokenizing a run costs the square of its
length, so longer runs are refused); a 300,000-letter run and a run of 40,000 spaces (refused before they
are tokenized); a body
nested 10,000 levels (refused before it is parsed); 40 responses each storing a 7 MiB reasoning item (the
store is bounded by bytes); a 3,300-token prompt (a prefill's peak memory); 16 clients that hang up right
after sending (their generations are stopped); 32 garbled bodies at once.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from gptoss_hub.testing.serving import serving_hub

HEALTH_TARGET_MS = 100.0


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Prober:
    """Asks `/health` every 20 ms and reads the server's memory, while a block runs."""

    def __init__(self, base: str, pid: int):
        self.base, self.pid = base, pid
        self.latencies: list[float] = []
        self.peak_rss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                client.get(f"{self.base}/health")
                self.latencies.append(1000 * (time.perf_counter() - started))
                self.peak_rss = max(self.peak_rss, _rss_mib(self.pid))
                time.sleep(0.02)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def _post(base: str, path: str, content: bytes) -> int:
    response = httpx.post(f"{base}{path}", content=content, headers={"content-type": "application/json"}, timeout=300)
    return response.status_code


def _chat(text: str, **fields: object) -> bytes:
    return json.dumps({"model": "tiny", "messages": [{"role": "user", "content": text}], **fields}).encode()


def _hang_up(port: int, body: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        connection.sendall(head.encode() + b"\r\n\r\n" + body)
    return 0  # no answer read: the client left


def kinds(base: str, port: int) -> dict[str, Callable[[], list[int]]]:
    """Each kind of abuse: a function sending it, returning the statuses it got."""
    reasoning = [{"type": "reasoning", "content": [{"type": "reasoning_text", "text": "x " * (7 * 2**19)}]}]
    stored = json.dumps(
        {"model": "tiny", "input": [*reasoning, {"role": "user", "content": "hi"}], "max_output_tokens": 4}
    ).encode()
    # About 3,300 tokens: as long as the tiny model's 4,096-token context comfortably takes.
    long_prompt = " ".join(f"w{number}" for number in range(1_400))
    story = _chat("Tell me a long story. " * 30)

    def burst(count: int, send: Callable[[], int]) -> list[int]:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda _: send(), range(count)))

    return {
        "16 KiB run of one letter": lambda: [_post(base, "/v1/chat/completions", _chat("a" * 16_000, max_tokens=4))],
        "300,000-letter run": lambda: [_post(base, "/v1/chat/completions", _chat("a" * 300_000))],
        "40,000 spaces": lambda: [_post(base, "/v1/chat/completions", _chat("x" + " " * 40_000 + "y"))],
        "body nested 10,000 deep": lambda: [_post(base, "/v1/chat/completions", b"[" * 10_000 + b"]" * 10_000)],
        "40 x 7 MiB stored reasoning": lambda: [_post(base, "/v1/responses", stored) for _ in range(40)],
        "3,300-token prompt": lambda: [_post(base, "/v1/chat/completions", _chat(long_prompt, max_tokens=4))],
        "16 clients hang up": lambda: burst(16, lambda: _hang_up(port, story)),
        "32 garbled bodies at once": lambda: burst(
            32, lambda: _post(base, "/v1/responses", b'{"model": "tiny", "input": [')
        ),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Measure and print; returns each kind's figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="times each kind is sent (the worst is reported)")
    args = parser.parse_args(argv)
    log = Path(tempfile.mkdtemp()) / "serve.log"
    arguments = ["--model", "tiny", "--backend", "transformers"]
    with serving_hub(arguments, log, start_seconds=600) as (server, base):
        port = int(base.rsplit(":", 1)[1])
        abuses = kinds(base, port)
        # The first long prompt allocates the engine's buffers once (a start-up cost, some 0.2 s here), so
        # every kind meets a server that has served one.
        abuses["3,300-token prompt"]()
        with Prober(base, server.pid) as quiet:
            time.sleep(2)
        results: dict[str, dict[str, float]] = {
            "quiet": {"seconds": 0.0, "health_ms": max(quiet.latencies), "worst_ms": max(quiet.latencies)}
        }
        results["quiet"]["rss_mib"] = quiet.peak_rss
        statuses: dict[str, list[int]] = {}
        for name, send in abuses.items():
            rounds: list[tuple[float, float, float]] = []
            for _ in range(args.rounds):
                with Prober(base, server.pid) as prober:
                    started = time.perf_counter()
                    statuses[name] = send()
                    elapsed = time.perf_counter() - started
                    time.sleep(0.1)
                rounds.append((elapsed, max(prober.latencies), prober.peak_rss))
            results[name] = {
                "seconds": statistics.median(r[0] for r in rounds),
                "health_ms": statistics.median(r[1] for r in rounds),
                "worst_ms": max(r[1] for r in rounds),
                "rss_mib": max(r[2] for r in rounds),
            }
    print(
        f"{'kind':30} {'answers':>8} {'took s':>7} {'/health max ms':>15} {'worst round':>12} {'target':>7} "
        f"{'RSS peak MiB':>13}"
    )
    for name, figures in results.items():
        answered = "-" if name == "quiet" else ",".join(str(s) for s in sorted(set(statuses[name])))
        target = f"<{HEALTH_TARGET_MS:.0f}"
        print(
            f"{name:30} {answered:>8} {figures['seconds']:7.2f} {figures['health_ms']:15.1f} "
            f"{figures['worst_ms']:12.1f} {target:>7} {figures['rss_mib']:13.0f}"
        )
    over = [name for name, figures in results.items() if figures["health_ms"] > HEALTH_TARGET_MS]
    print(f"/health over {HEALTH_TARGET_MS:.0f} ms during: {', '.join(over) or 'none'}")
    print(f"median /health max over the kinds: {statistics.median(f['health_ms'] for f in results.values()):.1f} ms")
    return results


if __name__ == "__main__":
    main()
