"""Interest heads: a user as K weighted interest vectors instead of one (decomposition).

A head sits on top of any encoder's hidden states and returns, at every position, K interest
vectors ``v_k`` and weights ``w_k`` (how much each interest matters *now*). The encoder's
output becomes the composed vector ``sum_k w_k v_k``, so an item's score is
``sum_k w_k <v_k, e_i> + b_i`` and the trainer's full-softmax loss trains it unchanged.

- ``DecayHead`` (streaming, the default): per-user online clustering. Each event joins the
  user's own interest slots by cosine similarity of its item vector to the slots' running,
  time-decayed centroids (or opens a new slot when none is similar enough); weights come from
  each slot's recent and lasting event mass and from how much the encoder's current vector
  points at it; ``v_k = h + A c_k``, so the composed vector keeps the encoder's own user
  vector ``h`` (ranking as good as the single-vector model). O(K D) per event, no pass over
  the history; the batch form runs the same step, so streaming equals batch.
  With ``route_dim`` > 0 each event also brings a fixed routing vector (the item's
  catalogue categories, ``recommender._routing``) and the cosine that joins it to a slot
  blends in its cosine to the slot's routing sum (``route_weight``): interests then follow
  the catalogue's structure. The state grows to (K, B, D + C + 2). ``Recommender.fit``
  builds those vectors by default (``interest_route="auto"``) when the catalogue has
  categories; ``model.config.interest_route`` says which routing a model uses.
- ``SelfAttentiveHead`` (ComiRec-SA, Cen et al. 2020): K attention distributions over the
  last ``window`` hidden states, ``A = softmax(W2 tanh(W1 H) + age bias)``, ``v_k = A_k H``.
  Not streamable in O(1): it carries the window and recomputes attention over it. Its
  interests are K global directions shared by all users.

Both keep their running state as one tensor with the batch on dim 1, like an RNN state, so
the recurrent helpers (``take_state``, ``detach_state``) carry it across TBPTT chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("decay", "comirec")
SHORT_HALF_LIFE = 3.0  # events: the recent mass behind "matters now" (a switch shows in ~3)
LONG_HALF_LIFE = 50.0  # events: centroids and lasting mass remember an interest for sessions
EPS = 1e-6
ROUTE_SCALE = 10.0  # cosine temperature of joining open slots: near-hard, still shared at ties
ROUTE_THRESHOLD = 0.25  # an event less similar than this to every open slot opens a new one
ROUTE_WEIGHT = 1.0  # share of the catalogue-vector cosine in routing, when the head has one
FREE_MASS = 0.05  # a slot whose lasting mass faded below this (~200 idle events) is reusable
RECYCLE_MASS = 2.0  # a new interest may take over the weakest slot below this lasting mass
# (a stray one- or two-event slot), so stray events do not lock all K slots
CHUNK = 64  # positions per block of the ComiRec attention


class HeadOutput(NamedTuple):
    """Per-position head output for a batch; ``state`` continues after each row's last event."""

    vectors: torch.Tensor  # (B, T, K, D) interest vectors (DecayHead: item-space centroids)
    weights: torch.Tensor  # (B, T, K), rows sum to 1
    assignment: torch.Tensor  # (B, T, K) share of each event given to each interest
    state: torch.Tensor  # (S, B, F) running state
    base: torch.Tensor | None = None  # (B, T, D) the encoder's hidden (DecayHead)


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
    """Per-user interests found while streaming: online clustering of the user's own items.

    Each interest slot k of a user keeps decayed sums of the item vectors routed to it
    (``S_k``), of their event mass over a long horizon (``Z_k``) and over a short one
    (``z_k``). An event joins the slots by soft cosine similarity of its item vector to the
    user's own centroids ``S_k / Z_k``; when no open slot is similar enough (``threshold``)
    it opens a new slot instead: an unused one, or else the weakest if its lasting mass is
    below ``RECYCLE_MASS`` (a stray one- or two-event slot, or one faded for ~200 events).
    Interests are therefore this user's, not K directions shared by everyone (slot 0 is
    the user's first interest), and K only caps how many one user holds at once. An event
    costs O(K D); the batch form runs the same step over time, so streaming equals batch.

    With ``route_dim`` C > 0 (``interest_route="categories"``) each event also carries a
    fixed routing vector r (its catalogue categories), each slot keeps the decayed sum
    ``R_k`` of those routed to it, and the similarity that routes is
    ``(1 - route_weight) cos(x, S_k) + route_weight cos(r, R_k)`` (the item cosine alone
    for an event whose r is zero). The state is (K, B, D + C + 2): S, R, Z, z.

    Routing reads the item vectors without gradient (they are trained by the next-item loss
    anyway); what is learned is how the interests are weighed and used:
    ``w = softmax(a log z_k + b log Z_k + g <h, c_k>)`` (recent mass, lasting mass, and how
    strongly the sequence model's own next-item vector ``h`` points at interest k), and the
    interest vectors are ``v_k = h + A c_k``: the encoder's user vector plus an
    interest-specific residual. The composed vector ``sum_k w_k v_k = h + A sum_k w_k c_k``
    keeps the encoder's ranking (A starts at the identity) and is trained by the ordinary
    full softmax.
    """

    streaming = True

    def __init__(self, dim: int, k: int, threshold: float = ROUTE_THRESHOLD, *,
                 route_dim: int = 0, route_weight: float = ROUTE_WEIGHT) -> None:
        super().__init__(dim, k)
        del self.weigh  # slots are per user: a per-slot linear map of h would mean nothing
        self.threshold = float(threshold)
        self.route_dim, self.route_weight = int(route_dim), float(route_weight)
        self.recycle = RECYCLE_MASS
        d = torch.tensor([0.5 ** (1 / SHORT_HALF_LIFE), 0.5 ** (1 / LONG_HALF_LIFE)])
        self.register_buffer("decay", d, persistent=False)  # (short, long) per event
        self.gains = nn.Parameter(torch.tensor([1.0, 0.5, 1.0]))  # a, b, g of the weights
        self.residual = nn.Linear(dim, dim, bias=False)  # A
        with torch.no_grad():
            self.residual.weight.copy_(torch.eye(dim))

    def half_lives(self) -> tuple[float, float]:
        """Events after which an event's share in the (short, long) mass halves."""
        return SHORT_HALF_LIFE, LONG_HALF_LIFE

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        # (K, B, D+C+2): S, the routing sums R (C = route_dim, 0 without), Z, z
        return like.new_zeros(self.k, batch, self.dim + self.route_dim + 2)

    def _similarity(self, x: torch.Tensor, r: torch.Tensor | None, s: torch.Tensor
                    ) -> torch.Tensor:
        """Cosine of each event to each slot, (B, K): of the item vector to the centroid,
        blended with the routing vector's cosine to the slot's routing sum (``route_weight``)
        for the events that have a routing vector (a zero one routes by the item alone)."""
        d, c = self.dim, self.route_dim
        cos = torch.einsum("bkd,bd->bk", F.normalize(s[..., :d], dim=-1),
                           F.normalize(x, dim=-1))  # (B, K)
        if c == 0 or r is None:
            return cos
        rc = torch.einsum("bkc,bc->bk", F.normalize(s[..., d:d + c], dim=-1),
                          F.normalize(r, dim=-1))  # (B, K)
        has = (r.abs().sum(-1) > 0)[:, None]  # (B, 1)
        a = self.route_weight
        return torch.where(has, (1.0 - a) * cos + a * rc, cos)

    def _step(self, x: torch.Tensor, r: torch.Tensor | None, m: torch.Tensor,
              s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One event per row: x (B, D), routing vector r (B, C) or None, real (B,),
        state (B, K, D+C+2) → (share (B, K), state)."""
        big, small = s[..., -2], s[..., -1]  # (B, K) x2
        cos = self._similarity(x, r, s)  # (B, K)
        open_ = big > FREE_MASS  # (B, K)
        best = torch.where(open_, cos, torch.full_like(cos, -2.0)).max(1).values  # (B,)
        low, slot = big.min(1)  # (B,): the weakest slot (an unused one first), to (re)open
        fresh = (best < self.threshold) & (low < self.recycle)  # (B,) open a new slot
        one = F.one_hot(slot, self.k).to(x.dtype)  # (B, K)
        soft = torch.softmax(torch.where(open_, ROUTE_SCALE * cos,
                                         torch.full_like(cos, -1e9)), dim=-1)
        p = torch.where(fresh[:, None], one, soft) * m[:, None]  # (B, K)
        keep = 1.0 - one * (fresh & m)[:, None]  # (B, K) 0: the slot being (re)opened
        one_ = torch.ones_like(keep)
        dl = torch.where(m[:, None], self.decay[1] * keep, one_)  # padding: state unchanged
        ds = torch.where(m[:, None], self.decay[0] * keep, one_)
        v = x if r is None or self.route_dim == 0 else torch.cat([x, r], -1)  # (B, D+C)
        new = torch.cat([dl[..., None] * s[..., :-2] + p[..., None] * v[:, None],
                         (dl * big + p)[..., None], (ds * small + p)[..., None]], -1)
        return p, new

    def read(self, s: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """state (..., K, D+C+2), hidden (..., D) → centroids (..., K, D), weights (..., K)."""
        d = self.dim
        big, small = s[..., -2], s[..., -1]  # (..., K)
        cents = s[..., :d] / (big.unsqueeze(-1) + EPS)  # (..., K, D)
        a, b, g = self.gains
        logits = a * torch.log(small + EPS) + b * torch.log(big + EPS) \
            + g * torch.einsum("...kd,...d->...k", cents, h)  # (..., K)
        logits = torch.where(big > 0, logits, torch.full_like(logits, -1e9))  # unused slots
        return cents, torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor, h: torch.Tensor, mask: torch.Tensor,
                state: torch.Tensor | None = None, route: torch.Tensor | None = None
                ) -> HeadOutput:
        """``route`` (B, T, C): the events' fixed routing vectors (``route_dim`` > 0)."""
        b, t, _ = h.shape
        if state is None:
            state = self.initial_state(b, h)
        if (route is None) != (self.route_dim == 0):
            raise ValueError(f"this decay head routes with {self.route_dim}-wide catalogue "
                             "vectors: pass route (B, T, C)" if self.route_dim else
                             "this decay head has no routing vectors: route must be None")
        s = state.detach().permute(1, 0, 2)  # (B, K, D+C+2)
        shares, states = [], []
        with torch.no_grad():  # routing: the item vectors are trained by the next-item loss
            xd = x.detach()
            for i in range(t):
                r = None if route is None else route[:, i]  # (B, C)
                p, s = self._step(xd[:, i], r, mask[:, i], s)
                shares.append(p)
                states.append(s)
        if t == 0:
            empty = h.new_zeros(b, 0, self.k)
            return HeadOutput(h.new_zeros(b, 0, self.k, self.dim), empty, empty, state, h)
        seq = torch.stack(states, 1)  # (B, T, K, D+2)
        cents, w = self.read(seq, h)  # (B, T, K, D), (B, T, K)
        return HeadOutput(cents, w, torch.stack(shares, 1), s.permute(1, 0, 2).contiguous(), h)

    def mix(self, out: HeadOutput, mask: torch.Tensor) -> torch.Tensor:
        """h + A sum_k w_k c_k per position, (B, T, D), zero at padding."""
        c = torch.einsum("btk,btkd->btd", out.weights, out.vectors)  # (B, T, D)
        return (out.base + self.residual(c)) * mask.unsqueeze(-1)

    def interests(self, out: HeadOutput, mask: torch.Tensor) -> Interests:
        lengths = mask.sum(1)  # (B,)
        h = _last(out.base, lengths)  # (B, D)
        v = h[:, None] + self.residual(_last(out.vectors, lengths))  # (B, K, D)
        s = out.state.permute(1, 0, 2)  # (B, K, D+C+2)
        mass = torch.stack([s[..., -1], s[..., -2]], -1)  # (B, K, 2): short, long
        return Interests(v, _last(out.weights, lengths), out.assignment,
                         out.weights * mask.unsqueeze(-1), mass)

    def state_interests(self, state: torch.Tensor,
                        hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors (B, K, D) and weights (B, K) from a streamed state and the last hidden."""
        cents, w = self.read(state.permute(1, 0, 2), hidden)
        return hidden[:, None] + self.residual(cents), w


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
                state: torch.Tensor | None = None, route: torch.Tensor | None = None
                ) -> HeadOutput:
        if route is not None:
            raise ValueError("the comirec head does not route by catalogue vectors")
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


def build_head(kind: str, dim: int, k: int, window: int, *, route_dim: int = 0,
               route_weight: float = ROUTE_WEIGHT) -> InterestHead:
    """The head named ``kind`` ("decay" | "comirec") with K interests of width ``dim``;
    a decay head with ``route_dim`` > 0 also routes by fixed catalogue vectors."""
    if kind == "decay":
        return DecayHead(dim, k, route_dim=route_dim, route_weight=route_weight)
    if route_dim:
        raise ValueError("only the decay head routes by catalogue vectors")
    if kind == "comirec":
        return SelfAttentiveHead(dim, k, window)
    raise ValueError(f"interest_head must be one of {HEADS}, got {kind!r}")


__all__ = ["HEADS", "DecayHead", "HeadOutput", "InterestHead", "Interests",
           "SelfAttentiveHead", "build_head"]
