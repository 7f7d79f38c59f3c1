"""Step 2 of the path: item text to vectors with a pretrained language model.

``default_encoder()`` is all-MiniLM-L6-v2 on CPU, shipped in a package, never downloaded.
Other backends: any local sentence-transformers / Hugging Face model directory
(``SentenceTransformerEncoder``), an OpenAI-compatible ``/v1/embeddings`` server
(``OpenAIEmbeddingsEncoder``), and a model-free lexical ``HashingEncoder``.
``encode_catalog`` composes each item's text with a ``TextTemplate`` and encodes it through
a disk cache that re-encodes only new or changed texts.
"""

from prismrec.text._cache import CachedEncoder
from prismrec.text._encode import encode_catalog
from prismrec.text._hashing import HashingEncoder
from prismrec.text._openai import OpenAIEmbeddingsEncoder
from prismrec.text._protocol import (
    DimensionMismatchError,
    EncoderAuthError,
    EncoderError,
    TextEncoder,
)
from prismrec.text._sbert import DEFAULT_MODEL, SentenceTransformerEncoder, default_encoder
from prismrec.text._similarity import cosine_topk
from prismrec.text._template import TextTemplate, compose_texts

__all__ = [
    "DEFAULT_MODEL",
    "CachedEncoder",
    "DimensionMismatchError",
    "EncoderAuthError",
    "EncoderError",
    "HashingEncoder",
    "OpenAIEmbeddingsEncoder",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "TextTemplate",
    "compose_texts",
    "cosine_topk",
    "default_encoder",
    "encode_catalog",
]
