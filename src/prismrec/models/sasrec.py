"""SASRec (Kang & McAuley 2018) with pre-LayerNorm blocks, trained with full softmax.

Causal self-attention over the last ``max_len`` events: the hidden vector at position t sees
positions 0..t only. Rows are start-aligned (padding after the last event), so the causal
mask alone keeps padding out of every real position and no key-padding mask is needed.
Positions are learned and count from the start of the window. Trained with full-softmax
cross-entropy at every position (Klenitskiy & Vasilev 2023), which is what makes it strong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from prismrec.models.base import EncoderConfig, SequenceEncoder
from prismrec.models.embedding import INIT_STD


@dataclass
class SASRecConfig(EncoderConfig):
    dim: int = 64
    blocks: int = 2
    heads: int = 1
    max_len: int = 50  # the window read at training and inference time
    dropout: float = 0.3
    attn_dropout: float = 0.2
    ff_mult: int = 4

    def validate(self) -> None:
        super().validate()
        if self.blocks < 1 or self.heads < 1 or self.max_len < 1 or self.ff_mult < 1:
            raise ValueError("blocks, heads, max_len and ff_mult must be positive")
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, attn_dropout: float, dropout: float) -> None:
        super().__init__()
        self.heads, self.attn_dropout = heads, attn_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # 3 x (B, T, D)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for z in (q, k, v))  # (B, H, T, D/H)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.attn_dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return self.drop(self.proj(y))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, c: SASRecConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(c.dim)
        self.attn = CausalSelfAttention(c.dim, c.heads, c.attn_dropout, c.dropout)
        self.ln2 = nn.LayerNorm(c.dim)
        self.ff = nn.Sequential(nn.Linear(c.dim, c.ff_mult * c.dim), nn.GELU(),
                                nn.Linear(c.ff_mult * c.dim, c.dim), nn.Dropout(c.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))  # (B, T, D)
        return x + self.ff(self.ln2(x))  # (B, T, D)


class SASRec(SequenceEncoder):
    name: ClassVar[str] = "sasrec"
    config_class: ClassVar[type[SASRecConfig]] = SASRecConfig

    def __init__(self, n_items: int, config=None, *, text_vectors=None, route_vectors=None,
                 **overrides) -> None:
        super().__init__(n_items, config, text_vectors=text_vectors,
                         route_vectors=route_vectors, **overrides)
        c = self.config
        self.pos = nn.Embedding(c.max_len, c.dim)
        nn.init.normal_(self.pos.weight, std=INIT_STD)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.blocks))
        self.ln_f = nn.LayerNorm(c.dim)

    @property
    def max_len(self) -> int:
        return self.config.max_len

    def forward(self, items: torch.Tensor, lengths: torch.Tensor,
                gaps: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) item indices, (B,) lengths[, (B, T) gaps] → hidden (B, T, D); T <= max_len."""
        if self.head is None:
            return self.features(items, lengths, gaps)[1]
        x, h, mask = self.features(items, lengths, gaps)
        res = self.head(x, h, mask, route=self.route(items, mask))
        return self.head.mix(res, mask)  # interests over the window

    def features(self, items: torch.Tensor, lengths: torch.Tensor,
                 gaps: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(item vectors, transformer hidden, mask): what an interest head reads."""
        t = items.shape[1]
        if t > self.max_len:
            raise ValueError(
                f"SASRec reads at most max_len={self.max_len} events per row, got {t}: "
                "keep the last max_len events of each history"
            )
        x0, mask = self.embed(items, lengths, gaps)  # (B, T, D), (B, T)
        x = self.drop(x0 + self.pos.weight[:t])  # (B, T, D)
        for block in self.blocks:
            x = block(x)
        return x0, self.ln_f(x) * mask.unsqueeze(-1), mask  # (B, T, D) x2, (B, T)
