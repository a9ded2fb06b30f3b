"""Converting gpt-oss checkpoints: Hugging Face safetensors to GGUF for llama.cpp.

`convert_checkpoint(src, out, outtype)` is what `gptoss-hub convert SRC OUT.gguf --outtype …` runs.
Needs numpy and the `gguf` package (`pip install 'gptoss-hub[llamacpp]'`); torch is not needed. Importing
this package stays cheap: the writer loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

__all__ = ["OUTTYPES", "OutType", "convert_checkpoint"]

OutType = Literal["f32", "bf16", "mxfp4"]
#: What `--outtype` accepts: every weight in f32; matrices in bf16; MXFP4 experts with bf16 elsewhere.
OUTTYPES: tuple[OutType, ...] = ("f32", "bf16", "mxfp4")

if TYPE_CHECKING:
    from gptoss_hub.convert.writer import convert_checkpoint


def __getattr__(name: str) -> Any:
    if name == "convert_checkpoint":
        from gptoss_hub.convert import writer

        return getattr(writer, name)
    raise AttributeError(f"module 'gptoss_hub.convert' has no attribute {name!r}")
