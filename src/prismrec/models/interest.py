"""Interest heads: a user as K weighted interest vectors instead of one (decomposition).

A head sits on top of any encoder's hidden states and returns, at every position, K interest
vectors ``v_k`` and weights ``w_k`` (how much each interest matters *now*). The encoder's
output becomes the mixture ``sum_k w_k v_k``, so an item's score is
``sum_k w_k <v_k, e_i> + b_i`` and the trainer's full-softmax loss trains it unchanged.

- ``DecayHead`` (streaming): each event is routed to the interests by its item vector,
  ``p_t = softmax(W_r x_t)``, and each interest keeps running, per-event-decayed sums of the
  hidden states routed to it, one short- and one long-horizon pool:
  ``S_k <- d * S_k + p_kt h_t``, ``Z_k <- d * Z_k + p_kt``. ``v_k`` mixes the two pool means;
  weights come from the current hidden state and the interests' recent and lasting event
  mass. The state is O(K D) per user and an event costs O(K D): no pass over the history.
  The batch form computes the same recurrence in chunks (a (T, T) decay matrix per chunk).
- ``SelfAttentiveHead`` (ComiRec-SA, Cen et al. 2020): K attention distributions over the
  last ``window`` hidden states, ``A = softmax(W2 tanh(W1 H) + age bias)``, ``v_k = A_k H``.
  Not streamable in O(1): it carries the window and recomputes attention over it.

Both keep their running state as one tensor with the batch on dim 1, like an RNN state, so
the recurrent helpers (``take_state``, ``detach_state``) carry it across TBPTT chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("decay", "comirec")
SHORT_HALF_LIFE = 1.0  # events: the short pool is mostly the interest's latest events
LONG_HALF_LIFE = 50.0  # events: the long pool remembers an interest across many sessions
EPS = 1e-6  # event mass below which an interest counts as unseen
ROUTE_SCALE = 10.0  # cosine routing temperature: near-hard clusters of items (a learnable
# scale drifts down to uniform routing, where every interest becomes the same vector)
CHUNK = 64  # positions per block of the batch recurrence: (CHUNK, CHUNK) decay matrices


class HeadOutput(NamedTuple):
    """Per-position head output for a batch; ``state`` continues after each row's last event."""

    vectors: torch.Tensor  # (B, T, K, D)
    weights: torch.Tensor  # (B, T, K), rows sum to 1
    assignment: torch.Tensor  # (B, T, K) share of each event given to each interest
    state: torch.Tensor  # (S, B, F) running state


@dataclass
class Interests:
    """A batch of users' interests after their last event (what profiles and retrieval read).

    ``assignment[b, t]`` is how event t of row b is shared among the K interests (zero at
    padding, and for ComiRec outside the attention window); ``weight_history[b, t]`` are the
    weights right after event t. ``mass`` (decay head only) is each interest's decayed event
    count in the short and the long pool, (B, K, 2).
    """

    vectors: torch.Tensor  # (B, K, D)
    weights: torch.Tensor  # (B, K)
    assignment: torch.Tensor  # (B, T, K)
    weight_history: torch.Tensor  # (B, T, K)
    mass: torch.Tensor | None = None  # (B, K, 2)


def _last(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (B, T, ...) at each row's last real position (row 0 of T where a row is empty)."""
    idx = (lengths - 1).clamp(min=0)  # (B,)
    return x[torch.arange(x.shape[0], device=x.device), idx]


class InterestHead(nn.Module):
    """Base of the heads: ``forward(x, h, mask, state) -> HeadOutput``."""

    streaming: bool = False

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        self.dim, self.k = dim, k
        self.weigh = nn.Linear(dim, k)  # the current state's say in each interest's weight

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mix(self, out: HeadOutput, mask: torch.Tensor) -> torch.Tensor:
        """The composed user vector per position, sum_k w_k v_k: (B, T, D), zero at padding."""
        u = torch.einsum("btk,btkd->btd", out.weights, out.vectors)  # (B, T, D)
        return u * mask.unsqueeze(-1)

    def interests(self, out: HeadOutput, mask: torch.Tensor) -> Interests:
        """The users' interests after their last event, from ``forward``'s output."""
        lengths = mask.sum(1)  # (B,)
        return Interests(_last(out.vectors, lengths), _last(out.weights, lengths),
                         out.assignment, out.weights * mask.unsqueeze(-1))


class DecayHead(InterestHead):
    """Streaming multi-interest pooling with short- and long-horizon decayed sums."""

    streaming = True

    def __init__(self, dim: int, k: int) -> None:
        super().__init__(dim, k)
        self.prototypes = nn.Parameter(torch.randn(k, dim))  # item directions of the interests
        d = torch.tensor([0.5 ** (1 / SHORT_HALF_LIFE), 0.5 ** (1 / LONG_HALF_LIFE)])
        self.decay_logit = nn.Parameter(torch.log(d / (1 - d)))  # learned, from these horizons
        self.short_share = nn.Parameter(torch.zeros(k))  # sigmoid: short pool's share of v_k
        self.mass_gain = nn.Parameter(torch.ones(2))  # weight of log event mass (short, long)

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """Item vectors (..., D) → each event's share per interest (..., K), by cosine."""
        cos = F.normalize(x, dim=-1) @ F.normalize(self.prototypes, dim=-1).T  # (..., K)
        return torch.softmax(ROUTE_SCALE * cos, dim=-1)

    def decays(self) -> torch.Tensor:
        """Per-event decay of the (short, long) pools, (2,)."""
        return torch.sigmoid(self.decay_logit)

    def half_lives(self) -> tuple[float, float]:
        """Events after which an event's share in the (short, long) pool halves."""
        d = self.decays().detach().double()
        return tuple(float(math.log(0.5) / math.log(x)) for x in d.clamp(1e-12, 1 - 1e-12))

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(2 * self.k, batch, self.dim + 1)  # (2K, B, D+1): sums, mass

    def _pools(self, c: torch.Tensor, carry: torch.Tensor) -> torch.Tensor:
        """c (B, T, K, F) per-event contributions, carry (B, 2, K, F) → sums (B, 2, T, K, F)."""
        d = self.decays()  # (2,)
        outs = []
        for t0 in range(0, c.shape[1], CHUNK):
            blk = c[:, t0:t0 + CHUNK]  # (B, n, K, F)
            n = blk.shape[1]
            i = torch.arange(n, device=c.device, dtype=c.dtype)
            lag = i[:, None] - i[None, :]  # (n, n)
            lmat = torch.where(lag >= 0, d[:, None, None] ** lag.clamp(min=0),
                               torch.zeros((), dtype=c.dtype))  # (2, n, n)
            s = torch.einsum("hij,bjkf->bhikf", lmat, blk)  # (B, 2, n, K, F)
            s = s + (d[:, None] ** (i + 1))[None, :, :, None, None] * carry[:, :, None]
            outs.append(s)
            carry = s[:, :, -1]  # (B, 2, K, F)
        return torch.cat(outs, dim=2)  # (B, 2, T, K, F)

    def read(self, pools: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pools (..., 2, K, D+1), hidden (..., D) → vectors (..., K, D), weights (..., K)."""
        sums, mass = pools[..., :-1], pools[..., -1]  # (..., 2, K, D), (..., 2, K)
        means = sums / (mass.unsqueeze(-1) + EPS)  # (..., 2, K, D)
        a = torch.sigmoid(self.short_share)[:, None]  # (K, 1)
        v = a * means[..., 0, :, :] + (1 - a) * means[..., 1, :, :]  # (..., K, D)
        logm = torch.log(mass + EPS)  # (..., 2, K)
        logits = self.weigh(h) + self.mass_gain[0] * logm[..., 0, :] \
            + self.mass_gain[1] * logm[..., 1, :]  # (..., K)
        return v, torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor, h: torch.Tensor, mask: torch.Tensor,
                state: torch.Tensor | None = None) -> HeadOutput:
        b, t, _ = h.shape
        if state is None:
            state = self.initial_state(b, h)
        p = self.route(x) * mask.unsqueeze(-1)  # (B, T, K)
        ones = torch.ones_like(h[..., :1])
        c = p.unsqueeze(-1) * torch.cat([h, ones], dim=-1).unsqueeze(2)  # (B, T, K, D+1)
        carry = state.view(2, self.k, b, -1).permute(2, 0, 1, 3)  # (B, 2, K, D+1)
        pools = self._pools(c, carry).transpose(1, 2)  # (B, T, 2, K, D+1)
        v, w = self.read(pools, h)  # (B, T, K, D), (B, T, K)
        lengths = mask.sum(1)  # (B,)
        last = torch.where((lengths > 0)[:, None, None, None], _last(pools, lengths),
                           carry)  # (B, 2, K, D+1)
        new = last.permute(1, 2, 0, 3).reshape(2 * self.k, b, -1)  # (2K, B, D+1)
        return HeadOutput(v, w, p, new)

    def interests(self, out: HeadOutput, mask: torch.Tensor) -> Interests:
        base = super().interests(out, mask)
        b = out.state.shape[1]
        mass = out.state[..., -1].view(2, self.k, b).permute(2, 1, 0)  # (B, K, 2)
        base.mass = mass
        return base

    def state_interests(self, state: torch.Tensor,
                        hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors (B, K, D) and weights (B, K) from a streamed state and the last hidden."""
        b = state.shape[1]
        pools = state.view(2, self.k, b, -1).permute(2, 0, 1, 3)  # (B, 2, K, D+1)
        return self.read(pools, hidden)


class SelfAttentiveHead(InterestHead):
    """ComiRec-SA over the last ``window`` hidden states, with a learned age bias."""

    def __init__(self, dim: int, k: int, window: int) -> None:
        super().__init__(dim, k)
        self.window = window
        self.w1 = nn.Linear(dim, dim)
        self.w2 = nn.Linear(dim, k, bias=False)
        self.age = nn.Parameter(torch.zeros(k, window))  # bias by events since the key

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(self.window, batch, self.dim + 1)  # (W, B, D+1): hidden, valid

    def _attend(self, keys: torch.Tensor, valid: torch.Tensor, n: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries are the last n of W + n keys (B, W+n, D); each sees the W keys up to itself.

        Returns vectors (B, n, K, D), key logits (B, W+n, K) and each query's log normaliser
        (B, n, K).
        """
        w = self.window
        e = self.w2(torch.tanh(self.w1(keys)))  # (B, W+n, K)
        q = torch.arange(n, device=keys.device)[:, None] + w  # (n, 1) query position
        j = torch.arange(w + n, device=keys.device)[None, :]  # (1, W+n)
        age = q - j  # (n, W+n)
        ok = (age >= 0) & (age < w)  # (n, W+n)
        bias = self.age[:, age.clamp(0, w - 1)]  # (K, n, W+n)
        logits = e.permute(0, 2, 1)[:, :, None, :] + bias  # (B, K, n, W+n)
        allowed = ok[None, None] & valid[:, None, None, :]  # (B, 1, n, W+n)
        logits = logits.masked_fill(~allowed, -1e9)
        lse = torch.logsumexp(logits, dim=-1)  # (B, K, n)
        a = torch.exp(logits - lse.unsqueeze(-1))  # (B, K, n, W+n)
        v = torch.einsum("bknj,bjd->bnkd", a, keys)  # (B, n, K, D)
        return v, e, lse.transpose(1, 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor, mask: torch.Tensor,
                state: torch.Tensor | None = None) -> HeadOutput:
        b, t, d = h.shape
        w = self.window
        if state is None:
            state = self.initial_state(b, h)
        win = state.permute(1, 0, 2)  # (B, W, D+1)
        vs, lses, es = [], [], []
        for t0 in range(0, t, CHUNK):
            hb, mb = h[:, t0:t0 + CHUNK], mask[:, t0:t0 + CHUNK]  # (B, n, D), (B, n)
            n = hb.shape[1]
            keys = torch.cat([win[..., :d], hb], dim=1)  # (B, W+n, D)
            valid = torch.cat([win[..., d] > 0, mb], dim=1)  # (B, W+n)
            v, e, lse = self._attend(keys, valid, n)
            vs.append(v)
            lses.append(lse)
            es.append(e[:, w:])
            cat = torch.cat([keys, valid.unsqueeze(-1).to(h.dtype)], dim=-1)  # (B, W+n, D+1)
            keep = mb.sum(1)[:, None] + torch.arange(w, device=h.device)[None, :]  # (B, W)
            win = cat.gather(1, keep.unsqueeze(-1).expand(-1, -1, d + 1))  # (B, W, D+1)
        vectors = torch.cat(vs, dim=1)  # (B, T, K, D)
        weights = torch.softmax(self.weigh(h), dim=-1)  # (B, T, K)
        lengths = mask.sum(1)  # (B,)
        assignment = self._assignment(torch.cat(es, 1), _last(torch.cat(lses, 1), lengths),
                                      mask, lengths)
        return HeadOutput(vectors, weights, assignment, win.permute(1, 0, 2).contiguous())

    def _assignment(self, e: torch.Tensor, lse_last: torch.Tensor, mask: torch.Tensor,
                    lengths: torch.Tensor) -> torch.Tensor:
        """Each event's attention from the last position, shared over k: (B, T, K)."""
        t = e.shape[1]
        age = (lengths[:, None] - 1) - torch.arange(t, device=e.device)[None, :]  # (B, T)
        inside = mask & (age < self.window)  # (B, T)
        bias = self.age.T[age.clamp(0, self.window - 1)]  # (B, T, K)
        a = torch.exp(e + bias - lse_last[:, None, :]) * inside.unsqueeze(-1)  # (B, T, K)
        return a / a.sum(-1, keepdim=True).clamp(min=1e-30)

    def state_interests(self, state: torch.Tensor,
                        hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors (B, K, D) and weights (B, K) from a streamed window (O(window)).

        The window's newest key is the last event, so a query there sees exactly it.
        """
        win = state.permute(1, 0, 2)  # (B, W, D+1)
        d = win.shape[-1] - 1
        keys = torch.cat([win.new_zeros(win.shape[0], 1, d), win[..., :d]], 1)  # (B, W+1, D)
        valid = torch.cat([win.new_zeros(win.shape[0], 1, dtype=torch.bool),
                           win[..., d] > 0], 1)  # (B, W+1)
        v, _, _ = self._attend(keys, valid, 1)  # (B, 1, K, D)
        return v[:, 0], torch.softmax(self.weigh(hidden), dim=-1)


def build_head(kind: str, dim: int, k: int, window: int) -> InterestHead:
    """The head named ``kind`` ("decay" | "comirec") with K interests of width ``dim``."""
    if kind == "decay":
        return DecayHead(dim, k)
    if kind == "comirec":
        return SelfAttentiveHead(dim, k, window)
    raise ValueError(f"interest_head must be one of {HEADS}, got {kind!r}")


__all__ = ["HEADS", "DecayHead", "HeadOutput", "InterestHead", "Interests",
           "SelfAttentiveHead", "build_head"]
