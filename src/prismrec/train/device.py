"""Where tensors live: ``"auto"``, ``"cpu"`` or ``"cuda"`` (``"cuda:N"`` for one GPU).

The canonical copy of a model stays where it was built (the CPU); training, validation and
batch scoring move the model there for the call (``placed``) and move it back, so every
other path (streaming, explanations, profiles, saving) keeps reading CPU tensors. Batches
and scoring tables are built on the device inside those calls; what they return is on the
CPU. Each such call copies the weights to the device and back. In training, CUDA GPUs with
native bf16 run the encoder under bf16 autocast (``Trainer``, ``StepRunner``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from prismrec.errors import DeviceError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) → the first CUDA GPU when there is one, else the CPU; ``"cuda"``
    where no CUDA GPU exists raises ``DeviceError``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)} "
                          "(or cuda:N)") from exc
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise DeviceError(f"device {device!r} is not supported; choose one of "
                          f"{', '.join(DEVICES)} (or cuda:N)")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} was asked for, but this torch "
                          f"({torch.__version__}) sees no CUDA GPU: use --device cpu or auto")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r} does not exist: this machine has "
                          f"{torch.cuda.device_count()} CUDA GPU(s)")
    return dev


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (the CPU for a module without any)."""
    p = next(model.parameters(), None)
    return torch.device("cpu") if p is None else p.device


@contextlib.contextmanager
def placed(model: torch.nn.Module, device: torch.device | None) -> Iterator[torch.device]:
    """Move ``model`` to ``device`` for the block (None: leave it where it is), then back."""
    home = model_device(model)
    if device is None or torch.device(device) == home:
        yield home
        return
    model.to(device)
    try:
        yield torch.device(device)
    finally:
        model.to(home)

