"""One prepared run on a real NVIDIA GPU: the probe, the transformers GPU variants, the kit, and tokens/s.

Meant for a machine lent for minutes, with torch (CUDA) and transformers but possibly no network. It writes
into `--out` (default `gpu-check/`):

- `recording.json`: what the probe read (`gptoss-hub doctor --record`), to commit as a hardware fixture;
- `doctor.json`: `gptoss-hub doctor --json` there (NVML's view where nvidia-ml-py is installed);
- `results.json`: every step's outcome: torch's own view of the GPU, `check()` of each transformers GPU
  variant on the tiny MXFP4 export, what `load()` does with and without `fallback=True`, the conformance
  kit on `transformers/bf16`, and greedy tokens per second on the GPU beside the CPU;
- `conformance.md` (and `.json`): the kit's matrix for `transformers/bf16` on that GPU.

    python benchmarks/gpu_check.py [--out DIR] [--tokens 256] [--skip-conformance] [--only-variants]
                                   [--checkpoint tiny-harmony|tiny-random]

Each step runs on its own: one that fails is written down with its error and the others still run. Nothing
is asserted here; `tests/test_hardware.py` checks the committed recording.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: The transformers GPU variants that need MXFP4 weights.
MXFP4_VARIANTS = ("transformers/mxfp4+fa3", "transformers/mxfp4")


def _step(results: dict[str, Any], name: str, action: Callable[[], Any]) -> Any:
    """Run one step, keep its result or its error, and say how long it took."""
    print(f"== {name}", flush=True)
    start = time.perf_counter()
    try:
        value = action()
        results[name] = {"ok": True, "result": value}
    except Exception as error:  # a failing step is a finding, not the end of the run
        value = None
        results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()}
    results[name]["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(results[name], indent=1, default=str)[:4000], flush=True)
    return value


def _torch_view() -> dict[str, Any]:
    import torch
    import transformers

    if not torch.cuda.is_available():
        return {"cuda": False, "torch": torch.__version__}
    properties = torch.cuda.get_device_properties(0)
    return {
        "cuda": True,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "name": properties.name,
        "capability": f"{properties.major}.{properties.minor}",
        "total_memory_bytes": properties.total_memory,
        "multiprocessors": properties.multi_processor_count,
    }


def _record(out: Path) -> dict[str, Any]:
    from gptoss_hub.hardware.recording import record_machine

    recording = record_machine()
    (out / "recording.json").write_text(recording.model_dump_json(indent=2, exclude_defaults=True) + "\n")
    return {"description": recording.description, "accelerators": recording.expected.get("accelerators")}


def _doctor(out: Path) -> dict[str, Any]:
    from gptoss_hub.cli.main import _doctor_data

    data = _doctor_data()
    (out / "doctor.json").write_text(json.dumps(data, indent=2) + "\n")
    return {alias: the_plan["chosen"] for alias, the_plan in data["plans"].items()}


def _runtimes() -> dict[str, Any]:
    from gptoss_hub.hardware import probe

    report = probe()
    return {"runtimes": report.runtimes, "capabilities": report.capabilities.model_dump(mode="json")}


def _variant_checks(mxfp4_folder: Path) -> dict[str, list[str]]:
    from gptoss_hub.hardware import probe

    from gptoss_hub.plugins import backend_registry
    from gptoss_hub.sources import resolve_model

    spec, report, registry = resolve_model(mxfp4_folder), probe(), backend_registry()
    names = [b.name for b in registry.all() if b.name.startswith("transformers/")]
    return {name: registry.get(name).check(report, spec) for name in names}


def _load_outcome(model: str | Path, backend: str, **options: Any) -> dict[str, Any]:
    """What `gh.load` does: the engine it ran, any fallback it recorded and warned of, or its error."""
    import gptoss_hub as gh

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model_ = gh.load(model, backend=backend, **options)
        except Exception as error:
            return {"loaded": False, "error_type": type(error).__name__, "error": str(error)}
    info = model_.info
    outcome = {
        "loaded": True,
        "backend": info.backend,
        "device": info.device,
        "dtype": info.dtype,
        "quantization": info.quantization,
        "attention": info.attention,
        "fallback": info.details.get("fallback"),
        "warnings": [str(w.message) for w in caught if "fallback" in str(w.message)],
    }
    reply = model_.chat([{"role": "user", "content": "What is 2 + 2?"}], reasoning_effort="low", max_tokens=64)
    outcome["reply"] = {"content": reply.content, "finish_reason": reply.finish_reason, "error": reply.error}
    model_.close()
    return outcome


def _conformance(out: Path) -> dict[str, Any]:
    from gptoss_hub.cli.main import main as cli

    status = cli(["conformance", "--backend", "transformers/bf16", "--report", str(out / "conformance.md")])
    data = json.loads((out / "conformance.json").read_text())
    return {"exit_status": status, "summary": {k: v for k, v in data.items() if k != "results"} or data}


def _tokens_per_second(backend: str, tokens: int, rounds: int = 3) -> dict[str, Any]:
    """Greedy decode of `tokens` tokens with no stop ids, best of `rounds`, through the engine."""
    import gptoss_hub as gh
    from gptoss_hub.engine import GenerationRequest
    from gptoss_hub.harmony import render

    model = gh.load("tiny", backend=backend)
    prompt = render([{"role": "user", "content": "What is the weather in Tokyo?"}])
    request = GenerationRequest(prompt_ids=list(prompt), temperature=0.0, max_tokens=tokens, stop_token_ids=[])
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        produced = sum(len(chunk.token_ids) for chunk in model._engine.generate(request))
        best = max(best, produced / (time.perf_counter() - start))
    model.close()
    return {"backend": backend, "device": model.info.device, "tokens": produced, "tokens_per_second": round(best, 1)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every step; write and return the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("gpu-check"))
    parser.add_argument("--tokens", type=int, default=256, help="tokens per timed greedy decode (default 256)")
    parser.add_argument("--skip-conformance", action="store_true")
    parser.add_argument(
        "--checkpoint",
        default="tiny-harmony",
        choices=("tiny-harmony", "tiny-random"),
        help="the tiny checkpoint whose MXFP4 export the variants load (tiny-random builds without training)",
    )
    parser.add_argument(
        "--only-variants", action="store_true", help="only the MXFP4 variants' check and load (after adding `kernels`)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"argv": sys.argv, "env": {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE",)}}

    _step(results, "torch", _torch_view)
    _step(results, "record", lambda: _record(args.out))
    _step(results, "doctor", lambda: _doctor(args.out))
    _step(results, "runtimes", _runtimes)

    from gptoss_hub.testing import checkpoint_path
    from gptoss_hub.testing.mxfp4_exports import mxfp4_checkpoint_path

    name = args.checkpoint
    _step(results, name, lambda: str(checkpoint_path(name)))
    mxfp4 = _step(results, f"{name}-mxfp4", lambda: str(mxfp4_checkpoint_path(name)))
    if mxfp4:
        _step(results, "check", lambda: _variant_checks(Path(mxfp4)))
        for variant in MXFP4_VARIANTS:
            _step(results, f"load {variant}", lambda v=variant: _load_outcome(Path(mxfp4), v))
            _step(results, f"load {variant} fallback", lambda v=variant: _load_outcome(Path(mxfp4), v, fallback=True))
    if args.only_variants:
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        return results
    _step(results, "load transformers/bf16", lambda: _load_outcome("tiny", "transformers/bf16"))
    if not args.skip_conformance:
        _step(results, "conformance transformers/bf16", lambda: _conformance(args.out))
    gpu = _step(results, "tokens/s transformers/bf16", lambda: _tokens_per_second("transformers/bf16", args.tokens))
    cpu = _step(results, "tokens/s transformers/cpu", lambda: _tokens_per_second("transformers/cpu", args.tokens))
    if gpu and cpu:
        print(
            f"greedy tokens/s on tiny-harmony: GPU {gpu['tokens_per_second']}  CPU {cpu['tokens_per_second']}  "
            f"GPU / CPU {gpu['tokens_per_second'] / cpu['tokens_per_second']:.2f} x"
        )
    with contextlib.suppress(OSError):
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


if __name__ == "__main__":
    main()
