"""What a gpt-oss checkpoint is, read from its files: the shape every memory estimate is computed from.

A model's shape (layers, widths, experts, heads, vocabulary, attention windows, how the experts are
stored) comes from, in order of preference:

1. its `config.json` (a local folder, the Hugging Face cache, or fetched alone when online), with the
   exact bytes of its weights from the safetensors headers (never the weights themselves);
2. a GGUF file's metadata and tensor table (the `gguf` reader; the tensors are not read);
3. the built-in config of the released `openai/gpt-oss-20b` / `-120b` when the model *is* one of them;
4. only as a last resort, a name that mentions `gpt-oss-20b` or `gpt-oss-120b`: then the reading says it
   is a guess and why.

When none of these works the reading has no shape and says why, so a plan can say "cannot tell its size"
instead of skipping its memory checks. Readings are cached per file (size and modification time).
"""

from __future__ import annotations

import functools
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gptoss_hub.released import RELEASED_GGUF_REPOS, RELEASED_REPOS, released_config
from gptoss_hub.sources import ModelSpec

__all__ = [
    "ModelShape",
    "ShapeReading",
    "StoredWeights",
    "WeightFormat",
    "read_safetensors_header",
    "read_shape",
    "shape_from_config",
]

#: How weights are held: "mxfp4" (the released layout: experts MXFP4, the rest bf16), "bf16" and "fp32"
#: (every weight in that dtype, experts dequantized), "gguf-mxfp4" (what `gptoss-hub convert --outtype
#: mxfp4` writes: experts MXFP4, matrices bf16, vectors, biases and the router f32).
WeightFormat = Literal["mxfp4", "bf16", "fp32", "gguf-mxfp4"]

#: Bytes per value of an MXFP4 group: 16 bytes of 4-bit codes and one E8M0 scale byte for 32 values.
MXFP4_BYTES_PER_VALUE = 17 / 32
_RELEASED_NAME = re.compile(r"gpt-oss-(20b|120b)", re.IGNORECASE)
#: Seconds the Hub has to answer for a repo's config.json before the plan goes on without it.
HUB_TIMEOUT_S = 5.0
#: The safetensors format's own limit on a header's size.
_MAX_SAFETENSORS_HEADER = 100_000_000
#: A config.json is a few kB; more than this is not one.
_MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a gpt-oss model that decide its memory, and how its experts are stored."""

    layers: int
    hidden_size: int
    intermediate_size: int
    experts: int
    experts_per_token: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    sliding_window: int
    #: How many layers attend within `sliding_window` tokens; the others attend over the whole context.
    sliding_layers: int
    tied_embeddings: bool = False
    #: "mxfp4" when the checkpoint stores its experts in MXFP4, else the dtype it stores weights in.
    stored_as: str = "bfloat16"
    #: The longest context the model was made for (`max_position_embeddings`), where the files say.
    context_length: int | None = None

    @property
    def full_attention_layers(self) -> int:
        """Layers whose KV cache grows with the context."""
        return self.layers - self.sliding_layers

    @property
    def expert_matrix_parameters(self) -> int:
        """Values in the expert projections (gate and up interleaved, then down): what MXFP4 stores."""
        return self.layers * self.experts * 3 * self.hidden_size * self.intermediate_size

    @property
    def expert_bias_parameters(self) -> int:
        """Values in the expert projections' biases."""
        return self.layers * self.experts * (2 * self.intermediate_size + self.hidden_size)

    @property
    def dense_matrix_parameters(self) -> int:
        """Values in every matrix outside the experts: embeddings, output head, attention, router."""
        q, kv = self.attention_heads * self.head_dim, self.kv_heads * self.head_dim
        per_layer = self.hidden_size * (2 * q + 2 * kv) + self.experts * self.hidden_size
        head = 0 if self.tied_embeddings else self.vocab_size * self.hidden_size
        return self.vocab_size * self.hidden_size + head + self.layers * per_layer

    @property
    def vector_parameters(self) -> int:
        """Values in norms, attention biases and sinks, and router biases (small, kept in float)."""
        q, kv = self.attention_heads * self.head_dim, self.kv_heads * self.head_dim
        per_layer = 2 * self.hidden_size + q + 2 * kv + self.hidden_size + self.attention_heads + self.experts
        return self.hidden_size + self.layers * per_layer

    @property
    def parameters(self) -> int:
        """Every value in the model."""
        return (
            self.expert_matrix_parameters
            + self.expert_bias_parameters
            + self.dense_matrix_parameters
            + self.vector_parameters
        )

    def expert_bytes(self, weight_format: WeightFormat) -> int:
        """Bytes of the expert projections (without their biases) in `weight_format`."""
        if weight_format in ("mxfp4", "gguf-mxfp4"):
            return int(self.expert_matrix_parameters * MXFP4_BYTES_PER_VALUE)
        return self.expert_matrix_parameters * (4 if weight_format == "fp32" else 2)

    def weights_bytes(self, weight_format: WeightFormat) -> int:
        """Bytes of every weight in `weight_format` (see `WeightFormat`)."""
        others = self.expert_bias_parameters + self.dense_matrix_parameters + self.vector_parameters
        if weight_format == "fp32":
            return 4 * self.parameters
        if weight_format == "bf16":
            return 2 * self.parameters
        if weight_format == "mxfp4":
            return self.expert_bytes("mxfp4") + 2 * others
        # The GGUF writer keeps vectors, biases and the router in f32 and the other matrices in bf16.
        router = self.layers * self.experts * self.hidden_size
        small = self.expert_bias_parameters + self.vector_parameters + router
        return self.expert_bytes("gguf-mxfp4") + 4 * small + 2 * (self.dense_matrix_parameters - router)

    def kv_cache_bytes(self, context_tokens: int, bytes_per_value: int = 2, sliding_tokens: int | None = None) -> int:
        """Bytes of keys and values for one sequence of `context_tokens`.

        Full-attention layers hold every token; sliding-window layers hold `sliding_tokens` (the window by
        default; a runtime that keeps them at full size passes `context_tokens`).
        """
        per_token_per_layer = 2 * self.kv_heads * self.head_dim * bytes_per_value
        window = min(context_tokens, self.sliding_window if sliding_tokens is None else sliding_tokens)
        return per_token_per_layer * (self.full_attention_layers * context_tokens + self.sliding_layers * window)


@dataclass(frozen=True)
class StoredWeights:
    """The weight files found on disk and their exact bytes, from their headers."""

    file_format: Literal["safetensors", "gguf"]
    files: tuple[Path, ...]
    #: Bytes of tensor data (what a runtime loads or maps).
    tensor_bytes: int
    #: Of which the expert projections (without biases).
    expert_bytes: int
    #: Bytes of the files on disk.
    file_bytes: int
    #: Tensor bytes by storage type ("BF16", "U8", "MXFP4", "F32", …).
    bytes_by_type: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ShapeReading:
    """What could be learned about a model's shape, and from where."""

    shape: ModelShape | None
    #: Where the shape came from, or why there is none, as a phrase: "config.json and 3 safetensors headers".
    basis: str
    #: The shape was inferred from a name, not read from the model's own files.
    guessed: bool = False
    stored: StoredWeights | None = None

    def describe(self) -> str:
        """The basis as a sentence fragment for plans: "from config.json …" or "guessed from …"."""
        return self.basis if self.guessed or self.shape is None else f"from {self.basis}"


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    """The shape a gpt-oss `config.json` (or `GptOssConfig.to_dict()`) describes."""
    layers = int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    layer_types = config.get("layer_types") or [
        "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)
    ]
    quantization = (config.get("quantization_config") or {}).get("quant_method")
    dtype = config.get("torch_dtype") or config.get("dtype") or "bfloat16"
    return ModelShape(
        layers=layers,
        hidden_size=hidden,
        intermediate_size=int(config["intermediate_size"]),
        experts=int(config["num_local_experts"]),
        experts_per_token=int(config.get("num_experts_per_tok") or config.get("experts_per_token") or 4),
        attention_heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or hidden // heads),
        vocab_size=int(config["vocab_size"]),
        sliding_window=int(config.get("sliding_window") or 128),
        sliding_layers=sum(1 for kind in layer_types if kind == "sliding_attention"),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        stored_as="mxfp4" if quantization == "mxfp4" else str(dtype),
        context_length=int(config["max_position_embeddings"]) if config.get("max_position_embeddings") else None,
    )


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file: each tensor's dtype, shape and data offsets (no data read).

    Raises `ValueError` for a file that is not one (too short, a header length past its end or above the
    format's 100 MB limit, a header that is not a JSON object): a hostile file cannot make it read or
    allocate more than that.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path.name} is not a safetensors file ({size} bytes)")
        (length,) = struct.unpack("<Q", prefix)
        if length > _MAX_SAFETENSORS_HEADER or 8 + length > size:
            raise ValueError(f"{path.name} is not a safetensors file (a header of {length} bytes in {size})")
        header = json.loads(handle.read(length))
    if not isinstance(header, dict):
        raise ValueError(f"{path.name}'s header is not a JSON object")
    return header


def _is_expert(name: str) -> bool:
    """An expert projection's weights (not its bias), in Hugging Face or GGUF naming."""
    if ".mlp.experts." in name:
        return not name.endswith("_bias")
    return "_exps." in name and name.endswith(".weight")


def _stored_safetensors(folder: Path) -> StoredWeights | None:
    files = tuple(sorted(folder.glob("*.safetensors")))
    if not files:
        return None
    total = experts = on_disk = 0
    by_type: dict[str, int] = {}
    for file in files:
        on_disk += file.stat().st_size
        try:
            for name, entry in read_safetensors_header(file).items():
                if name == "__metadata__":
                    continue
                begin, end = (int(offset) for offset in entry["data_offsets"])
                total += end - begin
                experts += end - begin if _is_expert(name) else 0
                by_type[str(entry["dtype"])] = by_type.get(str(entry["dtype"]), 0) + end - begin
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{file.name}: {exc}") from None
    return StoredWeights("safetensors", files, total, experts, on_disk, by_type)


def _read_config_folder(folder: Path, where: str) -> ShapeReading | None:
    config_file = folder / "config.json"
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text())
        shape = shape_from_config(config)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return ShapeReading(None, f"its config.json ({where}) is not a gpt-oss config: {exc!r}")
    basis = f"config.json ({where})"
    try:
        stored = _stored_safetensors(folder)
    except ValueError as exc:
        # The config still tells the shape; the weights' exact bytes are then computed from it.
        return ShapeReading(shape, f"{basis}; its safetensors headers could not be read ({exc})")
    if stored is not None:
        count = len(stored.files)
        basis += f" and {count} safetensors header{'s' if count > 1 else ''}"
    return ShapeReading(shape, basis, stored=stored)


#: GGUF metadata value types with a fixed size, by type id: their `struct` format.
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
#: More dimensions, entries or tensors than any real GGUF has: beyond them a file is refused, not read.
_GGUF_MAX_DIMS, _GGUF_MAX_COUNT = 8, 1 << 24


@dataclass(frozen=True)
class _GgufTensor:
    name: str
    #: ggml order, innermost first (`token_embd.weight` is `[hidden, vocab]`).
    shape: tuple[int, ...]
    type_name: str
    nbytes: int


class _GgufHeader:
    """A GGUF file's metadata (scalars and strings; arrays skipped) and tensor table, read from its header.

    Not `gguf.GGUFReader`: it builds an array per vocabulary entry and takes about 15 s over gpt-oss's
    201,088 tokens, which sizing never looks at; this walk reads the few kilobytes it needs and seeks past
    the rest. Anything out of bounds (a count or length past the file) is a `ValueError`.
    """

    def __init__(self, path: Path) -> None:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        self.metadata: dict[str, Any] = {}
        self.tensors: list[_GgufTensor] = []
        self._size = path.stat().st_size
        with open(path, "rb") as self._file:
            if self._file.read(4) != b"GGUF":
                raise ValueError("no GGUF magic")
            version, tensor_count, kv_count = self._unpack("<IQQ")
            if version < 2 or tensor_count > _GGUF_MAX_COUNT or kv_count > _GGUF_MAX_COUNT:
                raise ValueError(f"version {version} with {tensor_count} tensors and {kv_count} metadata keys")
            for _ in range(kv_count):
                key = self._string()
                (kind,) = self._unpack("<I")
                self.metadata[key] = self._value(kind)
            for _ in range(tensor_count):
                name = self._string()
                (dims,) = self._unpack("<I")
                if dims > _GGUF_MAX_DIMS:
                    raise ValueError(f"tensor {name} has {dims} dimensions")
                shape = self._unpack(f"<{dims}Q")
                kind, _offset = self._unpack("<IQ")
                block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
                count = 1
                for dim in shape:
                    count *= dim
                self.tensors.append(_GgufTensor(name, shape, GGMLQuantizationType(kind).name, count // block * size))

    def _unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        data = self._file.read(size)
        if len(data) != size:
            raise ValueError("the header ends early")
        return struct.unpack(fmt, data)

    def _string(self) -> str:
        (length,) = self._unpack("<Q")
        if self._file.tell() + length > self._size:
            raise ValueError(f"a string of {length} bytes past the end of the file")
        return self._file.read(length).decode("utf-8", errors="replace")

    def _value(self, kind: int) -> Any:
        if kind in _GGUF_SCALARS:
            return self._unpack("<" + _GGUF_SCALARS[kind])[0]
        if kind == _GGUF_STRING:
            return self._string()
        if kind != _GGUF_ARRAY:
            raise ValueError(f"unknown metadata type {kind}")
        element, count = self._unpack("<IQ")
        if element in _GGUF_SCALARS:
            skip = count * struct.calcsize(_GGUF_SCALARS[element])
            if self._file.tell() + skip > self._size:
                raise ValueError(f"an array of {count} values past the end of the file")
            self._file.seek(skip, os.SEEK_CUR)
        elif element == _GGUF_STRING:
            for _ in range(count):
                (length,) = self._unpack("<Q")
                self._file.seek(length, os.SEEK_CUR)
            if self._file.tell() > self._size:
                raise ValueError(f"an array of {count} strings past the end of the file")
        else:  # arrays of arrays: no gpt-oss field uses them
            raise ValueError(f"an array of metadata type {element}")
        return None


def _read_gguf(path: Path) -> ShapeReading:
    try:
        import gguf  # noqa: F401  (the tensor types' sizes)
    except ImportError:
        return ShapeReading(None, f"reading {path.name}'s metadata needs the gguf package (pip install gguf)")
    parts = _gguf_parts(path)
    try:
        headers = [_GgufHeader(part) for part in parts]
    except (OSError, ValueError, KeyError, struct.error) as exc:  # a truncated or foreign file
        return ShapeReading(None, f"{path.name} is not a readable GGUF file ({type(exc).__name__}: {exc})")
    metadata = headers[0].metadata
    arch = metadata.get("general.architecture")
    if arch != "gpt-oss":
        return ShapeReading(None, f"{path.name} holds a {arch!r} model, not gpt-oss")

    def number(key: str) -> int:
        value = metadata.get(f"gpt-oss.{key}")
        if value is None:
            raise KeyError(key)
        return int(value)

    tensors = [tensor for header in headers for tensor in header.tensors]
    total = sum(t.nbytes for t in tensors)
    experts = sum(t.nbytes for t in tensors if _is_expert(t.name))
    by_type: dict[str, int] = {}
    for tensor in tensors:
        by_type[tensor.type_name] = by_type.get(tensor.type_name, 0) + tensor.nbytes
    names = {t.name for t in tensors}
    try:
        layers = number("block_count")
        heads = number("attention.head_count")
        hidden = number("embedding_length")
        embedding = next(t for t in tensors if t.name == "token_embd.weight")
        shape = ModelShape(
            layers=layers,
            hidden_size=hidden,
            intermediate_size=number("expert_feed_forward_length"),
            experts=number("expert_count"),
            experts_per_token=number("expert_used_count"),
            attention_heads=heads,
            kv_heads=number("attention.head_count_kv"),
            head_dim=number("attention.key_length"),
            # ggml lists dimensions innermost first: token_embd is [hidden, vocab].
            vocab_size=int(embedding.shape[-1]),
            sliding_window=number("attention.sliding_window"),
            # llama.cpp's gpt-oss alternates sliding and full attention, starting with a sliding layer.
            sliding_layers=(layers + 1) // 2,
            tied_embeddings="output.weight" not in names,
            stored_as="mxfp4" if "MXFP4" in by_type else max(by_type, key=by_type.__getitem__).lower(),
            context_length=int(metadata["gpt-oss.context_length"]) if "gpt-oss.context_length" in metadata else None,
        )
    except (KeyError, StopIteration, TypeError, ValueError) as exc:
        return ShapeReading(None, f"{path.name}'s GGUF metadata lacks a gpt-oss field ({exc})")
    stored = StoredWeights("gguf", parts, total, experts, sum(p.stat().st_size for p in parts), by_type)
    return ShapeReading(shape, f"the GGUF metadata of {path.name}", stored=stored)


def _gguf_parts(path: Path) -> tuple[Path, ...]:
    """Every part of a split GGUF (`name-00001-of-00003.gguf`), or the file alone."""
    match = re.search(r"-(\d{5})-of-(\d{5})\.gguf$", path.name, re.IGNORECASE)
    if not match:
        return (path,)
    stem = path.name[: match.start()]
    count = int(match.group(2))
    return tuple(path.with_name(f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1))


def _file_key(path: Path) -> tuple[str, int, int]:
    status = path.stat()
    return str(path), status.st_size, status.st_mtime_ns


@functools.lru_cache(maxsize=64)
def _cached_gguf(key: tuple[str, int, int]) -> ShapeReading:
    return _read_gguf(Path(key[0]))


@functools.lru_cache(maxsize=64)
def _cached_folder(key: tuple[str, int, int], where: str) -> ShapeReading | None:
    return _read_config_folder(Path(key[0]).parent, where)


def _from_folder(folder: Path) -> ShapeReading:
    config = folder / "config.json"
    if config.is_file():
        reading = _cached_folder(_file_key(config), "in the folder")
        if reading is not None:
            return reading
    ggufs = sorted(folder.glob("*.gguf"))
    if ggufs:
        # The first part of a split file carries the metadata; one model per folder is the common case.
        first = next((g for g in ggufs if "-00001-of-" in g.name), ggufs[0])
        return _cached_gguf(_file_key(first))
    return ShapeReading(None, f"{folder} has neither a config.json nor a .gguf file")


def _released(size: str, why: str, *, guessed: bool) -> ShapeReading:
    shape = shape_from_config(released_config(size))
    return ShapeReading(shape, why, guessed=guessed)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")


#: Shapes read for Hugging Face repos, by (repo, revision): only those found, since a repo that cannot be read
#: now may be downloaded later in the same process (`gptoss-hub pull`, then a plan).
_HUB_READINGS: dict[tuple[str, str | None], ShapeReading] = {}


def _from_hub(repo_id: str, revision: str | None) -> ShapeReading | None:
    """The config of a Hugging Face repo from the local cache, or fetched alone (and the safetensors
    headers through the Hub's metadata call) when online; `None` when neither works."""
    key = (repo_id, revision)
    if key not in _HUB_READINGS:
        reading = _read_from_hub(repo_id, revision)
        if reading is None:
            return None
        _HUB_READINGS[key] = reading
    return _HUB_READINGS[key]


def _read_from_hub(repo_id: str, revision: str | None) -> ShapeReading | None:
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        return _read_config_folder(Path(cached).parent, f"of {repo_id} in the Hugging Face cache")
    cached_gguf = _cached_gguf_file(repo_id, revision)
    if cached_gguf is not None:
        return _cached_gguf(_file_key(cached_gguf))
    if _offline():
        return None
    try:
        config = _fetch_config(repo_id, revision)
        shape = shape_from_config(config)
    except Exception:  # any failure to reach or read the Hub leaves the other ways to tell
        return None
    try:
        from huggingface_hub import HfApi

        # The Hub answered: the headers (a few ranged reads, no weights) give the exact bytes per dtype.
        metadata = HfApi().get_safetensors_metadata(repo_id, revision=revision)
    except Exception:
        return ShapeReading(shape, f"config.json of {repo_id} on the Hub")
    total = experts = 0
    by_type: dict[str, int] = {}
    for file in metadata.files_metadata.values():
        for name, info in file.tensors.items():
            begin, end = info.data_offsets
            total += end - begin
            experts += end - begin if _is_expert(name) else 0
            by_type[info.dtype] = by_type.get(info.dtype, 0) + end - begin
    stored = StoredWeights("safetensors", (), total, experts, total, by_type)
    return ShapeReading(shape, f"config.json and safetensors headers of {repo_id} on the Hub", stored=stored)


def _cached_gguf_file(repo_id: str, revision: str | None) -> Path | None:
    """A GGUF repo's file in the local Hugging Face cache (the MXFP4 one where there are several; the first
    part of a split file), or `None` when none is cached."""
    from gptoss_hub.sources import cached_snapshot

    folder = cached_snapshot(repo_id, revision)
    if folder is None:
        return None
    files = sorted(
        path for path in folder.rglob("*.gguf") if not re.search(r"-0000[2-9]-of-|-000[1-9]\d-of-", path.name)
    )
    if not files:
        return None
    return next((path for path in files if "mxfp4" in path.name.lower()), files[0])


def _fetch_config(repo_id: str, revision: str | None) -> dict[str, Any]:
    """A repo's config.json, asked of the Hub once with a short timeout.

    Not `hf_hub_download`: it retries for about 25 s when the Hub cannot be reached, and a plan must
    answer at once on a machine without a network.
    """
    import urllib.request

    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    request = urllib.request.Request(hf_hub_url(repo_id, "config.json", revision=revision), headers=build_hf_headers())
    with urllib.request.urlopen(request, timeout=HUB_TIMEOUT_S) as response:
        return json.loads(response.read(_MAX_CONFIG_BYTES))


def read_shape(spec: ModelSpec) -> ShapeReading:
    """The shape of the model `spec` names, read from its files where they can be read (see the module)."""
    if spec.kind == "endpoint":
        return ShapeReading(None, "a remote endpoint's model is not in memory here")
    if spec.kind == "reference":
        from gptoss_hub.testing.config import tiny_config_kwargs

        return ShapeReading(
            shape_from_config({**tiny_config_kwargs(), "torch_dtype": "float32"}),
            f"the {spec.name} reference recipe",
        )
    if spec.kind == "gguf_file" and spec.path is not None:
        return _cached_gguf(_file_key(spec.path))
    if spec.kind == "local_dir" and spec.path is not None:
        reading = _from_folder(spec.path)
    elif spec.kind == "hf_repo" and spec.repo_id is not None:
        reading = _hub_reading(spec.repo_id, spec.revision)
    else:
        reading = ShapeReading(None, f"{spec.source!r} names no files")
    if reading.shape is not None:
        return reading
    guess = _RELEASED_NAME.search(spec.name)
    if guess:
        size = guess.group(1).lower()
        return _released(
            size,
            f"guessed from the name {spec.name!r} as the released gpt-oss-{size} ({reading.basis})",
            guessed=True,
        )
    return reading


def _hub_reading(repo_id: str, revision: str | None) -> ShapeReading:
    base = next((source for source, gguf in RELEASED_GGUF_REPOS.items() if gguf == repo_id), repo_id)
    for size, released in RELEASED_REPOS.items():
        if base == released:
            # The released repos' config is known: built in, it needs neither the cache nor the network.
            return _released(size, f"the released {released} config", guessed=False)
    reading = _from_hub(repo_id, revision)
    if reading is not None:
        return reading
    where = "HF_HUB_OFFLINE is set" if _offline() else "the Hub could not be reached"
    return ShapeReading(None, f"{repo_id}'s config.json is not in the Hugging Face cache and {where}")
