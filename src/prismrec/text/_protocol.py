"""What every text encoder promises, and the errors the text step raises."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from prismrec.errors import PrismrecError


class TextEncoder(Protocol):
    """Turns texts into vectors.

    ``name`` must identify everything that changes the vectors (model and options): the disk
    cache is keyed by it, so two encoders with one name must give the same vectors.
    ``encode`` returns float32 of shape (len(texts), dim), row i for texts[i].
    ``dim`` may load a lazy model, which is why this protocol is not runtime-checkable
    (on Python 3.11 ``isinstance`` would read it).
    """

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


class EncoderError(PrismrecError, RuntimeError):
    """The encoder could not produce vectors: model not loadable, endpoint down, bad reply."""


class EncoderAuthError(EncoderError):
    """An embeddings endpoint refused the API key (HTTP 401/403)."""


class DimensionMismatchError(PrismrecError, ValueError):
    """Vectors of a width other than the one configured or already cached."""


def check_output(name: str, vecs: np.ndarray, n: int) -> np.ndarray:
    """An encoder's output as float32 (n, D), or an EncoderError saying what came back."""
    out = np.asarray(vecs, dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != n:
        raise EncoderError(
            f"encoder {name!r} returned an array of shape {out.shape} for {n} texts; "
            f"a TextEncoder must return ({n}, dim)"
        )
    return out
