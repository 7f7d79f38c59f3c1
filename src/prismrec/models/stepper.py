"""A fast recurrent step for serving: the RNN's own weights run through its cell modules.

``nn.LSTM``/``nn.GRU`` called on a (B, 1, D) input cost ~200 µs of fixed overhead; the
matching ``nn.LSTMCell``/``nn.GRUCell`` sharing the same parameters compute the same step in
~70 µs. Streaming (``Recommender.update``, ``LiveProfiles``) takes one step per event, so
this is most of an update's model cost.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


class Stepper:
    """One recurrent step for a batch of users (eval mode), with the model's own weights.

    At construction the cells are checked against ``model.step`` on random
    input; on any mismatch (e.g. a model whose step differs) ``model.step`` is used instead.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.lstm = isinstance(model.rnn, nn.LSTM)
        self.cells: list[nn.Module] | None = None
        if getattr(model, "head", None) is not None:  # the head steps too: use model.step
            return
        try:
            self.cells = self._build_cells(model.rnn)
            if not self._agrees():
                log.warning("Stepper: the fast recurrent step disagrees with model.step; "
                            "using model.step")
                self.cells = None
        except (AttributeError, TypeError, RuntimeError, ValueError) as exc:
            log.warning("Stepper: no fast recurrent step (%s); using model.step", exc)
            self.cells = None

    @staticmethod
    def _build_cells(rnn: nn.RNNBase) -> list[nn.Module] | None:
        if not isinstance(rnn, (nn.LSTM, nn.GRU)) or rnn.bidirectional or \
                getattr(rnn, "proj_size", 0) or not rnn.bias or not rnn.batch_first:
            return None
        cells = []
        for layer in range(rnn.num_layers):
            cls = nn.LSTMCell if isinstance(rnn, nn.LSTM) else nn.GRUCell
            cell = cls(1, 1)  # parameters replaced by the RNN's own (shared, not copied)
            for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                setattr(cell, part, getattr(rnn, f"{part}_l{layer}"))
            cell.input_size = rnn.input_size if layer == 0 else rnn.hidden_size
            cell.hidden_size = rnn.hidden_size
            cells.append(cell.eval())
        return cells

    @torch.no_grad()
    def _agrees(self) -> bool:
        if self.cells is None:
            return False
        m = self.model
        g = torch.Generator().manual_seed(0)
        b, n_layers, d = 3, m.config.layers, m.config.dim
        state = torch.randn(2 if self.lstm else 1, n_layers, b, d, generator=g) * 0.5
        items = torch.randint(0, m.n_items, (b,), generator=g)
        gaps = torch.tensor([-1.0, 3.0, 86400.0], dtype=torch.float64)
        gaps = gaps if m.gap_emb is not None else None
        ref_h, ref_s = m.step(self._as_model_state(state), items, gaps)
        got_h, got_s = self._cells_step(state, items, gaps)
        ref_s = torch.stack(list(ref_s)) if self.lstm else ref_s[None]
        return bool(torch.allclose(ref_h, got_h, atol=1e-6)
                    and torch.allclose(ref_s, got_s, atol=1e-6))

    def _as_model_state(self, state: torch.Tensor, head: torch.Tensor | None = None):
        if head is not None:  # (h[, c], head): the interest head's state rides last
            return (state[0], state[1], head) if self.lstm else (state[0], head)
        return (state[0], state[1]) if self.lstm else state[0]

    def _cells_step(self, state: torch.Tensor, items: torch.Tensor,
                    gaps: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        if m.items.mode == "id":  # the module's own lookup, without its per-call overhead
            x = nn.functional.embedding(items + 1, m.items.id.weight)  # (B, D)
        else:
            x = m.items(items + 1)  # (B, D): model row = item index + 1
        if m.gap_emb is not None:
            x = x + m.gap_emb(gaps)  # (B, D)
        new = torch.empty_like(state)  # (S, L, B, D)
        for layer, cell in enumerate(self.cells):
            if self.lstm:
                h, c = cell(x, (state[0, layer], state[1, layer]))  # (B, D) each
                new[0, layer], new[1, layer] = h, c
            else:
                h = cell(x, state[0, layer])  # (B, D)
                new[0, layer] = h
            x = h  # dropout between layers is off in eval mode
        return x, new

    @torch.inference_mode()
    def step(self, state: torch.Tensor, items: torch.Tensor, gaps: torch.Tensor | None,
             head: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """state (S, L, B, D), items (B,)[, gaps (B,)][, head (K, B, F)] ->
        (hidden (B, D), state (S, L, B, D), head state (K, B, F) or None)."""
        if self.cells is not None:
            return (*self._cells_step(state, items, gaps), head)
        hidden, new = self.model.step(self._as_model_state(state, head), items, gaps)
        parts = list(new) if isinstance(new, tuple) else [new]
        new_head = parts.pop() if head is not None else None
        return hidden, torch.stack(parts), new_head
