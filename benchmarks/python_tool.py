"""The python tool's cost: a warm call beside the same code in a plain subprocess, and a cold session's start.

A warm call is one cell in a running sandboxed session (sending the code, running it, capturing its output,
sending the result back); its baseline is `python -c CODE` in a plain subprocess, what an unsandboxed,
stateless tool costs per call. A cold start is opening a session and running its first cell: bubblewrap
building the sandbox and the kernel starting in it.

    python benchmarks/python_tool.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

CODE = "total = sum(range(1000))\nprint(total)"


def _median_ms(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Measure and print; returns the medians in milliseconds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)

    from gptoss_hub.tools.python import PythonSession

    def cold() -> None:
        with PythonSession() as session:
            session.run(CODE)

    def plain() -> None:
        subprocess.run([sys.executable, "-I", "-c", CODE], capture_output=True, check=True)

    cold()  # the first session also checks once that the sandbox can be created here
    with PythonSession() as session:
        session.run(CODE)
        results = {
            "warm call": _median_ms(lambda: session.run(CODE), args.rounds),
            "plain subprocess": _median_ms(plain, args.rounds),
            "cold session start": _median_ms(cold, args.rounds),
        }
    print(f"medians of {args.rounds} rounds")
    for name, value in results.items():
        print(f"{name:20s} {value:8.1f} ms")
    overhead = results["warm call"] - results["plain subprocess"]
    print(f"warm call - plain subprocess: {overhead:+.1f} ms (target: under +50 ms)")
    print(f"cold session start: {results['cold session start']:.1f} ms (target: under 1000 ms)")
    return results


if __name__ == "__main__":
    main()
