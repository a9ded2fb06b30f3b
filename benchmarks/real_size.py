"""gpt-oss-20b at its real size on this machine: the plan's estimates beside what convert and llama.cpp take.

Run on a random-weight checkpoint with the released config, tensor names, dtypes and MXFP4 layout
(`python -m gptoss_hub.testing shaped 20b DIR`, 12.8 GiB), kept in a folder with a neutral name so that
nothing can be guessed from it:

    python -m gptoss_hub.testing shaped 20b work/my-finetune
    python benchmarks/real_size.py work/my-finetune [--work work] [--report docs/real-size.md]

It measures, each step in a process of its own so its memory is its own:

1. the plan for every backend with its memory estimate (resident, of which reclaimable, needed, disk);
2. `gptoss-hub convert --outtype mxfp4`: wall time and the peak of its anonymous and file-backed memory
   (sampled from /proc every 50 ms);
3. llama.cpp on the GGUF: load time, resident memory (anonymous + file-backed) against the plan's estimate,
   decode tokens/s through `Model.chat` over raw `Llama.generate` on the same prompt ids (the hub's
   overhead at real size), and a multi-turn chat of about 4k tokens with the tokens each turn evaluates;
4. two layers at the real width (`--layers 2`): the last position's log-probabilities of transformers,
   llama.cpp on the MXFP4 GGUF and vLLM's CPU build on the same prompt, against a stated tolerance.

The table goes to stdout and to `--report` (Markdown) with the machine's facts. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GIB = 1024**3
#: Log-probability tolerance for the two-layer comparison: over the reference's 20 likeliest tokens, no
#: runtime may differ from transformers by more than this (bf16 matrices everywhere; llama.cpp and vLLM
#: keep norms, biases and the router in f32 or bf16 as they do for the real models).
LOGPROB_TOLERANCE = 0.15
#: The user's turns of the multi-turn chat: each about 780 tokens once rendered.
TURN_TEXT = (
    "Here is part {n} of a long design document that I want you to keep in mind for the rest of our "
    "conversation. "
    + " ".join(
        f"Requirement {{n}}.{i}: the service must answer request kind {i} within {i} "
        "milliseconds, log it, and keep running when the disk is full."
        for i in range(1, 25)
    )
)
DECODE_TOKENS = 32
#: The measurements, in the order they run.
PARTS = ("plan", "convert", "llamacpp", "two-layers")


# ---------------------------------------------------------------------------------------------- measuring


def _status(pid: int | str = "self") -> dict[str, int]:
    """RssAnon, RssFile, VmRSS and VmHWM of a process, in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile", "VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it (vLLM runs its engine in a child process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, ()))
    return found


class _Sampler:
    """Peaks of the anonymous, file-backed and total resident memory of a child process and everything it
    starts (added up), sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, {"RssAnon": 0, "RssFile": 0, "VmRSS": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = {key: 0 for key in self.peak}
            for pid in _descendants(self.pid):
                try:
                    now = _status(pid)
                except OSError:
                    continue
                for key in total:
                    total[key] += now.get(key, 0)
            if not total["VmRSS"]:
                return
            for key in self.peak:
                self.peak[key] = max(self.peak[key], total[key])

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peak


def _run_stage(args: list[str], timeout: float = 3600) -> tuple[dict[str, Any], float, dict[str, int]]:
    """Run `real_size.py --stage ...` (or any command printing JSON last), return its JSON, seconds, peaks."""
    command = args if args[0] != "--stage" else [sys.executable, __file__, *args]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, text=True)
    sampler = _Sampler(process.pid)
    out, _ = process.communicate(timeout=timeout)
    seconds = time.perf_counter() - start
    peak = sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), seconds, peak


# ---------------------------------------------------------------------------------------------- stages


def _stage_llamacpp(gguf: str, turns: int) -> dict[str, Any]:
    """Load the GGUF on llama.cpp (CPU), measure memory, decode speed hub vs raw, and a multi-turn chat."""
    import gptoss_hub as gh

    before = _status()
    start = time.perf_counter()
    model = gh.load(gguf, backend="llamacpp/cpu")
    load_seconds = time.perf_counter() - start
    after_load = _status()
    llama = model._engine._llama
    messages = [{"role": "user", "content": "Write a short poem about the sea."}]
    prompt = model.prompt_ids(messages)
    raw_rates, hub_rates = [], []
    for _round in range(3):
        start = time.perf_counter()
        produced = 0
        for _token in llama.generate(prompt, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            produced += 1
            if produced == DECODE_TOKENS:
                break
        raw_rates.append(produced / (time.perf_counter() - start))
        start = time.perf_counter()
        reply = model.chat(messages, temperature=0.0, max_tokens=DECODE_TOKENS)
        hub_rates.append(len(reply.token_ids) / (time.perf_counter() - start))
    after_decode = _status()
    history: list[dict[str, Any]] = []
    rows = []
    for turn in range(1, turns + 1):
        history.append({"role": "user", "content": TURN_TEXT.format(n=turn)})
        start = time.perf_counter()
        reply = model.chat(history, temperature=0.0, max_tokens=8)
        seconds = time.perf_counter() - start
        stats = model._engine.last_prompt
        rows.append(
            {
                "turn": turn,
                "prompt_tokens": stats.prompt_tokens,
                "reused_tokens": stats.reused_tokens,
                "evaluated_tokens": stats.evaluated_tokens,
                "seconds": round(seconds, 1),
            }
        )
        print(f"turn {turn}: {rows[-1]}", file=sys.stderr, flush=True)
        # What the model said goes back as it was generated, so the next prompt extends this one.
        history.append({"role": "assistant", "content": reply.content or "…"})
    after_chat = _status()
    plan = model.info.plan
    model.close()
    return {
        "load_seconds": round(load_seconds, 1),
        "before": before,
        "after_load": after_load,
        "after_decode": after_decode,
        "after_chat": after_chat,
        "raw_tokens_per_second": sorted(raw_rates)[1],
        "hub_tokens_per_second": sorted(hub_rates)[1],
        "turns": rows,
        "plan_memory": next(c.get("memory") for c in plan["candidates"] if c["backend"] == "llamacpp/cpu"),
    }


def _prompt_ids() -> list[int]:
    from gptoss_hub.harmony import render

    return render([{"role": "user", "content": "What is the capital of France? Answer in one word."}])


def _log_softmax(values: Any) -> Any:
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    shifted = values - values.max()
    return shifted - np.log(np.exp(shifted).sum())


def _stage_logits(runtime: str, path: str) -> dict[str, Any]:
    """The last prompt position's log-probabilities (top 50 by id) from one runtime."""
    import numpy as np

    ids = _prompt_ids()
    if runtime == "transformers":
        import torch
        from transformers import GptOssForCausalLM, Mxfp4Config

        model = GptOssForCausalLM.from_pretrained(
            path, quantization_config=Mxfp4Config(dequantize=True), dtype=torch.bfloat16
        )
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].float().numpy()
        logprobs = _log_softmax(logits)
    elif runtime == "llamacpp":
        from llama_cpp import Llama

        llama = Llama(model_path=path, n_ctx=512, logits_all=True, verbose=False, swa_full=True)
        llama.eval(ids)
        logprobs = _log_softmax(llama.scores[llama.n_tokens - 1])
    else:
        import gptoss_hub as gh
        from gptoss_hub.engine import GenerationRequest

        model = gh.load(path, backend="vllm")
        request = GenerationRequest(prompt_ids=ids, temperature=0.0, max_tokens=1, logprobs=20)
        chunks = list(model._engine.generate(request))
        model.close()
        # The first generated token's top log-probabilities: the distribution at the last prompt position.
        first = next(chunk.logprobs[0] for chunk in chunks if chunk.logprobs)
        return {"top": {int(token): float(logprob) for token, logprob in first.items()}}
    order = np.argsort(-logprobs)[:50]
    return {"top": {int(i): float(logprobs[i]) for i in order}}


# ---------------------------------------------------------------------------------------------- the run


def _machine() -> dict[str, Any]:
    from gptoss_hub.hardware import probe

    report = probe()
    versions = {name: build.version for name, build in report.runtime_builds.items()}
    return {
        "cpu": report.cpu.model,
        "cores": report.cpu.cores,
        "ram_gib": round((report.cpu.ram_usable_bytes or 0) / GIB, 1),
        "python": platform.python_version(),
        "runtimes": versions,
    }


def _plan_rows(model: str) -> list[dict[str, Any]]:
    import gptoss_hub as gh

    rows = []
    for candidate in gh.plan(model).candidates:
        memory = candidate.memory
        if memory is None and not candidate.reasons:
            continue
        rows.append(
            {
                "backend": candidate.backend,
                "viable": candidate.viable,
                "resident_gib": memory and round(memory.resident_bytes / GIB, 1),
                "reclaimable_gib": memory and round(memory.reclaimable_bytes / GIB, 1),
                "needed_gib": memory and round(memory.needed_bytes / GIB, 1),
                "disk_gib": memory and round(memory.disk_bytes / GIB, 1),
                "why_not": candidate.reasons[0] if candidate.reasons else "",
            }
        )
    return [r for r in rows if r["resident_gib"] is not None or "GPU" not in r["why_not"]]


def _convert(source: Path, output: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "convert", str(source), str(output), "--outtype", "mxfp4"]
    if output.exists():
        output.unlink()
    _, seconds, peak = _run_stage(command)
    return {"seconds": round(seconds, 1), "peak": peak, "bytes": output.stat().st_size}


def _compare(tops: dict[str, dict[int, float]]) -> list[dict[str, Any]]:
    reference = tops["transformers"]
    top20 = sorted(reference, key=reference.get, reverse=True)[:20]
    rows = []
    for runtime, top in tops.items():
        if runtime == "transformers":
            continue
        shared = [i for i in top20 if i in top]
        worst = max((abs(top[i] - reference[i]) for i in shared), default=float("nan"))
        rows.append(
            {
                "runtime": runtime,
                "compared": len(shared),
                "max_abs_logprob_difference": round(worst, 4),
                "same_argmax": max(top, key=top.get) == top20[0],
                "within_tolerance": len(shared) >= 10 and worst <= LOGPROB_TOLERANCE,
            }
        )
    return rows


def _two_layers(work: Path) -> dict[str, Any]:
    from gptoss_hub.testing.shaped import write_shaped_checkpoint

    folder = work / "two-layers"
    if not (folder / "config.json").exists():
        write_shaped_checkpoint("20b", folder, layers=2, progress=None)
    gguf = work / "two-layers.gguf"
    if not gguf.exists():
        _convert(folder, gguf)
    import gptoss_hub as gh

    tops, errors, memory = {}, {}, []
    # Each runtime beside the plan's estimate for the backend that runs it that way, at the context it used.
    runs = (
        ("transformers", folder, "transformers/cpu", 512),
        ("llamacpp", gguf, "llamacpp/cpu", 512),
        ("vllm", folder, "vllm", None),
    )
    for runtime, path, backend, context in runs:
        try:
            result, seconds, peak = _run_stage(["--stage", "logits", runtime, str(path)], timeout=1800)
            tops[runtime] = {int(k): v for k, v in result["top"].items()}
            print(f"{runtime}: logits in {seconds:.0f} s, peak RSS {peak['VmRSS'] / GIB:.1f} GiB", file=sys.stderr)
        except Exception as error:  # one runtime failing is a finding; the others still compare
            errors[runtime] = str(error)
            continue
        candidate = next(c for c in gh.plan(str(path), context=context).candidates if c.backend == backend)
        estimate = candidate.memory.to_dict() if candidate.memory else None
        memory.append(
            {"runtime": runtime, "backend": backend, "seconds": round(seconds), "peak": peak, "estimate": estimate}
        )
    return {"compare": _compare(tops) if "transformers" in tops else [], "errors": errors, "memory": memory}


def _gib(value: int | float | None) -> str:
    return "–" if value is None else f"{value / GIB:.2f}"


def _markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# gpt-oss-20b at its real size on a CPU machine",
        "",
        "Measured by `benchmarks/real_size.py` on a random-weight checkpoint with gpt-oss-20b's released config, "
        "tensor names, dtypes and MXFP4 layout (`python -m gptoss_hub.testing shaped 20b`), in a folder called "
        f"`{results['model_name']}` so that nothing could be guessed from its name.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB of RAM, no GPU; Python "
        f"{machine['python']}; " + ", ".join(f"{k} {v}" for k, v in machine["runtimes"].items()) + ".",
        "",
        "## The plan, from the files",
        "",
        '`gptoss-hub plan` on the folder: sizes from its `config.json` and safetensors headers. "Resident" is '
        'what the process is expected to hold; "must fit" leaves out the pages the kernel can reclaim and adds '
        "a 10% margin where the model fills the machine (llama.cpp).",
        "",
        "| backend | verdict | resident GiB | of which reclaimable | must fit GiB | disk GiB | why not |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["plan"]:
        lines.append(
            f"| `{row['backend']}` | {'ok' if row['viable'] else 'no'} | {row['resident_gib'] or '–'} | "
            f"{row['reclaimable_gib'] or '–'} | {row['needed_gib'] or '–'} | {row['disk_gib'] or '–'} | "
            f"{row['why_not'].replace('|', '/')} |"
        )
    convert = results["convert"]
    lines += [
        "",
        "## Convert (`gptoss-hub convert … --outtype mxfp4`)",
        "",
        "| wall time | GGUF size | peak anonymous memory | peak file-backed | peak resident |",
        "|---|---|---|---|---|",
        f"| {convert['seconds']:.0f} s | {convert['bytes'] / 1e9:.1f} GB | {_gib(convert['peak']['RssAnon'])} GiB | "
        f"{_gib(convert['peak']['RssFile'])} GiB | {_gib(convert['peak']['VmRSS'])} GiB |",
        "",
        f"Target: under 2 GiB of anonymous memory ({'met' if convert['peak']['RssAnon'] < 2 * GIB else 'missed'}). "
        "The converter streams one tensor at a time and copies stored bf16 matrices straight from the mapped "
        "input, so its anonymous memory is bounded by one layer's experts, whatever the checkpoint's size; the "
        "file-backed pages are the memory-mapped input, which the kernel drops as it needs.",
    ]
    llama = results["llamacpp"]
    estimate = llama["plan_memory"]
    resident = llama["after_chat"]["RssAnon"] + llama["after_chat"]["RssFile"]
    error = resident / estimate["resident_bytes"] - 1
    lines += [
        "",
        "## llama.cpp on the CPU",
        "",
        "| | anonymous GiB | file-backed GiB | resident GiB |",
        "|---|---|---|---|",
    ]
    for label, key in (
        ("after load", "after_load"),
        ("after decoding", "after_decode"),
        ("after the chat", "after_chat"),
    ):
        s = llama[key]
        lines.append(f"| {label} | {_gib(s['RssAnon'])} | {_gib(s['RssFile'])} | {_gib(s['RssAnon'] + s['RssFile'])} |")
    parts = ", ".join(f"{name} {value / GIB:.2f}" for name, value in estimate["parts"].items())
    lines += [
        f"| plan's estimate | | | {_gib(estimate['resident_bytes'])} ({parts}) |",
        "",
        f"Load: {llama['load_seconds']:.0f} s. Measured resident memory after the chat is "
        f"{100 * error:+.1f}% from the plan's estimate (target: within 15%).",
        "",
        f"Decode, {DECODE_TOKENS} greedy tokens on the same prompt ids (median of 3): raw `Llama.generate` "
        f"{llama['raw_tokens_per_second']:.2f} tokens/s, hub `Model.chat` {llama['hub_tokens_per_second']:.2f} "
        f"tokens/s, **hub / raw {llama['hub_tokens_per_second'] / llama['raw_tokens_per_second']:.3f} x**.",
        "",
        "Multi-turn chat (each user turn about 780 tokens; 8 tokens generated per turn):",
        "",
        "| turn | prompt tokens | reused from the cache | evaluated | seconds |",
        "|---|---|---|---|---|",
    ]
    for row in llama["turns"]:
        lines.append(
            f"| {row['turn']} | {row['prompt_tokens']} | {row['reused_tokens']} | {row['evaluated_tokens']} | "
            f"{row['seconds']} |"
        )
    two = results["two_layers"]
    lines += [
        "",
        "## Two layers at the real width: the same logits from every runtime",
        "",
        "gpt-oss-20b's first two layers (2880 hidden, 32 experts, 64 heads, the real vocabulary), random "
        "weights; last prompt position. Reference: transformers (MXFP4 experts dequantized, bf16). Tolerance: "
        f"over the reference's 20 likeliest tokens, log-probabilities within {LOGPROB_TOLERANCE}.",
        "",
        "| runtime | tokens compared | max abs log-prob difference | same top token | within tolerance |",
        "|---|---|---|---|---|",
    ]
    for row in two["compare"]:
        lines.append(
            f"| {row['runtime']} | {row['compared']} | {row['max_abs_logprob_difference']} | "
            f"{'yes' if row['same_argmax'] else 'no'} | {'yes' if row['within_tolerance'] else 'no'} |"
        )
    for runtime, message in two["errors"].items():
        lines.append(f"| {runtime} | failed: {message} | | | |")
    if two.get("memory"):
        lines += [
            "",
            "Peak memory of each run beside the plan's estimate for the backend that runs the model that way (the "
            "vLLM row is the hub's `vllm` backend; transformers and llama.cpp ran with a 512-token context):",
            "",
            "| runtime | peak resident GiB | peak anonymous GiB | plan: resident GiB | plan: must fit GiB | measured / plan |",
            "|---|---|---|---|---|---|",
        ]
        for row in two["memory"]:
            estimate = row["estimate"] or {}
            resident = estimate.get("resident_bytes")
            ratio = f"{row['peak']['VmRSS'] / resident:.2f}" if resident else "–"
            lines.append(
                f"| {row['runtime']} (`{row['backend']}`) | {_gib(row['peak']['VmRSS'])} | "
                f"{_gib(row['peak']['RssAnon'])} | {_gib(resident)} | {_gib(estimate.get('needed_bytes'))} | {ratio} |"
            )
    lines += [
        "",
        f"Reproduce (in a folder with about 30 GB free): `python -m gptoss_hub.testing shaped 20b "
        f"{results['model_name']}`, then `python benchmarks/real_size.py {results['model_name']} --report "
        "docs/real-size.md` (`--parts` redoes some measurements and keeps the others).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every measurement, print the report and write it; returns the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="the shaped 20b folder (neutral name)")
    parser.add_argument("--work", type=Path, default=None, help="where the GGUF files go (default: beside MODEL)")
    parser.add_argument("--report", type=Path, default=Path("docs/real-size.md"))
    parser.add_argument("--turns", type=int, default=5, help="multi-turn chat turns (about 780 tokens each)")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"which measurements to make (default all: {','.join(PARTS)}); the others are kept from the "
        "--report JSON of an earlier run",
    )
    parser.add_argument("--stage", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        kind, *rest = args.stage
        result = _stage_llamacpp(rest[0], int(rest[1])) if kind == "llamacpp" else _stage_logits(*rest)
        print(json.dumps(result, default=str), flush=True)
        return result
    model = Path(args.model).resolve()
    work = (args.work or model.parent).resolve()
    work.mkdir(parents=True, exist_ok=True)
    parts = [part for part in args.parts.split(",") if part]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    earlier = args.report.with_suffix(".json")
    results: dict[str, Any] = json.loads(earlier.read_text()) if set(parts) != set(PARTS) else {}
    gguf = work / f"{model.name}.gguf"
    results.pop("command", None)  # written by earlier versions, with the paths of the machine they ran on
    results.update(
        machine=_machine(),
        model_name=model.name,
        disk_free_gib=round(shutil.disk_usage(work).free / GIB, 1),
    )
    if "plan" in parts:
        # The folder as given: a report names no path of the machine it ran on.
        results["plan"] = [
            {**row, "why_not": row["why_not"].replace(str(model), args.model)} for row in _plan_rows(args.model)
        ]
        print(json.dumps(results["plan"], indent=1), file=sys.stderr)
    if "convert" in parts:
        results["convert"] = _convert(model, gguf)
        print(f"convert: {results['convert']}", file=sys.stderr, flush=True)
    if "llamacpp" in parts:
        llama, _, peak = _run_stage(["--stage", "llamacpp", str(gguf), str(args.turns)])
        results["llamacpp"], results["llamacpp_peak"] = llama, peak
    if "two-layers" in parts:
        results["two_layers"] = _two_layers(work)
    return _write(results, args.report)
    work.mkdir(parents=True, exist_ok=True)
    gguf = work / f"{model.name}.gguf"
    results: dict[str, Any] = {
        "machine": _machine(),
        "model_name": model.name,
        "command": "python benchmarks/real_size.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "disk_free_gib": round(shutil.disk_usage(work).free / GIB, 1),
        "plan": _plan_rows(str(model)),
    }
    print(json.dumps(results["plan"], indent=1), file=sys.stderr)
    results["convert"] = _convert(model, gguf)
    print(f"convert: {results['convert']}", file=sys.stderr, flush=True)
    results["plan_gguf"] = _plan_rows(str(gguf))
    results["llamacpp"], _, results["llamacpp_peak"] = _run_stage(["--stage", "llamacpp", str(gguf), str(args.turns)])
    if not args.skip_two_layers:
        results["two_layers"] = _two_layers(work)
    else:
        results["two_layers"] = {"compare": [], "errors": {"all": "skipped (--skip-two-layers)"}}
    return _write(results, args.report)


def _write(results: dict[str, Any], report_path: Path) -> dict[str, Any]:
    report = _markdown(results)
    print(report)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report)
    report_path.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return results


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
