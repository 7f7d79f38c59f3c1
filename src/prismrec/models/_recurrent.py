"""The shared body of the recurrent models (LSTM, GRU): run a batch, or step one event.

Streaming and training compute the same thing: ``step`` feeds one event through the same
``nn.LSTM``/``nn.GRU`` as ``forward``, so in eval mode the hidden vector after streaming a
history event by event equals ``forward``'s output at that position (tested to 1e-5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from prismrec.models.base import EncoderConfig, SequenceEncoder

# GRU: h; LSTM: (h, c); with an interest head the head's running state is appended:
# GRU (h, head), LSTM (h, c, head). Every tensor has the batch on dim 1.
State = torch.Tensor | tuple[torch.Tensor, ...]


@dataclass
class RecurrentConfig(EncoderConfig):
    layers: int = 1
    hidden_dropout: float = 0.3  # on the hidden output (and between layers), as in GRU4Rec
    init_std: float = 0.1  # no normalisation inside: with 0.02 the tiny inputs and outputs of
    # the RNN multiply and training starts very slowly (seen on Amazon Scientific)

    def validate(self) -> None:
        super().validate()
        if self.layers < 1:
            raise ValueError(f"layers must be at least 1, got {self.layers}")
        if not 0.0 <= self.hidden_dropout < 1.0:
            raise ValueError(f"hidden_dropout must be in [0, 1), got {self.hidden_dropout}")


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: State) -> State:
    """Apply ``fn`` to every tensor of a state (each shaped (layers, B, D))."""
    if isinstance(state, tuple):
        return tuple(fn(s) for s in state)
    return fn(state)


def take_state(state: State, rows: torch.Tensor) -> State:
    """The state of some users, (layers, b, D) each."""
    return map_state(lambda s: s[:, rows], state)


def detach_state(state: State) -> State:
    """Cut the graph between TBPTT chunks (values are kept, gradients stop here)."""
    return map_state(torch.Tensor.detach, state)


class RecurrentEncoder(SequenceEncoder):
    """Item embedding → dropout → RNN → dropout → hidden (B, T, D)."""

    recurrent: ClassVar[bool] = True
    rnn_class: ClassVar[type[nn.RNNBase]]
    config_class: ClassVar[type[RecurrentConfig]] = RecurrentConfig

    def __init__(self, n_items: int, config=None, *, text_vectors=None, route_vectors=None,
                 **overrides) -> None:
        super().__init__(n_items, config, text_vectors=text_vectors,
                         route_vectors=route_vectors, **overrides)
        c = self.config
        self.drop_in = nn.Dropout(c.dropout)
        self.rnn = self.rnn_class(c.dim, c.dim, num_layers=c.layers, batch_first=True,
                                  dropout=c.hidden_dropout if c.layers > 1 else 0.0)
        self.drop_out = nn.Dropout(c.hidden_dropout)

    def _rnn_zeros(self, batch: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        w = self.rnn.weight_hh_l0
        h = w.new_zeros(self.config.layers, batch, self.config.dim)  # (L, B, D)
        return (h, h.clone()) if self.rnn_class is nn.LSTM else h

    def initial_state(self, batch: int) -> State:
        """The state of a user with no events yet (zeros)."""
        return self._join(self._rnn_zeros(batch), None if self.head is None else
                          self.head.initial_state(batch, self.rnn.weight_hh_l0))

    def _split(self, state: State | None):
        """(RNN state, head state) of a full state."""
        if self.head is None or state is None:
            return state, None
        rnn = state[:-1]
        return (rnn if len(rnn) == 2 else rnn[0]), state[-1]

    def _join(self, rnn, head: torch.Tensor | None) -> State:
        if self.head is None:
            return rnn
        return (*(rnn if isinstance(rnn, tuple) else (rnn,)), head)

    def run(self, items: torch.Tensor, lengths: torch.Tensor, gaps: torch.Tensor | None = None,
            state: State | None = None, *, exact_state: bool = True
            ) -> tuple[torch.Tensor, State]:
        """Hidden (B, T, D) and the state after each row's last event.

        ``state`` continues earlier events (None: fresh users). With ``exact_state=False``
        the returned state is exact only for rows of full length T (it skips packing, which
        halves the cost); truncated BPTT needs no more, because only rows that fill a chunk
        continue into the next one.
        """
        rnn_state, head_state = self._split(state)
        out, x, mask, new = self._run_rnn(items, lengths, gaps, rnn_state, exact_state)
        if self.head is None:
            return out, new
        res = self.head(x, out, mask, head_state, route=self.route(items, mask))
        return self.head.mix(res, mask), self._join(new, res.state)

    def features(self, items: torch.Tensor, lengths: torch.Tensor,
                 gaps: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(item vectors, RNN hidden, mask) of fresh users: what the interest head reads."""
        out, x, mask, _ = self._run_rnn(items, lengths, gaps, None, False)
        return x, out, mask

    def _run_rnn(self, items, lengths, gaps, state, exact_state: bool):
        """(hidden (B, T, D), item vectors (B, T, D), mask (B, T), RNN state after)."""
        b, t = items.shape
        x0, mask = self.embed(items, lengths, gaps)  # (B, T, D), (B, T)
        x = self.drop_in(x0)
        if state is None:
            state = self._rnn_zeros(b)
        if not exact_state or bool((lengths == t).all()):
            out, new = self.rnn(x, state)  # (B, T, D)
        else:
            rows = torch.nonzero(lengths > 0).squeeze(1)  # (b',) rows with events
            if rows.numel() == 0:
                return x.new_zeros(b, t, self.config.dim), x0, mask, state
            packed = pack_padded_sequence(x[rows], lengths[rows].cpu(), batch_first=True,
                                          enforce_sorted=False)
            out_p, new_rows = self.rnn(packed, take_state(state, rows))
            out_rows, _ = pad_packed_sequence(out_p, batch_first=True, total_length=t)
            out = x.new_zeros(b, t, self.config.dim).index_copy(0, rows, out_rows)  # (B, T, D)
            new = map_state(lambda s: s.clone(), state)
            if isinstance(new, tuple):
                new = tuple(s.index_copy(1, rows, n) for s, n in zip(new, new_rows, strict=True))
            else:
                new = new.index_copy(1, rows, new_rows)
        return self.drop_out(out) * mask.unsqueeze(-1), x0, mask, new

    def state_interests(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Interest vectors (B, K, D) and weights (B, K) of streamed users, from their state
        alone (the top layer's h is the last hidden output; in eval mode)."""
        if self.head is None:
            raise ValueError(f"this {self.name} model has no interest head")
        rnn, head = self._split(state)
        h = (rnn[0] if isinstance(rnn, tuple) else rnn)[-1]  # (B, D)
        return self.head.state_interests(head, h)

    def forward(self, items: torch.Tensor, lengths: torch.Tensor,
                gaps: torch.Tensor | None = None, state: State | None = None) -> torch.Tensor:
        """(B, T) item indices, (B,) lengths[, (B, T) gaps] → hidden (B, T, D)."""
        return self.run(items, lengths, gaps, state, exact_state=False)[0]

    def step(self, state: State | None, items: torch.Tensor,
             gaps: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """One new event per user: items (B,)[, gaps (B,)] → (hidden (B, D), new state).

        ``state=None`` starts fresh users. ``hidden`` equals ``forward``'s output at the
        same position of the whole history (in eval mode).
        """
        ones = torch.ones_like(items)
        hidden, new = self.run(items[:, None], ones, None if gaps is None else gaps[:, None],
                               state, exact_state=False)
        return hidden[:, 0], new  # (B, D)
