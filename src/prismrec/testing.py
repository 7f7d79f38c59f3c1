"""The contract every sequence model keeps, as a test suite shipped with the package.

A model's test file is a few lines::

    from prismrec.testing import RecurrentModelContract

    class TestLSTM(RecurrentModelContract):
        model = "lstm"

``SequenceModelContract`` holds what every model must do; ``RecurrentModelContract`` adds
streaming (``step``) and truncated-BPTT consistency. The tests use tiny synthetic data with
a known answer (``cycle_sequences``) and run in seconds on a CPU.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from prismrec.data.catalog import Catalog
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, leave_one_out
from prismrec.models import MODELS, SequenceEncoder
from prismrec.train.batching import TrainBatches, event_gaps, gather_padded
from prismrec.train.checkpoint import load_checkpoint, save_checkpoint
from prismrec.train.config import TrainConfig
from prismrec.train.inference import score_sequences
from prismrec.train.trainer import Trainer, chunk_steps

# Cycles that share items (1 and 8): after a shared item only the earlier context tells
# which item comes next, so a model must remember more than the last event.
CYCLES = ((0, 1, 2, 3), (4, 1, 5, 6), (7, 8, 9), (10, 8, 11, 12, 13))
CYCLE_ITEMS = 14


def cycle_sequences(n_users: int = 300, *, min_len: int = 8, max_len: int = 30,
                    seed: int = 0) -> Sequences:
    """Users who walk around one of ``CYCLES`` from a random point: the next item is known.

    Times are unix-like seconds with a random gap (1 s to 1 day) between events.
    """
    rng = np.random.default_rng(seed)
    rows, times = [], []
    for _ in range(n_users):
        cycle = CYCLES[rng.integers(len(CYCLES))]
        start, n = rng.integers(len(cycle)), rng.integers(min_len, max_len + 1)
        rows.append([cycle[(start + i) % len(cycle)] for i in range(n)])
        times.append(1.6e9 + np.cumsum(rng.integers(1, 86_400, size=n)).astype(float))
    return Sequences.from_lists(rows, times)


def cycle_frame(n_users: int = 200, *, time_col: str = "timestamp") -> pd.DataFrame:
    """``cycle_sequences`` as an event table with string ids: user 'u<r>', item 'i<index>'."""
    seqs = cycle_sequences(n_users)
    return pd.DataFrame({"user": [f"u{r}" for r in seqs.row_ids()],
                         "item": [f"i{i}" for i in seqs.items], time_col: seqs.times})


# A distinct two-word title per cycle item ("red lamp" for i0 ...), for tests of item text.
CYCLE_TITLES = tuple(f"{c} {t}" for c, t in zip(
    ["red", "blue", "green", "amber", "violet", "silver", "golden", "black", "white",
     "orange", "teal", "crimson", "ivory", "olive"],
    ["lamp", "kettle", "scarf", "teapot", "lantern", "blanket", "mirror", "bicycle",
     "saddle", "compass", "telescope", "harmonica", "notebook", "umbrella"], strict=True))


def cycle_catalog() -> Catalog:
    """The cycle items' catalogue: item 'i<index>' titled ``CYCLE_TITLES[index]``."""
    return Catalog.from_frame(pd.DataFrame({"item": [f"i{i}" for i in range(CYCLE_ITEMS)],
                                            "title": list(CYCLE_TITLES)}))


def top1_accuracy(model: SequenceEncoder, cases: EvalCases) -> float:
    """Share of cases whose first target is the model's top item (nothing filtered)."""
    top = score_sequences(model, cases.history).argmax(1).numpy()
    return float((top == cases.targets.items[cases.targets.offsets[:-1]]).mean())


def padded(seqs: Sequences, gaps: bool = False):
    """(items (B, T), lengths (B,), gaps (B, T) | None) tensors of whole rows."""
    lengths = seqs.lengths
    t = max(int(lengths.max()), 1)
    x = torch.from_numpy(gather_padded(seqs.items, seqs.offsets[:-1], lengths, t))
    g = (torch.from_numpy(gather_padded(event_gaps(seqs), seqs.offsets[:-1], lengths, t, -1.0))
         if gaps else None)
    return x, torch.from_numpy(lengths), g


class SequenceModelContract:
    """Mix into a ``Test*`` class and set ``model`` (a key of ``MODELS``)."""

    model: ClassVar[str] = ""
    config: ClassVar[dict[str, Any]] = {"dim": 16}  # small and fast for the unit checks
    learn_config: ClassVar[dict[str, Any]] = {"dim": 32, "dropout": 0.1}
    learn_train: ClassVar[dict[str, Any]] = {"epochs": 40, "lr": 5e-3, "weight_decay": 0.0,
                                             "patience": 5, "valid_filter_seen": False,
                                             "progress": False, "batch_size": 64,
                                             "threads": 1}
    n_items: ClassVar[int] = 12

    def build(self, n_items: int | None = None, **overrides: Any) -> SequenceEncoder:
        torch.manual_seed(0)
        return MODELS[self.model](n_items or self.n_items, {**self.config, **overrides})

    def batch(self, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        items = torch.randint(0, self.n_items, (4, 7), generator=g)  # (B, T)
        return items, torch.tensor([7, 5, 1, 3])

    # -- construction and configuration -------------------------------------------------
    def test_registry_builds_with_defaults(self):
        m = MODELS[self.model](n_items=self.n_items)
        assert m.name == self.model and m.n_items == self.n_items
        assert m.dim == type(m.config)().dim

    def test_config_round_trips_through_a_dict(self):
        m = self.build()
        cfg = type(m.config).from_dict(m.config.to_dict())
        assert cfg == m.config
        assert MODELS[self.model](self.n_items, m.config.to_dict()).config == m.config

    def test_config_rejects_an_unknown_field_by_name(self):
        m = self.build()
        try:
            type(m.config).from_dict({"dimm": 3})
        except ValueError as exc:
            assert "dimm" in str(exc)
        else:
            raise AssertionError("an unknown config field was accepted")

    # -- forward / encode / score ---------------------------------------------------------
    def test_forward_gives_one_vector_per_position(self):
        m = self.build().eval()
        items, lengths = self.batch()
        h = m(items, lengths)
        assert h.shape == (4, 7, m.dim) and h.dtype == torch.float32
        assert torch.isfinite(h).all()

    def test_padding_values_do_not_change_real_positions(self):
        m = self.build().eval()
        items, lengths = self.batch()
        other = items.clone()
        pad = torch.arange(7)[None, :] >= lengths[:, None]
        other[pad] = (other[pad] + 3) % self.n_items
        a, b = m(items, lengths), m(other, lengths)
        torch.testing.assert_close(a, b)
        assert (a[pad] == 0).all()

    def test_no_position_sees_a_later_event(self):
        m = self.build().eval()
        items, lengths = self.batch()
        later = items.clone()
        later[:, 4:] = (later[:, 4:] + 1) % self.n_items
        torch.testing.assert_close(m(items, lengths)[:, :4], m(later, lengths)[:, :4])

    def test_encode_is_the_last_real_position_and_zero_when_empty(self):
        m = self.build().eval()
        items, lengths = self.batch()
        lengths = torch.tensor([7, 5, 0, 3])
        h, u = m(items, lengths), m.encode(items, lengths)
        torch.testing.assert_close(u[[0, 1, 3]], h[[0, 1, 3], [6, 4, 2]])
        assert (u[2] == 0).all()

    def test_score_all_covers_the_catalogue_and_score_agrees(self):
        m = self.build().eval()
        u = torch.randn(3, m.dim)
        s = m.score_all(u)
        assert s.shape == (3, self.n_items)
        ids = torch.tensor([[0, 5], [11, 2], [3, 3]])
        torch.testing.assert_close(m.score(u, ids), s.gather(1, ids))

    def test_every_parameter_learns_from_the_loss(self):
        m = self.build(CYCLE_ITEMS, time_gaps=True, tied=False).train()
        seqs = cycle_sequences(8, seed=3)
        x, lengths, g = padded(seqs, gaps=True)
        h = m(x, lengths, g)
        m.score_all(h[h.abs().sum(-1) > 0]).logsumexp(1).sum().backward()
        silent = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.any()]
        assert not silent, f"parameters without gradient: {silent}"

    # -- optional features ----------------------------------------------------------------
    def test_time_gaps_change_the_output_and_are_required(self):
        m = self.build(time_gaps=True).eval()
        items, lengths = self.batch()
        short, long = torch.full((4, 7), 5.0), torch.full((4, 7), 5e6)
        assert not torch.allclose(m(items, lengths, short), m(items, lengths, long))
        try:
            m(items, lengths)
        except ValueError as exc:
            assert "gaps" in str(exc)
        else:
            raise AssertionError("a time-gap model ran without gaps")

    def test_text_mode_scores_items_with_equal_text_equally(self):
        text = torch.randn(self.n_items, 10)
        text[3] = text[7]
        m = MODELS[self.model](self.n_items, {**self.config, "embedding": "text"},
                               text_vectors=text).eval()
        s = m.score_all(torch.randn(2, m.dim))
        torch.testing.assert_close(s[:, 3], s[:, 7])
        assert m.config.text_dim == 10

    def test_id_plus_text_drops_id_vectors_only_in_training(self):
        text = torch.randn(self.n_items, 10)
        m = MODELS[self.model](self.n_items, {**self.config, "embedding": "id+text",
                                              "id_dropout": 0.5}, text_vectors=text)
        m.eval()
        a, b = m.output_table(), m.output_table()
        torch.testing.assert_close(a, b)
        m.train()
        torch.manual_seed(1)
        assert not torch.allclose(m.output_table(), a)

    # -- training, determinism, persistence ---------------------------------------------
    def test_learns_cycles_to_top1_accuracy_of_at_least_0_9(self):
        split = leave_one_out(cycle_sequences())
        torch.manual_seed(0)
        m = MODELS[self.model](CYCLE_ITEMS, self.learn_config)
        Trainer(TrainConfig(**self.learn_train)).fit(m, split.train, split.valid)
        assert top1_accuracy(m, split.test) >= 0.9

    def test_training_is_deterministic_for_a_seed(self):
        seqs = cycle_sequences(40)
        cfg = TrainConfig(epochs=2, progress=False, seed=7, batch_size=16, threads=1)
        weights = []
        for _ in range(2):
            m = self.build(CYCLE_ITEMS)
            Trainer(cfg).fit(m, seqs)
            weights.append(m.state_dict())
        for k, v in weights[0].items():
            assert torch.equal(v, weights[1][k]), k

    def test_checkpoint_round_trip_gives_the_same_scores(self, tmp_path):
        m = self.build(CYCLE_ITEMS, time_gaps=True)
        seqs = cycle_sequences(30)
        Trainer(TrainConfig(epochs=1, progress=False, threads=1)).fit(m, seqs)
        save_checkpoint(tmp_path / "ckpt", m, train_config=TrainConfig(epochs=1))
        back = load_checkpoint(tmp_path / "ckpt")
        assert type(back.model) is type(m) and back.model.config == m.config
        torch.testing.assert_close(score_sequences(back.model, seqs), score_sequences(m, seqs))


class RecurrentModelContract(SequenceModelContract):
    """Streaming models: ``step`` equals ``forward``; training state equals streamed state."""

    def stream(self, m: SequenceEncoder, items: torch.Tensor, gaps=None) -> torch.Tensor:
        state, out = None, []
        for t in range(items.shape[1]):
            h, state = m.step(state, items[:, t], None if gaps is None else gaps[:, t])
            out.append(h)
        return torch.stack(out, 1)  # (B, T, D)

    def test_recurrent_models_have_a_step(self):
        assert MODELS[self.model].recurrent

    def test_step_by_step_equals_forward(self):
        for extra in ({}, {"layers": 2}, {"time_gaps": True}):
            m = self.build(CYCLE_ITEMS, **extra).eval()
            seqs = cycle_sequences(5, seed=2)
            x, lengths, g = padded(seqs, gaps=True)
            full = m(x, lengths, g if extra.get("time_gaps") else None)
            streamed = self.stream(m, x, g if extra.get("time_gaps") else None)
            mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
            torch.testing.assert_close(streamed[mask], full[mask], atol=1e-5, rtol=0)

    def test_step_with_no_state_starts_a_fresh_user(self):
        m = self.build().eval()
        items = torch.tensor([3, 3])
        h_none, _ = m.step(None, items)
        h_zero, _ = m.step(m.initial_state(2), items)
        torch.testing.assert_close(h_none, h_zero)
        _, state = m.step(None, items)
        h_after, _ = m.step(state, items)
        assert not torch.allclose(h_after, h_none)

    def test_run_returns_each_rows_state_after_its_last_event(self):
        m = self.build(layers=2).eval()
        items, lengths = self.batch()
        _, state = m.run(items, lengths)
        for r in range(4):
            _, alone = m.run(items[r:r + 1, :lengths[r]], lengths[r:r + 1])
            parts = state if isinstance(state, tuple) else (state,)
            alone = alone if isinstance(alone, tuple) else (alone,)
            for s, a in zip(parts, alone, strict=True):
                torch.testing.assert_close(s[:, r:r + 1], a, atol=1e-6, rtol=0)

    def test_truncated_bptt_state_equals_streamed_state(self):
        m = self.build(CYCLE_ITEMS, time_gaps=True).eval()
        seqs = cycle_sequences(6, min_len=9, max_len=23, seed=4)
        batches = TrainBatches(seqs, batch_size=6, windowed=False, max_len=None,
                               with_gaps=True)
        batch = batches.batch(np.arange(6))
        trained = torch.zeros(*batch.inputs.shape, m.dim)
        for chunk in chunk_steps(m, batch, tbptt=4):
            b, t = chunk.hidden.shape[:2]
            trained[:b, chunk.start:chunk.start + t] = chunk.hidden
        streamed = self.stream(m, batch.inputs, batch.gaps)
        mask = torch.arange(batch.inputs.shape[1])[None, :] < batch.lengths[:, None]
        torch.testing.assert_close(trained[mask], streamed[mask], atol=1e-5, rtol=0)
