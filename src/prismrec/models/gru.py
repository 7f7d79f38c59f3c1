"""GRU4Rec (Hidasi et al. 2016; Hidasi & Czapp 2023, the official design).

What the official implementation does and this module keeps: a GRU over item embeddings,
dropout on the embeddings and on the hidden state, and the option of a *constrained*
embedding (``tied=True``): the input embedding and the output weights are one table. The
output bias is GRU4Rec's ``By``. Session-parallel mini-batches correspond to our truncated
BPTT with carried state; the loss is the shared full-softmax cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from prismrec.models._recurrent import RecurrentConfig, RecurrentEncoder


@dataclass
class GRUConfig(RecurrentConfig):
    dim: int = 64
    layers: int = 1
    dropout: float = 0.3  # GRU4Rec dropout_p_embed
    hidden_dropout: float = 0.3  # GRU4Rec dropout_p_hidden
    tied: bool = True  # GRU4Rec constrained_embedding


class GRURec(RecurrentEncoder):
    name: ClassVar[str] = "gru"
    rnn_class: ClassVar[type[nn.RNNBase]] = nn.GRU
    config_class: ClassVar[type[GRUConfig]] = GRUConfig
