"""Encoding many texts in chunks: progress bar, throughput log, a hook to save each chunk."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from prismrec.text._protocol import DimensionMismatchError, TextEncoder, check_output

log = logging.getLogger("prismrec.text")


def encode_in_chunks(
    encoder: TextEncoder,
    texts: list[str],
    *,
    chunk_size: int = 256,
    progress: bool = False,
    on_chunk: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> np.ndarray | None:
    """Vectors for ``texts`` (row i for texts[i]); None when there are no texts.

    Texts go longest first, so each model batch holds texts of similar length (less
    padding); ``on_chunk(positions, vectors)`` sees every chunk as soon as it is encoded,
    which lets a cache keep finished work if the run is interrupted.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not texts:
        return None
    order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first
    out: np.ndarray | None = None
    start = time.perf_counter()
    with tqdm(total=len(texts), disable=not progress, unit="text",
              desc=f"encoding with {encoder.name}") as bar:
        for lo in range(0, len(texts), chunk_size):
            pos = order[lo: lo + chunk_size]
            vecs = check_output(encoder.name, encoder.encode([texts[i] for i in pos]), len(pos))
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)  # (N, D)
            elif vecs.shape[1] != out.shape[1]:
                raise DimensionMismatchError(
                    f"encoder {encoder.name!r} changed width mid-run: {out.shape[1]} then "
                    f"{vecs.shape[1]}"
                )
            out[pos] = vecs
            if on_chunk is not None:
                on_chunk(pos, vecs)
            bar.update(len(pos))
    seconds = time.perf_counter() - start
    log.info("encoded %d texts with %s in %.1f s (%.0f texts/s)", len(texts), encoder.name,
             seconds, len(texts) / max(seconds, 1e-9))
    return out
