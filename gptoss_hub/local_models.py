"""Models on disk: what `gptoss-hub pull`, `list` and `rm` do.

Two places hold gpt-oss models: the Hugging Face cache (`huggingface_hub`'s, where `gh.load()` downloads
repos) and the hub's own cache (the tiny reference checkpoints and the GGUF or MXFP4 exports made from
them). `pull` downloads exactly the files the chosen backend's `load()` would fetch (`Backend.repo_files`),
after checking that they fit on the disk; `list` finds every gpt-oss model in both places and says which
backends can run each here; `rm` deletes one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gptoss_hub.errors import DiskSpaceError, InvalidRequestError, ModelNotFoundError, NoBackendError
from gptoss_hub.memory import GIB
from gptoss_hub.sources import ModelSpec, resolve_model

if TYPE_CHECKING:
    from gptoss_hub.dispatch import Candidate
    from gptoss_hub.hardware import HardwareReport
    from gptoss_hub.plugins import BackendRegistry

__all__ = ["LocalModel", "PullPlan", "find_model", "list_models", "plan_pull", "pull", "remove_model"]


@dataclass(frozen=True)
class PullPlan:
    """What `pull` will download: the files one backend would load, and whether they fit on the disk."""

    model: str
    backend: str
    repo_id: str
    revision: str | None
    #: (file name, bytes) of every file the backend loads.
    files: tuple[tuple[str, int], ...]
    #: Bytes of those not in the cache yet.
    missing_bytes: int
    #: The Hugging Face cache the files go to, and the free bytes on its disk.
    cache: Path
    free_bytes: int

    def describe(self) -> str:
        """One line: what, for which backend, how much is left to download."""
        total = sum(size for _, size in self.files)
        return (
            f"{self.repo_id}: {len(self.files)} file(s), {total / GIB:.2f} GiB for {self.backend}; "
            f"{self.missing_bytes / GIB:.2f} GiB to download into {self.cache} ({self.free_bytes / GIB:.1f} GiB free)"
        )


def plan_pull(
    model: str,
    *,
    backend: str = "auto",
    report: HardwareReport | None = None,
    registry: BackendRegistry | None = None,
) -> PullPlan:
    """Which files `model` needs for `backend` (default: the one `gh.load()` would choose here), how many
    bytes are missing from the cache and whether they fit; reads the repo's file list from the Hub.

    Raises `InvalidRequestError` for a model that is not a Hugging Face repo, `NoBackendError` when nothing
    can run it here and no backend was named, `ModelNotFoundError` for a repo the Hub does not have (or an
    unreachable Hub), and `DiskSpaceError` when the missing files do not fit.
    """
    from gptoss_hub.dispatch import plan
    from gptoss_hub.plugins import backend_registry

    spec = resolve_model(model)
    if spec.kind != "hf_repo":
        raise InvalidRequestError(
            f"{model!r} is {_KIND_WORDS.get(spec.kind, spec.kind)}: there is nothing to download. `gptoss-hub pull` "
            "takes a Hugging Face repo id (or 20b, 120b)."
        )
    registry = registry or backend_registry()
    the_plan = plan(spec, report, backend=backend, registry=registry)
    chosen = the_plan.chosen
    if chosen is None:
        if backend == "auto" or not the_plan.candidates:
            raise NoBackendError(
                f"No backend can run {spec.name} here, so there is no telling which files it needs. Pass --backend "
                f"NAME to download the files one would load anyway.\n{the_plan.explain()}"
            )
        # Named, though it cannot run here: its files are still wanted. Of its variants, the one held back only
        # by memory or an unknown size (which the download will tell) names what they are for.
        chosen = _closest_to_running(the_plan.candidates, spec)
    files = registry.get(chosen.backend).repo_files(spec)
    if files is None:
        raise InvalidRequestError(f"{chosen.backend} downloads nothing for {spec.name}.")
    listing = _repo_listing(files.repo_id, files.revision)
    try:
        names = files.choose(sorted(listing))
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"{files.repo_id}: {exc}") from exc
    if not names:
        raise ModelNotFoundError(f"{files.repo_id} holds none of the files {chosen.backend} loads.")
    chosen_files = tuple((name, listing[name]) for name in names)
    missing = sum(size for name, size in chosen_files if not _cached(files.repo_id, name, files.revision))
    cache = _hf_cache()
    free = shutil.disk_usage(_existing_parent(cache)).free
    pull_plan = PullPlan(model, chosen.backend, files.repo_id, files.revision, chosen_files, missing, cache, free)
    if missing > free:
        raise DiskSpaceError(
            f"{files.repo_id} needs {missing / GIB:.2f} GiB more for {chosen.backend}, but the disk of {cache} has "
            f"{free / GIB:.2f} GiB free. Free some space (`gptoss-hub rm MODEL`), or point HF_HUB_CACHE at a larger disk."
        )
    return pull_plan


def pull(pull_plan: PullPlan) -> Path:
    """Download the plan's files through `huggingface_hub` (its progress bars; an interrupted download resumes
    where it stopped) and return the snapshot folder holding them."""
    from huggingface_hub import snapshot_download

    names = [name for name, _ in pull_plan.files]
    return Path(snapshot_download(pull_plan.repo_id, revision=pull_plan.revision, allow_patterns=names))


@dataclass(frozen=True)
class LocalModel:
    """A gpt-oss model on this disk."""

    #: The name to pass to `gh.load()` and `gptoss-hub rm`: a repo id, or a file or folder of the hub's cache.
    name: str
    #: "hugging face" or "gptoss-hub" (the hub's own cache).
    cache: str
    #: How its weights are stored: "safetensors, MXFP4 experts", "GGUF, mxfp4", "safetensors, MLX 8-bit" …
    format: str
    size_bytes: int
    path: Path
    #: The backends that can run it on this machine, best first.
    runs_on: tuple[str, ...]
    #: Why none can (the best candidate's first reason), when none can.
    why_not: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields for `gptoss-hub list --json`."""
        return {
            "name": self.name,
            "cache": self.cache,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "path": str(self.path),
            "runs_on": list(self.runs_on),
            "why_not": self.why_not,
        }


def list_models(report: HardwareReport | None = None) -> list[LocalModel]:
    """Every gpt-oss model in the Hugging Face cache and the hub's cache, with the backends that can run each
    on the machine `report` describes (this one by default)."""
    found = [*_hugging_face_models(), *_hub_cache_models()]
    return [_with_backends(entry, report) for entry in found]


def find_model(name: str) -> LocalModel:
    """The cached model `list_models()` calls `name` (without planning which backends run it); a
    `ModelNotFoundError` naming what is cached when there is none."""
    entries = [*_hugging_face_models(), *_hub_cache_models()]
    entry = next((entry for entry in entries if entry.name == name), None)
    if entry is None:
        known = ", ".join(entry.name for entry in entries) or "none"
        raise ModelNotFoundError(f"No cached gpt-oss model named {name!r}. Cached: {known} (`gptoss-hub list`).")
    return entry


def remove_model(name: str) -> LocalModel:
    """Delete the model `list_models()` calls `name` (every cached revision of a repo) and return what it was."""
    entry = find_model(name)
    if entry.cache == "hugging face":
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(_hf_cache())
        repo = next(r for r in info.repos if r.repo_id == name and r.repo_type == "model")
        # The whole repo folder (blobs, snapshots, refs) and its locks: deleting by revision would also touch
        # other repos that happen to share a commit id.
        shutil.rmtree(repo.repo_path)
        shutil.rmtree(_hf_cache() / ".locks" / Path(repo.repo_path).name, ignore_errors=True)
    elif entry.path.is_dir():
        shutil.rmtree(entry.path)
    else:
        entry.path.unlink()
    return entry


# -- reading what is there -----------------------------------------------------------------------------------

_KIND_WORDS = {
    "reference": "a reference checkpoint the hub builds itself",
    "local_dir": "a local folder",
    "gguf_file": "a local GGUF file",
    "endpoint": "a remote endpoint",
}


def _closest_to_running(candidates: Sequence[Candidate], spec: ModelSpec) -> Candidate:
    """Of candidates none of which can run here, the one held back least: fewest reasons beyond memory or an
    unknown size (which a download tells), then the highest rank."""
    return min(candidates, key=lambda c: (len(_reasons_beyond_memory(c, spec)), -c.rank))


def _reasons_beyond_memory(candidate: Candidate, spec: ModelSpec) -> list[str]:
    """A candidate's reasons other than not fitting in memory or not knowing the model's size."""
    from gptoss_hub.memory import unknown_size_reason
    from gptoss_hub.shape import read_shape

    memory = {unknown_size_reason(spec.name, read_shape(spec), spec.kind)}
    if candidate.memory is not None and (fit := candidate.memory.fit_reason(spec.name)):
        memory.add(fit)
    return [reason for reason in candidate.reasons if reason not in memory]


def _hf_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _cached(repo_id: str, name: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, name, revision=revision), str)


def _repo_listing(repo_id: str, revision: str | None) -> dict[str, int]:
    """File name -> bytes of every file of the repo, from the Hub."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError
    from huggingface_hub.hf_api import RepoFile

    _check_reachable(repo_id)
    try:
        entries = HfApi().list_repo_tree(repo_id, revision=revision, recursive=True)
        return {entry.path: entry.size for entry in entries if isinstance(entry, RepoFile)}
    except RepositoryNotFoundError as exc:
        raise ModelNotFoundError(
            f"Hugging Face has no repository {repo_id!r} (or it is gated and no token is set). Check the name, or "
            "log in with `hf auth login`."
        ) from exc
    except OfflineModeIsEnabled as exc:
        raise ModelNotFoundError(
            f"HF_HUB_OFFLINE is set, so {repo_id!r} cannot be downloaded. Unset it on a connected machine."
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise ModelNotFoundError(f"The Hugging Face Hub could not be reached to list {repo_id!r}: {exc}") from exc
    except Exception as exc:  # httpx's connection errors, whichever client huggingface_hub uses
        if type(exc).__module__.split(".")[0] in ("httpx", "httpcore", "httpx2"):
            raise ModelNotFoundError(f"The Hugging Face Hub could not be reached to list {repo_id!r}: {exc}") from exc
        raise


def _check_reachable(repo_id: str) -> None:
    """Fail at once when the Hub cannot be reached (huggingface_hub retries for about 25 s before it says so)."""
    import httpx
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ModelNotFoundError(
            f"HF_HUB_OFFLINE is set, so {repo_id!r} cannot be downloaded. Unset it on a connected machine."
        )
    try:
        httpx.head(constants.ENDPOINT, timeout=10)
    except httpx.HTTPError as exc:
        raise ModelNotFoundError(
            f"The Hugging Face Hub ({constants.ENDPOINT}) could not be reached to list {repo_id!r}: {exc}. Check the "
            "network (or HF_ENDPOINT), or load what is already cached with HF_HUB_OFFLINE=1."
        ) from exc


def _config_format(config: dict[str, Any]) -> str:
    mlx = config.get("quantization")
    if isinstance(mlx, dict) and mlx.get("bits"):
        mode = mlx.get("mode", "affine")
        return "safetensors, MLX mxfp4" if mode == "mxfp4" else f"safetensors, MLX {mlx['bits']}-bit"
    if (config.get("quantization_config") or {}).get("quant_method") == "mxfp4":
        return "safetensors, MXFP4 experts"
    return f"safetensors, {config.get('torch_dtype') or config.get('dtype') or 'bfloat16'}"


def _folder_format(folder: Path) -> str | None:
    """How a checkpoint folder stores gpt-oss, or `None` when it holds no gpt-oss model."""
    config_file = folder / "config.json"
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if config.get("model_type") in ("gpt_oss", "gpt-oss") and any(folder.glob("*.safetensors")):
            return _config_format(config)
    ggufs = sorted(folder.glob("*.gguf"))
    formats = sorted({fmt for path in ggufs if (fmt := _gguf_format(path))})
    return ", ".join(formats) or None


def _gguf_format(path: Path) -> str | None:
    from gptoss_hub.shape import read_shape

    reading = read_shape(ModelSpec(source=str(path), kind="gguf_file", name=path.name, path=path))
    return f"GGUF, {reading.shape.stored_as}" if reading.shape is not None else None


def _hugging_face_models() -> list[LocalModel]:
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(_hf_cache())
    except CacheNotFound:
        return []
    models = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        latest = max(repo.revisions, key=lambda revision: revision.last_modified)
        fmt = _folder_format(Path(latest.snapshot_path))
        if fmt is not None:
            models.append(
                LocalModel(repo.repo_id, "hugging face", fmt, repo.size_on_disk, Path(repo.repo_path), (), None)
            )
    return models


def _hub_cache_models() -> list[LocalModel]:
    from gptoss_hub.paths import cache_dir

    checkpoints = cache_dir() / "checkpoints"
    if not checkpoints.is_dir():
        return []
    models = []
    for path in sorted(checkpoints.iterdir()):
        if path.name.startswith("."):
            continue  # a build in progress, staged beside its final place
        if path.is_dir():
            fmt = _folder_format(path)
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        elif path.suffix == ".gguf":
            fmt, size = _gguf_format(path), path.stat().st_size
        else:
            continue
        if fmt is not None:
            models.append(LocalModel(path.name, "gptoss-hub", fmt, size, path, (), None))
    return models


def _with_backends(entry: LocalModel, report: HardwareReport | None) -> LocalModel:
    from dataclasses import replace

    from gptoss_hub.dispatch import plan

    the_plan = plan(entry.name if entry.cache == "hugging face" else str(entry.path), report)
    runs_on = tuple(c.backend for c in the_plan.candidates if c.viable)
    why_not = None
    if not runs_on and the_plan.candidates:
        # The candidate closest to running says most: one held back by memory alone, if there is one.
        closest = _closest_to_running(the_plan.candidates, the_plan.spec)
        why_not = f"{closest.backend}: {closest.reasons[0]}"
    return replace(entry, runs_on=runs_on, why_not=why_not)
