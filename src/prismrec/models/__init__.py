"""Step 3 of the path: torch modules only (no I/O): item embeddings and sequence encoders.

Every model keeps one contract (see ``base.SequenceEncoder``): ``forward(items, lengths[,
gaps]) -> hidden (B, T, D)``, ``encode`` (the user vector), ``score_all``/``score`` (dot
product with the item output table plus a bias); recurrent ones add ``step`` for streaming.
Items are dataset indices 0..N-1 everywhere outside the modules (see ``embedding.py``).
"""

from prismrec.models._recurrent import RecurrentEncoder, State
from prismrec.models.base import EncoderConfig, SequenceEncoder
from prismrec.models.embedding import ItemEmbedding, TimeGapEmbedding
from prismrec.models.gru import GRUConfig, GRURec
from prismrec.models.lstm import LSTMConfig, LSTMRec
from prismrec.models.sasrec import SASRec, SASRecConfig

MODELS: dict[str, type[SequenceEncoder]] = {"lstm": LSTMRec, "gru": GRURec, "sasrec": SASRec}


def build_model(name: str, n_items: int, config: dict | EncoderConfig | None = None,
                **kwargs) -> SequenceEncoder:
    """``MODELS[name](n_items, config, **kwargs)`` with a clear error for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](n_items, config, **kwargs)


__all__ = [
    "MODELS",
    "EncoderConfig",
    "GRUConfig",
    "GRURec",
    "ItemEmbedding",
    "LSTMConfig",
    "LSTMRec",
    "RecurrentEncoder",
    "SASRec",
    "SASRecConfig",
    "SequenceEncoder",
    "State",
    "TimeGapEmbedding",
    "build_model",
]
