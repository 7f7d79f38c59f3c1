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

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # GRU: h; LSTM: (h, c)


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

    def __init__(self, n_items: int, config=None, *, text_vectors=None, **overrides) -> None:
        super().__init__(n_items, config, text_vectors=text_vectors, **overrides)
        c = self.config
        self.drop_in = nn.Dropout(c.dropout)
        self.rnn = self.rnn_class(c.dim, c.dim, num_layers=c.layers, batch_first=True,
                                  dropout=c.hidden_dropout if c.layers > 1 else 0.0)
        self.drop_out = nn.Dropout(c.hidden_dropout)

    def initial_state(self, batch: int) -> State:
        """The state of a user with no events yet (zeros)."""
        w = self.rnn.weight_hh_l0
        h = w.new_zeros(self.config.layers, batch, self.config.dim)  # (L, B, D)
        return (h, h.clone()) if self.rnn_class is nn.LSTM else h

    def run(self, items: torch.Tensor, lengths: torch.Tensor, gaps: torch.Tensor | None = None,
            state: State | None = None, *, exact_state: bool = True
            ) -> tuple[torch.Tensor, State]:
        """Hidden (B, T, D) and the state after each row's last event.

        ``state`` continues earlier events (None: fresh users). With ``exact_state=False``
        the returned state is exact only for rows of full length T (it skips packing, which
        halves the cost); truncated BPTT needs no more, because only rows that fill a chunk
        continue into the next one.
        """
        b, t = items.shape
        x, mask = self.embed(items, lengths, gaps)  # (B, T, D), (B, T)
        x = self.drop_in(x)
        if state is None:
            state = self.initial_state(b)
        if not exact_state or bool((lengths == t).all()):
            out, new = self.rnn(x, state)  # (B, T, D)
        else:
            rows = torch.nonzero(lengths > 0).squeeze(1)  # (b',) rows with events
            if rows.numel() == 0:
                return x.new_zeros(b, t, self.config.dim), state
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
        return self.drop_out(out) * mask.unsqueeze(-1), new

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
