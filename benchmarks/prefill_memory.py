"""Peak memory of one prefill on the transformers backend: the engine (the last position's logits only)
beside a forward pass that keeps every position's logits, the cost before the engine asked for one row.

Each side runs in its own process, which loads tiny-harmony and prefills the same ~3,500-token prompt;
the figure is the process's peak resident memory after loading and after the prefill.

    python benchmarks/prefill_memory.py [--words 3400]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence

_CHILD = """
import json, resource, sys
import torch
import gptoss_hub as gh
from gptoss_hub.engine import GenerationRequest

words, mode = int(sys.argv[1]), sys.argv[2]
model = gh.load("tiny", backend="transformers/cpu")
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
prompt = model.prompt_ids([{"role": "user", "content": "weather " * words}])
engine = model._engine
if mode == "engine":
    request = GenerationRequest(prompt_ids=prompt, max_tokens=1, temperature=0.0)
    list(engine.generate(request))
else:
    with torch.inference_mode():
        engine.model(input_ids=torch.tensor([prompt]), use_cache=True)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"prompt_tokens": len(prompt), "loaded_kib": loaded, "peak_kib": peak}))
"""


def _measure(words: int, mode: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(words), mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """Measure both sides and print them; returns each side's figures (KiB)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--words", type=int, default=3400)
    args = parser.parse_args(argv)
    results = {mode: _measure(args.words, mode) for mode in ("engine", "all-logits")}
    tokens = results["engine"]["prompt_tokens"]
    print(f"prefill of {tokens} prompt tokens on transformers/cpu (tiny-harmony), peak resident memory")
    for mode, figures in results.items():
        grown = (figures["peak_kib"] - figures["loaded_kib"]) / 1024
        print(
            f"{mode:12s} loaded {figures['loaded_kib'] / 1024:8.0f} MiB   peak {figures['peak_kib'] / 1024:8.0f} MiB   (+{grown:.0f} MiB)"
        )
    return results


if __name__ == "__main__":
    main()
