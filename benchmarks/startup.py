"""How long `import gptoss_hub` and `gptoss-hub doctor` take, each in a fresh interpreter.

Both must stay cheap: importing the package loads no plugin and probes nothing, and `doctor` probes the
hardware without importing torch. Printed side by side with a bare `python -c pass` for scale.

    python benchmarks/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

_COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import gptoss_hub": [sys.executable, "-c", "import gptoss_hub"],
    "gptoss-hub doctor": [sys.executable, "-m", "gptoss_hub.cli.main", "doctor", "--json"],
}


def _median_seconds(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Time each command and print a table; returns the median seconds by command."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    results = {name: _median_seconds(command, args.repeat) for name, command in _COMMANDS.items()}
    baseline = results["python -c pass"]
    for name, seconds in results.items():
        print(f"{name:<22} {seconds * 1000:8.1f} ms   {seconds / baseline:5.1f} x bare python")
    return results


if __name__ == "__main__":
    main()
