"""Which GGUF file a model argument means for llama.cpp, and getting it onto the disk.

- a `.gguf` file: itself;
- a folder: the `.gguf` file(s) in it, chosen by quantization;
- `20b` / `120b` (`openai/gpt-oss-*`): the GGUF repos `ggml-org/gpt-oss-20b-GGUF` / `ggml-org/gpt-oss-120b-GGUF`;
- any Hugging Face repo whose name ends in `GGUF`: its files, chosen by quantization;
- the tiny reference checkpoints: their cached GGUF exports (`gptoss_hub.testing.gguf_path`).

Split files (`name-00001-of-00003.gguf`) are fetched whole; llama.cpp is given the first part and
finds the others beside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from gptoss_hub.errors import ModelNotFoundError
from gptoss_hub.released import RELEASED_GGUF_REPOS
from gptoss_hub.sources import ModelSpec, cached_snapshot

__all__ = ["GGUF_REPOS", "choose_gguf_files", "gguf_repo", "local_gguf", "source_problem"]

#: The GGUF conversions published for the released checkpoints.
GGUF_REPOS = RELEASED_GGUF_REPOS
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def gguf_repo(spec: ModelSpec) -> str | None:
    """The Hugging Face repo holding GGUF files for `spec`, or `None`."""
    if spec.kind != "hf_repo" or spec.repo_id is None:
        return None
    if spec.repo_id in GGUF_REPOS:
        return GGUF_REPOS[spec.repo_id]
    return spec.repo_id if spec.repo_id.lower().endswith("gguf") else None


def source_problem(spec: ModelSpec) -> str | None:
    """Why llama.cpp cannot read what `spec` names (a sentence), or `None` when it can."""
    if spec.kind in ("reference", "gguf_file"):
        return None
    if spec.kind == "local_dir" and spec.path is not None:
        if any(spec.path.glob("*.gguf")):
            return None
        return (
            f"{spec.path} holds no .gguf file; convert the checkpoint first: "
            f"gptoss-hub convert {spec.path} {spec.path.name}.gguf --outtype mxfp4"
        )
    if spec.kind == "hf_repo":
        if gguf_repo(spec):
            return None
        return (
            f"{spec.name} is not a GGUF repository; llama.cpp needs a GGUF file "
            "(e.g. ggml-org/gpt-oss-20b-GGUF, or `gptoss-hub convert` on a local checkpoint)."
        )
    return "llama.cpp runs local GGUF files, not a remote endpoint."


def _group(name: str) -> str:
    return _SPLIT.sub(".gguf", Path(name).name)


def choose_gguf_files(files: Iterable[str], quantization: str | None, filename: str | None = None) -> list[str]:
    """The file(s) to fetch among a repo's or folder's `files`: every part of exactly one model.

    `filename` names one file (any part of a split model); otherwise the names containing `quantization`
    (case-insensitive: "mxfp4", "Q8_0", "f16") are taken, and a single GGUF is taken whatever its name.
    """
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf"))
    if not ggufs:
        raise ModelNotFoundError("No .gguf files found.")
    if filename is not None:
        wanted = [f for f in ggufs if f == filename or Path(f).name == filename]
        if not wanted:
            raise ModelNotFoundError(f"No GGUF file named {filename!r}; found: {', '.join(ggufs)}.")
        group = _group(wanted[0])
        return [f for f in ggufs if _group(f) == group and Path(f).parent == Path(wanted[0]).parent]
    groups: dict[str, list[str]] = {}
    for name in ggufs:
        groups.setdefault(str(Path(name).parent / _group(name)), []).append(name)
    if len(groups) == 1:
        return next(iter(groups.values()))
    matching = {g: parts for g, parts in groups.items() if quantization and quantization.lower() in g.lower()}
    if len(matching) == 1:
        return next(iter(matching.values()))
    available = ", ".join(sorted(Path(g).name for g in groups))
    if not matching:
        raise ModelNotFoundError(f"No GGUF file for quantization {quantization!r}; available: {available}.")
    raise ModelNotFoundError(
        f"Several GGUF files match {quantization!r} ({', '.join(sorted(matching))}); pass filename=… to pick one."
    )


def _check_parts(paths: list[Path]) -> None:
    match = _SPLIT.search(paths[0].name)
    if match and len(paths) != int(match.group(2)):
        raise ModelNotFoundError(f"{paths[0].name} is one of {match.group(2)} parts but {len(paths)} were found.")


def _from_repo(repo: str, revision: str | None, quantization: str | None, filename: str | None) -> list[Path]:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
    try:
        if offline:
            raise LocalEntryNotFoundError("offline")
        files = HfApi().list_repo_files(repo, revision=revision)
    except RepositoryNotFoundError as exc:
        raise ModelNotFoundError(
            f"Hugging Face has no repository {repo!r} (or it is gated and no token is set)."
        ) from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError):
        # Offline or unreachable: choose among what an earlier download left in the local cache.
        folder = cached_snapshot(repo, revision)
        files = [str(p.relative_to(folder)) for p in folder.rglob("*.gguf")] if folder is not None else []
        if not files:
            why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub could not be reached"
            raise ModelNotFoundError(
                f"{repo!r} is not in the local Hugging Face cache and {why}. Download it once on a connected "
                f"machine (`gptoss-hub pull {repo}`), or pass a local .gguf file."
            ) from None
    chosen = choose_gguf_files(files, quantization, filename)
    # hf_hub_download shows a progress bar per file and resumes interrupted downloads.
    return [Path(hf_hub_download(repo, name, revision=revision)) for name in chosen]


def local_gguf(spec: ModelSpec, quantization: str | None, filename: str | None = None) -> Path:
    """The GGUF file to give llama.cpp for `spec`, fetched or exported first if needed (first part if split)."""
    if spec.kind == "gguf_file" and spec.path is not None:
        return spec.path
    if spec.kind == "reference":
        from gptoss_hub.testing.gguf_exports import gguf_path

        return gguf_path(spec.name, quantization or "f32")
    problem = source_problem(spec)
    if problem:
        raise ModelNotFoundError(problem)
    if spec.kind == "local_dir" and spec.path is not None:
        names = choose_gguf_files([p.name for p in spec.path.glob("*.gguf")], quantization, filename)
        paths = [spec.path / name for name in names]
    else:
        repo = gguf_repo(spec)
        assert repo is not None  # source_problem said so
        paths = _from_repo(repo, spec.revision, quantization, filename)
    _check_parts(paths)
    return paths[0]
