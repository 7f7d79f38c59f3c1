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
from prismrec.models.interest import HEADS, ROUTE_WEIGHT, InterestHead, Interests, build_head
from prismrec.models.topk import ScoreTable


@dataclass
class EncoderConfig:
    """Settings every sequence model has; each model's config adds its own."""

    dim: int = 64
    dropout: float = 0.3  # small catalogues overfit fast; 0.2-0.5 works on Amazon-size data
    embedding: str = "id"  # "id" | "text" | "id+text" (see embedding.py)
    text_dim: int = 0  # width of the frozen text vectors in text modes
    id_dropout: float = 0.0  # "id+text": chance of hiding an item's ID vector in training
    text_head: float = 0.0  # "id+text": weight of a second, text-only softmax in training
    # (text projection + a bias predicted from the text): it must rank the next item on its
    # own, and items without events are placed by it (recommender._cold); the training loss
    # reported per epoch is the sum, main + text_head x text
    time_gaps: bool = False  # add a log-bucketed "time since previous event" embedding
    gap_buckets: int = 32
    tied: bool = True  # score with the input item table (fewer parameters, better on small data)
    out_bias: bool = True  # per-item output bias: popularity, and the score of an empty history
    init_std: float = 0.02  # std of the item (and gap) vectors at initialisation
    interests: int = 0  # K interest vectors per user (interest.py); 0: one vector, no head
    interest_head: str = "decay"  # "decay": per-user interests, O(K D) per streamed event |
    # "comirec": self-attentive, K global directions over a window
    interest_window: int = 50  # "comirec": the last events its attention reads
    interest_route: str = "auto"  # decay head: "item" routes events by item vector alone |
    # "categories": also by a fixed vector of the item's catalogue categories (route_vectors) |
    # "auto": categories when the decay head is on and route_vectors are given, else item;
    # a built model's config holds the resolved value (what its checkpoint saves)
    route_dim: int = 0  # width of those vectors (set from route_vectors, or a checkpoint)
    route_weight: float = ROUTE_WEIGHT  # share of the category cosine in routing

    def validate(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim must be positive, got {self.dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.init_std <= 0:
            raise ValueError(f"init_std must be positive, got {self.init_std}")
        if self.embedding not in MODES:
            raise ValueError(f"embedding must be one of {MODES}, got {self.embedding!r}")
        if not self.text_head >= 0.0:
            raise ValueError(f"text_head must be >= 0, got {self.text_head}")
        if self.text_head and self.embedding != "id+text":
            raise ValueError(f"text_head={self.text_head} needs embedding='id+text' (a text "
                             f"path beside the ID one), got {self.embedding!r}")
        if not self.tied and self.embedding != "id":
            raise ValueError("an untied output table needs embedding='id' (text modes share it)")
        if self.interests < 0 or self.interests == 1:
            raise ValueError(f"interests must be 0 (one vector) or at least 2, got "
                             f"{self.interests}")
        if self.interest_head not in HEADS:
            raise ValueError(f"interest_head must be one of {HEADS}, got {self.interest_head!r}")
        if self.interest_window < 1:
            raise ValueError(f"interest_window must be positive, got {self.interest_window}")
        if self.interest_route not in ROUTES:
            raise ValueError(f"interest_route must be one of {ROUTES}, got "
                             f"{self.interest_route!r}")
        if not 0.0 <= self.route_weight <= 1.0:
            raise ValueError(f"route_weight must be in [0, 1], got {self.route_weight}")
        if self.interest_route == "categories":
            if not self.interests or self.interest_head != "decay":
                raise ValueError("interest_route='categories' needs the decay interest head "
                                 "(interests=K >= 2, interest_head='decay')")
            if self.route_dim < 1:
                raise ValueError("interest_route='categories' needs routing vectors: pass "
                                 "route_vectors (N, C) (Recommender.fit builds them from the "
                                 "catalogue's categories) or route_dim (from a checkpoint)")
        elif self.route_dim:
            raise ValueError(f"route_dim={self.route_dim} needs interest_route='categories'")

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


ROUTES = ("auto", "item", "categories")


def padding_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B,) lengths → (B, T) True at real positions."""
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


class SequenceEncoder(nn.Module, metaclass=ABCMeta):
    """Base of every model: ``forward(items, lengths[, gaps]) -> hidden (B, T, D)``.

    Subclasses set ``name``, ``config_class`` and implement ``forward``; recurrent ones set
    ``recurrent = True`` and add ``step``. ``max_len`` is the window a model reads (None:
    the whole history). ``route_vectors`` (N, C): the items' catalogue routing vectors for
    a decay head (``interest_route`` "categories", or "auto", which routes by them when
    they are given and the decay head is on, else by the item vectors alone).
    """

    name: ClassVar[str] = ""
    recurrent: ClassVar[bool] = False
    config_class: ClassVar[type[EncoderConfig]] = EncoderConfig

    def __init__(self, n_items: int, config: EncoderConfig | dict | None = None, *,
                 text_vectors: torch.Tensor | None = None,
                 route_vectors: torch.Tensor | None = None, **overrides: Any) -> None:
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
        if config.interest_route == "auto":  # resolved once: the model records what it used
            on = (route_vectors is not None and config.interests >= 2
                  and config.interest_head == "decay")
            config = config.replace(interest_route="categories" if on else "item")
            route_vectors = route_vectors if on else None
        if route_vectors is not None:
            if config.interest_route != "categories":
                raise ValueError("route_vectors need interest_route='categories'")
            config = config.replace(route_dim=int(route_vectors.shape[-1]))
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
        self.text_bias: nn.Linear | None = None  # the text head's bias, predicted from text
        if config.text_head:
            self.text_bias = nn.Linear(self.items.text_dim, 1)
            nn.init.zeros_(self.text_bias.weight)
            nn.init.zeros_(self.text_bias.bias)
        self.gap_emb = (TimeGapEmbedding(config.gap_buckets, d, config.init_std)
                        if config.time_gaps else None)
        self.head: InterestHead | None = (
            build_head(config.interest_head, d, config.interests, config.interest_window,
                       route_dim=config.route_dim, route_weight=config.route_weight)
            if config.interests else None)
        if config.route_dim:  # (N+1, C), row 0 = padding: fixed, saved with the weights
            table = torch.zeros(self.n_items + 1, config.route_dim)
            if route_vectors is not None:
                table[1:] = _check_route(route_vectors, self.n_items, config.route_dim)
            self.register_buffer("route_vectors", table)

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def max_len(self) -> int | None:
        return None

    def route(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """The events' routing vectors (B, T, C), zero at padding; None without them."""
        if not self.config.route_dim:
            return None
        rows = torch.where(mask, items + 1, torch.zeros_like(items))  # (B, T), 0 = padding
        return self.route_vectors[rows]  # (B, T, C)

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

    def features(self, items: torch.Tensor, lengths: torch.Tensor,
                 gaps: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What an interest head reads: (item vectors (B, T, D), hidden (B, T, D), mask (B, T)).

        Models that can carry an interest head override this; ``forward`` is then the head's
        mixture over these hidden states.
        """
        raise ValueError(f"{self.name} does not support interest heads")

    def interests(self, items: torch.Tensor, lengths: torch.Tensor,
                  gaps: torch.Tensor | None = None) -> Interests:
        """K interest vectors and weights after each row's last event, with each event's
        assignment and the weights after every event (see ``interest.Interests``)."""
        if self.head is None:
            raise ValueError(f"this {self.name} model has no interest head: build it with "
                             "interests=K (K >= 2)")
        x, h, mask = self.features(items, lengths, gaps)  # (B, T, D) x2, (B, T)
        return self.head.interests(self.head(x, h, mask, route=self.route(items, mask)), mask)

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

    def text_output(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The text head (``text_head`` > 0): every item's text projection (N, D) and its
        bias predicted from the text (N,), in dataset index order."""
        if self.text_bias is None:
            raise ValueError(f"this {self.name} model has no text head: build it with "
                             "embedding='id+text' and text_head > 0")
        text = self.items.text_vectors[1:]  # (N, Dt)
        return self.items.proj(text), self.text_bias(text).squeeze(-1)

    def score_all(self, user_repr: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, N): every item's score."""
        table = self.output_table()
        if self.out_bias is None:
            return user_repr @ table.T  # (B, N)
        return torch.addmm(self.out_bias, user_repr, table.T)  # one pass instead of two

    @torch.no_grad()
    def score_table(self) -> ScoreTable:
        """A frozen copy of the output table laid out for serving (``score_all`` + top-k)."""
        return ScoreTable(self.output_table(), self.out_bias)

    def score(self, user_repr: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """(B, D), item indices (B, K) → (B, K): scores of chosen items only."""
        table = self.output_table()[item_ids]  # (B, K, D)
        s = torch.einsum("bd,bkd->bk", user_repr, table)  # (B, K)
        return s if self.out_bias is None else s + self.out_bias[item_ids]

    @torch.no_grad()
    def reset_untrained(self, trained: torch.Tensor) -> int:
        """Give the items outside ``trained`` (bool (N,)) the standing of items added later
        with ``add_items``: a zero ID row and the trained items' mean output bias.

        Why: the full softmax only ever pushes an item without training events down (its ID
        row and bias learn "not this"), so an item with text but no events would rank last
        although its text vector could place it. Text modes with tied output only (an
        untied output row cannot be made from text); returns the number of items reset.
        """
        if self.items.proj is None or self.out_table is not None:
            return 0
        cold = torch.nonzero(~trained.bool()).flatten()  # item indices
        if cold.numel() == 0 or cold.numel() == self.n_items:
            return 0
        if self.items.id is not None:
            self.items.id.weight[cold + 1] = 0.0  # model row = item index + 1
        if self.out_bias is not None:
            self.out_bias[cold] = self.out_bias[trained.bool()].mean()
        return int(cold.numel())

    @torch.no_grad()
    def add_items(self, text_vectors: torch.Tensor,
                  route_vectors: torch.Tensor | None = None) -> None:
        """Append M items from their text vectors (M, Dt) without retraining (text modes).

        Their ID rows are zero and their output bias is the mean bias of the trained items
        (a neutral prior: softmax scores ignore a shared shift, so 0 means nothing). A model
        that routes by catalogue vectors takes theirs as ``route_vectors`` (M, C); without
        them the new items' rows are zero and they are routed by their item vector alone.
        """
        m = int(torch.as_tensor(text_vectors).shape[0])
        if self.config.route_dim:
            r = (torch.zeros(m, self.config.route_dim) if route_vectors is None
                 else _check_route(route_vectors, m, self.config.route_dim))
            grown = torch.cat([self.route_vectors, r.to(self.route_vectors)])  # (N+M+1, C)
        elif route_vectors is not None:
            raise ValueError("this model does not route by catalogue vectors")
        self.items.add_items(text_vectors)
        if self.config.route_dim:
            self.route_vectors = grown
        if self.out_bias is not None:
            b = self.out_bias
            fill = b.mean() if b.numel() else b.new_zeros(())
            self.out_bias = nn.Parameter(torch.cat([b.detach(), fill.expand(m)]),
                                         requires_grad=b.requires_grad)
        self.n_items = self.items.n_items


def _check_route(vectors: torch.Tensor, n: int, c: int) -> torch.Tensor:
    v = torch.as_tensor(vectors, dtype=torch.float32)
    if v.shape != (n, c):
        raise ValueError(f"route_vectors must have shape ({n}, {c}), got {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise ValueError("route_vectors contain NaN or infinite values")
    return v
