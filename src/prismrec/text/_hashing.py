"""A lexical encoder with no model to load: feature hashing of words and word pairs.

Why: it needs nothing beyond numpy, starts instantly, and is deterministic across machines,
so it serves where a language model is unavailable or too slow (tests of later steps, quick
experiments). It only knows shared words, not meaning: "sneakers" and "shoes" are unrelated.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class HashingEncoder:
    """Signed feature hashing of lower-cased words (and adjacent word pairs), L2-normalised."""

    dim: int = 256
    bigrams: bool = True

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"HashingEncoder.dim must be >= 1, got {self.dim}")

    @property
    def name(self) -> str:
        return f"hashing-{self.dim}" + ("-bigrams" if self.bigrams else "")

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (N, D)
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            if self.bigrams:
                words += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
            for f in words:
                h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)  # (N, 1)
        return np.divide(out, norms, out=out, where=norms > 0)
