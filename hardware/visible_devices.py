"""Which of the GPUs a vendor tool lists this process may use (`CUDA_VISIBLE_DEVICES` and its ROCm cousins).

nvidia-smi, NVML, amd-smi and the kernel list every GPU in the machine; the CUDA and HIP runtimes show a
process only those its environment names. A plan made for eight GPUs when two are visible would fail at load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gptoss_hub.hardware.host import NotDetected
from gptoss_hub.hardware.report import Accelerator

__all__ = ["select_visible"]


def _match(token: str, accelerators: Sequence[Accelerator]) -> Accelerator | None:
    if token.isdigit():
        # An ordinal counts the devices still visible (ROCR_VISIBLE_DEVICES first renumbers those HIP sees).
        return accelerators[int(token)] if int(token) < len(accelerators) else None
    # The runtimes accept a UUID or any unique prefix of one ("GPU-5c1e…").
    matches = [a for a in accelerators if a.uuid and a.uuid.lower().startswith(token.lower())]
    return matches[0] if len(matches) == 1 else None


def _apply(variable: str, value: str, accelerators: Sequence[Accelerator], vendor: str) -> list[Accelerator]:
    chosen: list[Accelerator] = []
    for token in (t.strip() for t in value.split(",")):
        found = _match(token, accelerators) if token else None
        if found is None:
            break  # like the CUDA runtime: the list ends at the first entry that names no device
        if found not in chosen:
            chosen.append(found)
    if not chosen:
        raise NotDetected(
            f"{len(accelerators)} {vendor} GPU(s) found, but {variable}={value!r} makes none visible to this process"
        )
    return chosen


def select_visible(
    accelerators: Sequence[Accelerator], env: Mapping[str, str], variables: Sequence[str], vendor: str
) -> list[Accelerator]:
    """The accelerators the environment variables (applied in order) leave visible, in the order they name them.

    Raises `NotDetected` when GPUs exist but the environment hides them all.
    """
    visible = list(accelerators)
    for variable in variables:
        value = env.get(variable)
        if value is not None and visible:
            visible = _apply(variable, value, visible, vendor)
    return visible
