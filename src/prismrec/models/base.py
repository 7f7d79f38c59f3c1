"""What every sequence model shares: config manners, item tables in, dot-product scoring out.

A model maps a batch of item sequences to one hidden vector per position; the vector at a
user's last position is their representation, and an item's score is its dot product with
the item's output vector plus a per-item bias. See ``embedding.py`` for the index convention
(dataset indices outside, row = index + 1 inside, positions past ``lengths`` are padding).
"""

from __future__ import annotations

import dataclasses
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from prismrec.models.embedding import MODES, ItemEmbedding, TimeGapEmbedding


@dataclass
class EncoderConfig:
    """Settings every sequence model has; each model's config adds its own."""

    dim: int = 64
    dropout: float = 0.3  # small catalogues overfit fast; 0.2-0.5 works on Amazon-size data
    embedding: str = "id"  # "id" | "text" | "id+text" (see embedding.py)
    text_dim: int = 0  # width of the frozen text vectors in text modes
    id_dropout: float = 0.0  # "id+text": chance of hiding an item's ID vector in training
    time_gaps: bool = False  # add a log-bucketed "time since previous event" embedding
    gap_buckets: int = 32
    tied: bool = True  # score with the input item table (fewer parameters, better on small data)
    out_bias: bool = True  # per-item output bias: popularity, and the score of an empty history
    init_std: float = 0.02  # std of the item (and gap) vectors at initialisation

    def validate(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim must be positive, got {self.dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.init_std <= 0:
            raise ValueError(f"init_std must be positive, got {self.init_std}")
        if self.embedding not in MODES:
            raise ValueError(f"embedding must be one of {MODES}, got {self.embedding!r}")
        if not self.tied and self.embedding != "id":
            raise ValueError("an untied output table needs embedding='id' (text modes share it)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} field(s) {unknown}; known fields: {sorted(names)}"
            )
        return cls(**d)

    def replace(self, **changes: Any) -> EncoderConfig:
        return type(self).from_dict({**self.to_dict(), **changes})


def padding_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B,) lengths → (B, T) True at real positions."""
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


class SequenceEncoder(nn.Module, metaclass=ABCMeta):
    """Base of every model: ``forward(items, lengths[, gaps]) -> hidden (B, T, D)``.

    Subclasses set ``name``, ``config_class`` and implement ``forward``; recurrent ones set
    ``recurrent = True`` and add ``step``. ``max_len`` is the window a model reads (None:
    the whole history).
    """

    name: ClassVar[str] = ""
    recurrent: ClassVar[bool] = False
    config_class: ClassVar[type[EncoderConfig]] = EncoderConfig

    def __init__(self, n_items: int, config: EncoderConfig | dict | None = None, *,
                 text_vectors: torch.Tensor | None = None, **overrides: Any) -> None:
        super().__init__()
        if config is None:
            config = self.config_class()
        elif isinstance(config, dict):
            config = self.config_class.from_dict(config)
        elif not isinstance(config, self.config_class):
            raise TypeError(f"config must be a {self.config_class.__name__} or a dict")
        if overrides:
            config = config.replace(**overrides)
        if text_vectors is not None and config.embedding != "id":
            config = config.replace(text_dim=int(text_vectors.shape[-1]))
        config.validate()
        self.config = config
        self.n_items = int(n_items)
        d = config.dim
        self.items = ItemEmbedding(self.n_items, d, config.embedding, text_dim=config.text_dim,
                                   text_vectors=text_vectors, id_dropout=config.id_dropout,
                                   init_std=config.init_std)
        self.out_table = None if config.tied else nn.Parameter(torch.empty(self.n_items, d))
        if self.out_table is not None:
            nn.init.normal_(self.out_table, std=config.init_std)
        self.out_bias = nn.Parameter(torch.zeros(self.n_items)) if config.out_bias else None
        self.gap_emb = (TimeGapEmbedding(config.gap_buckets, d, config.init_std)
                        if config.time_gaps else None)

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def max_len(self) -> int | None:
        return None

    def embed(self, items: torch.Tensor, lengths: torch.Tensor,
              gaps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Item (+ time-gap) vectors with padding at zero: ((B, T, D), mask (B, T))."""
        mask = padding_mask(lengths, items.shape[1])  # (B, T)
        rows = torch.where(mask, items + 1, torch.zeros_like(items))  # (B, T), 0 = padding
        x = self.items(rows)  # (B, T, D)
        if self.gap_emb is not None:
            if gaps is None:
                raise ValueError(f"{self.name} was built with time_gaps=True: pass gaps")
            x = x + self.gap_emb(gaps) * mask.unsqueeze(-1)
        return x, mask

    @abstractmethod
    def forward(self, items: torch.Tensor, lengths: torch.Tensor,
                gaps: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) item indices, (B,) lengths[, (B, T) gaps] → hidden (B, T, D)."""

    def encode(self, items: torch.Tensor, lengths: torch.Tensor,
               gaps: torch.Tensor | None = None) -> torch.Tensor:
        """The user representation: hidden at each row's last event, (B, D); zero if empty."""
        h = self.forward(items, lengths, gaps)  # (B, T, D)
        last = (lengths - 1).clamp(min=0)  # (B,)
        out = h[torch.arange(h.shape[0], device=h.device), last]  # (B, D)
        return out * (lengths > 0).unsqueeze(-1)

    def output_table(self) -> torch.Tensor:
        """Output vector of every real item, (N, D), in dataset index order."""
        if self.out_table is not None:
            return self.out_table
        return self.items.table()[1:]  # (N, D)

    def score_all(self, user_repr: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, N): every item's score."""
        s = user_repr @ self.output_table().T  # (B, N)
        return s if self.out_bias is None else s + self.out_bias

    def score(self, user_repr: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """(B, D), item indices (B, K) → (B, K): scores of chosen items only."""
        table = self.output_table()[item_ids]  # (B, K, D)
        s = torch.einsum("bd,bkd->bk", user_repr, table)  # (B, K)
        return s if self.out_bias is None else s + self.out_bias[item_ids]
