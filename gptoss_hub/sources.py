"""What the `model` argument of `gh.load()` names, and getting its files onto the disk.

Resolution is cheap and offline (dispatch needs it before anything is fetched); files are fetched or
built only when a backend asks for them with `ModelSpec.local_dir()`.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gptoss_hub.errors import InvalidRequestError, ModelNotFoundError

__all__ = [
    "ALIASES",
    "CHECKPOINT_SKIP",
    "REFERENCE_ALIASES",
    "ModelSpec",
    "cached_snapshot",
    "checkpoint_files",
    "resolve_model",
]

#: Short names for the released checkpoints.
ALIASES = {
    "20b": "openai/gpt-oss-20b",
    "120b": "openai/gpt-oss-120b",
    "gpt-oss-20b": "openai/gpt-oss-20b",
    "gpt-oss-120b": "openai/gpt-oss-120b",
}
#: Short names for the tiny reference checkpoints built by `gptoss_hub.testing`.
REFERENCE_ALIASES = {"tiny": "tiny-harmony", "tiny-harmony": "tiny-harmony", "tiny-random": "tiny-random"}

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

SourceKind = Literal["reference", "local_dir", "gguf_file", "hf_repo", "endpoint"]


class ModelSpec(BaseModel):
    """A resolved model argument: what it is and where its files are (or will be)."""

    model_config = ConfigDict(frozen=True)

    #: The argument as the user gave it.
    source: str
    kind: SourceKind
    #: A readable name: the repo id, the reference checkpoint name, the folder or file name.
    name: str
    path: Path | None = None
    repo_id: str | None = None
    revision: str | None = None
    url: str | None = None
    #: For an endpoint: the model name to ask the server for (`None`: the first one it lists).
    served_model: str | None = None
    #: The context length the caller plans to use (prompt plus completion); memory checks budget for it.
    context_tokens: int | None = None

    def served_at(self, base_url: str) -> ModelSpec:
        """This model as served by the OpenAI-compatible server at `base_url` (an `http(s)://…/v1` URL).

        The server is asked for the model by its repo id (or reference name), as vLLM and hosted providers
        name gpt-oss (`openai/gpt-oss-20b`).
        """
        url = base_url.strip()
        if not url.startswith(("http://", "https://")):
            raise InvalidRequestError(f"base_url must be an http(s)://…/v1 URL, got {base_url!r}.")
        if self.kind == "endpoint":
            return self.model_copy(update={"url": url.rstrip("/")})
        return ModelSpec(
            source=self.source,
            kind="endpoint",
            name=self.name,
            url=url.rstrip("/"),
            served_model=self.repo_id or self.name,
            context_tokens=self.context_tokens,
        )

    @property
    def gguf_only(self) -> bool:
        """Whether the model exists only as GGUF: a `.gguf` file, a folder of them without safetensors, or a
        repo whose id ends in GGUF (how every GGUF publisher names them). Only llama.cpp reads these."""
        if self.kind == "gguf_file":
            return True
        if self.kind == "local_dir" and self.path is not None:
            return any(self.path.glob("*.gguf")) and not any(self.path.glob("*.safetensors"))
        return self.kind == "hf_repo" and (self.repo_id or "").lower().endswith("gguf")

    def checkpoint_dir(self) -> Path:
        """The folder holding the checkpoint's safetensors, config and tokenizer, downloading them first if
        needed (for a repo: every file but `CHECKPOINT_SKIP`, which no safetensors runtime reads)."""
        return self.local_dir(ignore_patterns=list(CHECKPOINT_SKIP))

    def local_dir(self, allow_patterns: list[str] | None = None, ignore_patterns: list[str] | None = None) -> Path:
        """The folder holding the checkpoint, downloading or building it first if needed.

        Hugging Face downloads go through `huggingface_hub` (its progress bars, cache, `HF_TOKEN` and
        `HF_HUB_OFFLINE` apply). `allow_patterns` / `ignore_patterns` limit which files are fetched.
        """
        if self.kind == "reference":
            from gptoss_hub.testing import checkpoint_path

            return checkpoint_path(self.name)
        if self.kind == "local_dir" and self.path is not None:
            return self.path
        if self.kind == "hf_repo" and self.repo_id is not None:
            return _download(self.repo_id, self.revision, allow_patterns, ignore_patterns)
        raise ModelNotFoundError(f"{self.source!r} is a {self.kind}, not a checkpoint folder.")


#: Files of a checkpoint repo that runtimes loading safetensors never read: the original (non-HF) weights,
#: Metal files and GGUF conversions published beside them.
CHECKPOINT_SKIP = ("original/*", "metal/*", "*.gguf")


def checkpoint_files(names: list[str]) -> list[str]:
    """Of a repo's file `names`, those `ModelSpec.checkpoint_dir()` fetches."""
    return [name for name in names if not any(fnmatch.fnmatch(name, pattern) for pattern in CHECKPOINT_SKIP)]


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The folder of `repo_id` at `revision` (default main) in the local Hugging Face cache, holding whatever
    files of it were downloaded; `None` when none were. Read from the cache's layout, never the network:
    `snapshot_download(local_files_only=True)` refuses a snapshot that lacks some of the files asked for."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    wanted = revision or "main"
    ref = repo / "refs" / wanted
    try:
        commit = ref.read_text(encoding="utf-8").strip() if ref.is_file() else wanted
    except OSError:
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _download(
    repo_id: str, revision: str | None, allow_patterns: list[str] | None, ignore_patterns: list[str] | None
) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns
            )
        )
    except RepositoryNotFoundError as exc:
        raise ModelNotFoundError(
            f"Hugging Face has no repository {repo_id!r} (or it is gated and no token is set). "
            "Check the name, or log in with `hf auth login`."
        ) from exc
    except LocalEntryNotFoundError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub could not be reached"
        raise ModelNotFoundError(
            f"{repo_id!r} is not in the local Hugging Face cache and {why}. Download it once on a "
            f"connected machine (`hf download {repo_id}`), or pass a local folder."
        ) from exc


def resolve_model(model: str | os.PathLike[str]) -> ModelSpec:
    """Say what `model` names, without touching the network or building anything.

    Accepted: an alias (`20b`, `120b`, `tiny`, `tiny-random`), a local checkpoint folder, a `.gguf`
    file, an `http(s)://…/v1` endpoint, or a Hugging Face repo id (`org/name`, optionally `@revision`).
    """
    source = os.fspath(model)
    text = source.strip()
    if text.startswith(("http://", "https://")):
        return ModelSpec(source=source, kind="endpoint", name=text, url=text.rstrip("/"))
    lowered = text.lower()
    if lowered in REFERENCE_ALIASES:
        return ModelSpec(source=source, kind="reference", name=REFERENCE_ALIASES[lowered])
    path = Path(text).expanduser()
    if path.is_dir():
        return ModelSpec(source=source, kind="local_dir", name=path.name, path=path.resolve())
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return ModelSpec(source=source, kind="gguf_file", name=path.name, path=path.resolve())
        raise ModelNotFoundError(f"{source!r} is a file but not a .gguf; pass the checkpoint's folder instead.")
    repo, _, revision = ALIASES.get(lowered, text).partition("@")
    if _REPO_ID.match(repo) and not text.startswith((".", "/", "~")):
        return ModelSpec(source=source, kind="hf_repo", name=repo, repo_id=repo, revision=revision or None)
    raise ModelNotFoundError(
        f"{source!r} is not a known alias ({', '.join([*ALIASES, *REFERENCE_ALIASES])}), an existing folder "
        "or .gguf file, a Hugging Face repo id like 'openai/gpt-oss-20b', or an http(s)://…/v1 endpoint."
    )
