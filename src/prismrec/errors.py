"""Errors a user can cause. Each says what went wrong and what to do about it."""

from __future__ import annotations


class PrismrecError(Exception):
    """Base class for every error prismrec raises on purpose."""


class DataError(PrismrecError, ValueError):
    """Input data is unreadable or inconsistent (bad file, missing column, bad value)."""


class UnknownIdError(PrismrecError, KeyError):
    """A user or item id that the model or vocabulary has never seen."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""


class CheckpointError(PrismrecError, ValueError):
    """A checkpoint is missing, corrupt, or from an incompatible version."""


class MissingExtraError(PrismrecError, ImportError):
    """An optional dependency is not installed."""


def require(module: str, extra: str):
    """Import an optional dependency or raise a one-line install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module} is needed for this; install it with: pip install 'prismrec[{extra}]'"
        ) from exc


class DeviceError(PrismrecError, ValueError):
    """A device that does not exist here was asked for (``cuda`` without a CUDA GPU)."""
