"""Item vectors from a learned ID table, a projected frozen text vector, or both.

Index convention (used by every model): outside the torch modules, items are the dataset's
indices 0..N-1 and a padded position is any position at or past a row's length, whatever it
holds. Inside, row 0 of each table is the padding vector and item i sits at row i + 1, so
``nn.Embedding(padding_idx=0)`` keeps padding at zero and out of the gradient.

Modes:
- ``"id"``: one learned vector per item (the classic setup).
- ``"text"``: a learned projection of a frozen text vector per item; an item with text but
  no interactions gets a usable vector at once.
- ``"id+text"``: their sum. ``id_dropout`` zeroes an item's ID part at random in training,
  so the text part alone must carry the item and cold items are not out of distribution.
"""

from __future__ import annotations

import torch
from torch import nn

MODES = ("id", "text", "id+text")
INIT_STD = 0.02  # small init keeps tied input/output tables from saturating the softmax early


class ItemEmbedding(nn.Module):
    """(B, T) model-row indices → (B, T, D); ``table()`` gives all N + 1 rows for scoring."""

    def __init__(self, n_items: int, dim: int, mode: str = "id", *, text_dim: int = 0,
                 text_vectors: torch.Tensor | None = None, id_dropout: float = 0.0,
                 init_std: float = INIT_STD) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"embedding mode must be one of {MODES}, got {mode!r}")
        if n_items < 1 or dim < 1:
            raise ValueError(f"n_items and dim must be positive, got {n_items} and {dim}")
        if not 0.0 <= id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), got {id_dropout}")
        self.n_items, self.dim, self.mode, self.id_dropout = n_items, dim, mode, id_dropout
        self.id: nn.Embedding | None = None
        self.proj: nn.Linear | None = None
        if mode in ("id", "id+text"):
            self.id = nn.Embedding(n_items + 1, dim, padding_idx=0)
            nn.init.normal_(self.id.weight, std=init_std)
            with torch.no_grad():
                self.id.weight[0].zero_()
        if mode in ("text", "id+text"):
            if text_vectors is not None:
                text_dim = int(text_vectors.shape[-1])
            if text_dim < 1:
                raise ValueError(
                    f"embedding mode {mode!r} needs text vectors: pass text_vectors (N, Dt) "
                    "or text_dim (when the vectors come from a checkpoint)"
                )
            padded = torch.zeros(n_items + 1, text_dim)  # (N+1, Dt), row 0 = padding
            if text_vectors is not None:
                padded[1:] = self._check_text(text_vectors, n_items, text_dim)
            self.register_buffer("text_vectors", padded)  # frozen, saved with the weights
            self.proj = nn.Linear(text_dim, dim)
        self.text_dim = text_dim if self.proj is not None else 0

    @staticmethod
    def _check_text(vectors: torch.Tensor, n_items: int, text_dim: int) -> torch.Tensor:
        v = torch.as_tensor(vectors, dtype=torch.float32)
        if v.shape != (n_items, text_dim):
            raise ValueError(
                f"text_vectors must have shape ({n_items}, {text_dim}), got {tuple(v.shape)}"
            )
        if not torch.isfinite(v).all():
            raise ValueError("text_vectors contain NaN or infinite values")
        return v

    def set_text_vectors(self, vectors: torch.Tensor) -> None:
        """Replace the frozen text vectors (N, Dt), e.g. after re-encoding the catalogue."""
        if self.proj is None:
            raise ValueError(f"embedding mode {self.mode!r} has no text vectors")
        self.text_vectors[1:] = self._check_text(vectors, self.n_items, self.text_dim)

    @torch.no_grad()
    def add_items(self, text_vectors: torch.Tensor) -> None:
        """Append M items known only by their text, (M, Dt): new indices N .. N+M-1.

        Why: an item with text but no interactions must be recommendable without retraining.
        Its ID row is zero, so its vector is the text projection alone — what ``id_dropout``
        trains the model to handle.
        """
        if self.proj is None:
            raise ValueError(f"embedding mode {self.mode!r} has no text path: items cannot be "
                             "added from text; train with embedding='id+text' or 'text'")
        v = torch.as_tensor(text_vectors, dtype=torch.float32)
        if v.ndim != 2:
            raise ValueError(f"text_vectors must be (M, {self.text_dim}), got {tuple(v.shape)}")
        m = int(v.shape[0])
        v = self._check_text(v, m, self.text_dim)  # (M, Dt)
        buf = self.text_vectors
        self.text_vectors = torch.cat([buf, v.to(buf.device, buf.dtype)])  # (N+M+1, Dt)
        if self.id is not None:
            w = self.id.weight
            grown = torch.cat([w.detach(), w.new_zeros(m, self.dim)])  # (N+M+1, D)
            self.id.weight = nn.Parameter(grown, requires_grad=w.requires_grad)
            self.id.num_embeddings = grown.shape[0]
        self.n_items += m

    def _drop_ids(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor | None:
        if self.mode != "id+text" or not self.training or self.id_dropout == 0.0:
            return None
        return (torch.rand(shape, device=device) >= self.id_dropout).float()

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows`` are model rows (0 = padding), (B, T) → (B, T, D) with padding at zero."""
        out = None
        if self.id is not None:
            out = self.id(rows)  # (B, T, D)
            keep = self._drop_ids(tuple(rows.shape) + (1,), rows.device)
            if keep is not None:
                out = out * keep
        if self.proj is not None:
            text = self.proj(self.text_vectors[rows])  # (B, T, D)
            text = text * (rows != 0).unsqueeze(-1)  # the projection bias must not leak into pad
            out = text if out is None else out + text
        return out

    def table(self) -> torch.Tensor:
        """All rows, (N + 1, D); row 0 is padding (zero)."""
        out = None
        if self.id is not None:
            out = self.id.weight  # (N+1, D)
            keep = self._drop_ids((self.n_items + 1, 1), out.device)
            if keep is not None:
                out = out * keep
        if self.proj is not None:
            text = self.proj(self.text_vectors)  # (N+1, D)
            text = torch.cat([torch.zeros_like(text[:1]), text[1:]])
            out = text if out is None else out + text
        return out


class TimeGapEmbedding(nn.Module):
    """The time since the user's previous event, log2-bucketed and embedded.

    A gap below 0 (or NaN) means "no previous event" and gets bucket 0; a gap g >= 0 seconds
    gets bucket 1 + floor(log2(1 + g)), capped at ``n_buckets - 1``. With 32 buckets the cap
    is about 68 years, so unix-second gaps never saturate; data without a clock has
    positions as times, every gap is 1 and the feature is a constant (harmless).
    """

    def __init__(self, n_buckets: int, dim: int, init_std: float = INIT_STD) -> None:
        super().__init__()
        if n_buckets < 2:
            raise ValueError(f"gap_buckets must be at least 2, got {n_buckets}")
        self.n_buckets = n_buckets
        self.emb = nn.Embedding(n_buckets, dim)
        nn.init.normal_(self.emb.weight, std=init_std)

    def buckets(self, gaps: torch.Tensor) -> torch.Tensor:
        g = torch.nan_to_num(gaps.double(), nan=-1.0)  # (B, T)
        b = torch.floor(torch.log2(1.0 + g.clamp(min=0.0))).long() + 1
        b = b.clamp(max=self.n_buckets - 1)
        return torch.where(g < 0, torch.zeros_like(b), b)  # (B, T)

    def forward(self, gaps: torch.Tensor) -> torch.Tensor:
        return self.emb(self.buckets(gaps))  # (B, T, D)
