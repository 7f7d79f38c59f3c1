"""LSTM over the item sequence: the reference model of prismrec.

Each user's history is read in time order; the hidden state after an event is the user's
representation for the next one. It is cheap to stream (O(1) per event, carry (h, c)) and
trains over whole histories with truncated BPTT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from prismrec.models._recurrent import RecurrentConfig, RecurrentEncoder


@dataclass
class LSTMConfig(RecurrentConfig):
    """Item embedding → LSTM (1–2 layers) → hidden per step; scored against the item table."""

    dim: int = 64
    layers: int = 1  # a second layer rarely helps on small catalogues and doubles the cost
    dropout: float = 0.3
    hidden_dropout: float = 0.3


class LSTMRec(RecurrentEncoder):
    name: ClassVar[str] = "lstm"
    rnn_class: ClassVar[type[nn.RNNBase]] = nn.LSTM
    config_class: ClassVar[type[LSTMConfig]] = LSTMConfig
