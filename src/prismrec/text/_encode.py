"""A whole catalogue to vectors: compose each item's text, then encode (through the cache)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from prismrec.text._cache import CachedEncoder
from prismrec.text._chunks import encode_in_chunks
from prismrec.text._protocol import TextEncoder
from prismrec.text._sbert import default_encoder
from prismrec.text._template import TextTemplate, compose_texts

if TYPE_CHECKING:
    from prismrec.data.catalog import Catalog


def encode_catalog(
    catalog: Catalog,
    encoder: TextEncoder | None = None,
    template: TextTemplate | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    allow_empty: bool = False,
    chunk_size: int = 256,
) -> np.ndarray:
    """float32 (len(catalog), D): row i is the vector of item ``catalog.ids[i]``.

    Defaults: ``default_encoder()`` and ``TextTemplate()``. With ``cache_dir``, vectors are
    filed under (encoder name, template key, text hash) and only new or changed texts are
    encoded; the model is not even loaded when every text is cached.
    """
    encoder = encoder if encoder is not None else default_encoder()
    template = template if template is not None else TextTemplate()
    texts = compose_texts(catalog, template, allow_empty=allow_empty)
    if cache_dir is not None:
        cached = CachedEncoder(encoder, cache_dir, namespace=template.key,
                               chunk_size=chunk_size, progress=progress)
        return cached.encode(texts)
    unique: dict[str, int] = {}
    inverse = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64,
                          count=len(texts))  # (N,) row in unique
    vecs = encode_in_chunks(encoder, list(unique), chunk_size=chunk_size, progress=progress)
    if vecs is None:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return vecs[inverse]
