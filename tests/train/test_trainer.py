"""The shared training loop: configs, batching, losses, early stopping, monitoring."""

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from prismrec.data import Sequences, leave_one_out
from prismrec.errors import DataError
from prismrec.models import MODELS
from prismrec.testing import CYCLE_ITEMS, cycle_sequences, top1_accuracy
from prismrec.train import (
    TrainBatches,
    TrainConfig,
    Trainer,
    event_gaps,
    rank_metrics,
    score_sequences,
)
from prismrec.train.batching import recent_inputs
from prismrec.train.losses import SampledSoftmax, full_ce

FAST = {"progress": False, "threads": 1}


def small(name="gru", **cfg):
    torch.manual_seed(0)
    return MODELS[name](CYCLE_ITEMS, {"dim": 16, **cfg})


def test_train_config_round_trips_and_names_unknown_fields():
    c = TrainConfig(lr=3e-3, loss="sampled", max_len=20)
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="epoch"):
        TrainConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize("bad", [{"loss": "bpr"}, {"negatives": "hard"}, {"batch_size": 0},
                                 {"lr": 0.0}, {"valid_metric": "mrr@10"},
                                 {"exclude_seen": -1}, {"loss": "sampled", "exclude_seen": 5}])
def test_train_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        Trainer(TrainConfig(**bad))


def test_event_gaps_are_seconds_since_the_previous_event_of_the_same_user():
    seqs = Sequences.from_lists([[1, 2, 3], [], [4, 5]], [[10, 15, 115], [], [7, 7]])
    np.testing.assert_array_equal(event_gaps(seqs), [-1, 5, 100, -1, 0])


def test_recurrent_samples_are_whole_histories_with_next_item_targets():
    seqs = Sequences.from_lists([[1, 2, 3, 4], [5], [6, 7]])
    b = TrainBatches(seqs, batch_size=8, windowed=False, max_len=None)
    batch = b.batch(np.arange(len(b.starts)))
    assert batch.inputs.tolist() == [[1, 2, 3], [6, 0, 0]]
    assert batch.targets.tolist() == [[2, 3, 4], [7, 0, 0]]
    assert batch.lengths.tolist() == [3, 1]


def test_windows_count_back_from_the_end_of_each_history():
    seqs = Sequences.from_lists([list(range(10))])
    last = TrainBatches(seqs, batch_size=8, windowed=True, max_len=4, max_windows=1)
    assert last.batch(np.arange(1)).inputs.tolist() == [[5, 6, 7, 8]]
    every = TrainBatches(seqs, batch_size=8, windowed=True, max_len=4, max_windows=0)
    batch = every.batch(np.arange(3))
    assert batch.inputs.tolist() == [[5, 6, 7, 8], [1, 2, 3, 4], [0, 0, 0, 0]]
    assert batch.targets[2, 0].item() == 1 and batch.lengths.tolist() == [4, 4, 1]
    assert every.n_events == 9


def test_future_targets_are_the_next_k_items_within_the_users_history():
    seqs = Sequences.from_lists([list(range(6)), [10, 11]])
    b = TrainBatches(seqs, batch_size=8, windowed=True, max_len=3, max_windows=0, future=2)
    batch = b.batch(np.arange(len(b.starts)))
    assert batch.inputs.tolist() == [[2, 3, 4], [0, 1, 0], [10, 0, 0]]
    assert batch.targets[0].tolist() == [[3, 4], [4, 5], [5, -1]]
    assert batch.targets[1, :2].tolist() == [[1, 2], [2, 3]]  # beyond the window, same user
    assert batch.targets[2, 0].tolist() == [11, -1]


def test_multi_target_loss_is_the_weighted_cross_entropy_of_each_target():
    m = small()
    h = torch.randn(5, 16)
    y = torch.tensor([[1, 2], [3, -1], [4, 5], [6, 7], [0, -1]])
    logp = torch.log_softmax(m.score_all(h), 1)

    def expected(r):  # weights 1 and 0.5, normalised; a row with one target has weight 1
        if y[r, 1] < 0:
            return -logp[r, y[r, 0]]
        return -(2 / 3 * logp[r, y[r, 0]] + 1 / 3 * logp[r, y[r, 1]])

    expect = [expected(r) for r in range(5)]
    torch.testing.assert_close(full_ce(m, h, y, decay=0.5), torch.stack(expect).mean())
    with torch.no_grad():
        torch.testing.assert_close(full_ce(m, h, y, decay=0.5), torch.stack(expect).mean())


def test_batches_are_a_shuffled_partition_of_the_samples():
    seqs = cycle_sequences(50)
    b = TrainBatches(seqs, batch_size=8, windowed=False, max_len=None)
    order = b.order(np.random.default_rng(0))
    assert sorted(np.concatenate(order).tolist()) == list(range(50))
    assert not np.array_equal(np.concatenate(order), np.arange(50))


def test_fused_full_softmax_equals_plain_cross_entropy_in_value_and_gradient():
    m = small(tied=False)
    h = torch.randn(300, 16, requires_grad=True)
    y = torch.randint(0, CYCLE_ITEMS, (300,))
    ref = F.cross_entropy(m.score_all(h), y)
    g_ref = torch.autograd.grad(ref, [h, m.out_table, m.out_bias])
    got = full_ce(m, h, y)
    g_got = torch.autograd.grad(got, [h, m.out_table, m.out_bias])
    torch.testing.assert_close(got, ref)
    for a, b in zip(g_got, g_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_excluded_items_leave_the_softmax_but_the_target_never_does():
    m = small(tied=False)
    h = torch.randn(40, 16, requires_grad=True)
    y = torch.randint(0, CYCLE_ITEMS, (40,))
    exclude = torch.stack([(y + 1) % CYCLE_ITEMS, (y + 2) % CYCLE_ITEMS, y,
                           torch.full_like(y, -1)], dim=1)  # (40, 4): two items, target, pad
    logits = m.score_all(h)
    masked = logits.scatter(1, exclude[:, :2], -torch.inf)
    ref = F.cross_entropy(masked, y)
    g_ref = torch.autograd.grad(ref, [h, m.out_table, m.out_bias])
    got = full_ce(m, h, y, exclude=exclude)  # fused path
    g_got = torch.autograd.grad(got, [h, m.out_table, m.out_bias])
    torch.testing.assert_close(got, ref)
    for a, b in zip(g_got, g_ref, strict=True):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        torch.testing.assert_close(full_ce(m, h, y, exclude=exclude), ref)
    assert got < full_ce(m, h, y)  # fewer competitors, lower loss


def test_recent_inputs_window_each_position_over_its_own_past():
    x = torch.tensor([[5, 6, 7]])
    assert recent_inputs(x, 2).tolist() == [[[-1, 5], [5, 6], [6, 7]]]


def test_sampled_softmax_never_counts_the_target_as_its_own_negative():
    m = small()
    loss = SampledSoftmax(np.ones(CYCLE_ITEMS), 4, "in-batch", torch.Generator())
    y = torch.full((6,), 3)  # every negative is an accidental hit
    value = loss(m, torch.randn(6, 16), y)
    assert value.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("negatives", ["popularity", "uniform", "in-batch"])
def test_sampled_softmax_learns_cycles(negatives):
    split = leave_one_out(cycle_sequences())
    m = small("gru", dim=32, dropout=0.1)
    cfg = TrainConfig(loss="sampled", negatives=negatives, n_negatives=8, epochs=40, lr=5e-3,
                      weight_decay=0.0, valid_filter_seen=False, batch_size=64, patience=5,
                      **FAST)
    Trainer(cfg).fit(m, split.train, split.valid)
    assert top1_accuracy(m, split.test) >= 0.9


def test_training_rejects_items_outside_the_model_catalogue():
    seqs = Sequences.from_lists([[0, 1, CYCLE_ITEMS]])
    with pytest.raises(DataError, match="indices"):
        Trainer(TrainConfig(**FAST)).fit(small(), seqs)


def test_early_stopping_keeps_the_best_epoch_weights():
    split = leave_one_out(cycle_sequences(120))
    m = small("sasrec")
    result = Trainer(TrainConfig(epochs=12, patience=3, lr=3e-2, **FAST)).fit(
        m, split.train, split.valid)
    assert result.best_metrics == rank_metrics(m, split.valid)
    best = max(r["valid_ndcg@10"] for r in result.history)
    assert result.best_metrics["ndcg@10"] == best
    assert result.history[result.best_epoch - 1]["valid_ndcg@10"] == best


def test_patience_stops_training_when_validation_stops_improving():
    split = leave_one_out(cycle_sequences(60))
    cfg = TrainConfig(epochs=50, patience=2, lr=1e-12, weight_decay=0.0, **FAST)
    result = Trainer(cfg).fit(small(), split.train, split.valid)
    assert result.stopped == "patience" and result.epochs == 3 and result.best_epoch == 1


def test_learning_rate_steps_down_when_validation_stalls():
    split = leave_one_out(cycle_sequences(60))
    cfg = TrainConfig(epochs=5, patience=0, lr=1e-12, weight_decay=0.0, lr_decay=0.5,
                      lr_patience=2, **FAST)
    result = Trainer(cfg).fit(small(), split.train, split.valid)
    assert [r["lr"] for r in result.history] == [1e-12, 1e-12, 1e-12, 5e-13, 5e-13]


def test_time_budget_stops_training():
    cfg = TrainConfig(epochs=1000, max_seconds=0.0, **FAST)
    result = Trainer(cfg).fit(small(), cycle_sequences(30))
    assert result.stopped == "time" and result.epochs == 1


def test_each_epoch_logs_one_summary_line(caplog):
    split = leave_one_out(cycle_sequences(40))
    with caplog.at_level(logging.INFO, logger="prismrec.train.trainer"):
        Trainer(TrainConfig(epochs=2, patience=0, **FAST)).fit(small(), split.train, split.valid)
    lines = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert len(lines) == 2 and "loss" in lines[0] and "ndcg@10" in lines[0]


def test_tensorboard_logs_loss_validation_and_learning_rate(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    split = leave_one_out(cycle_sequences(40))
    Trainer(TrainConfig(epochs=2, patience=0, **FAST), log_dir=tmp_path).fit(
        small(), split.train, split.valid)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "valid/ndcg@10", "valid/hr@10"} <= tags
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]


def test_progress_bar_goes_to_stderr_and_can_be_disabled(capsys):
    seqs = cycle_sequences(20)
    Trainer(TrainConfig(epochs=1, progress=True, threads=1)).fit(small(), seqs)
    assert "epoch 1" in capsys.readouterr().err
    Trainer(TrainConfig(epochs=1, **FAST)).fit(small(), seqs)
    assert capsys.readouterr().err == ""


def test_validation_metrics_are_hand_computable_full_ranking():
    split = leave_one_out(cycle_sequences(30, seed=5))
    m = small("lstm")
    scores = score_sequences(m, split.valid.history).numpy()
    ndcg, hit = [], []
    for r in range(len(split.valid)):
        s = scores[r].copy()
        s[split.valid.history.row(r)] = -np.inf
        target = split.valid.targets.row(r)[0]
        rank = int((s >= s[target]).sum()) if np.isfinite(s[target]) else 10**9
        ndcg.append(1 / np.log2(rank + 1) if rank <= 10 else 0.0)
        hit.append(rank <= 10)
    got = rank_metrics(m, split.valid, k=10, filter_seen=True)
    assert got["ndcg@10"] == pytest.approx(np.mean(ndcg))
    assert got["hr@10"] == pytest.approx(np.mean(hit))


def test_validation_agrees_with_the_evaluation_package():
    evaluate = pytest.importorskip("prismrec.eval.evaluate").evaluate

    class Scorer:
        def score(self, users, histories):
            return score_sequences(m, histories).numpy()

    split = leave_one_out(cycle_sequences(50, seed=6))
    m = small("sasrec")
    for filt in (True, False):
        report = evaluate(Scorer(), split.test, ks=(10,), filter_seen=filt, n_bootstrap=0)
        ours = rank_metrics(m, split.test, filter_seen=filt)
        assert ours["ndcg@10"] == pytest.approx(report.metrics["ndcg@10"])
        assert ours["hr@10"] == pytest.approx(report.metrics["hr@10"])


def test_auto_loss_is_the_full_softmax_up_to_the_documented_size_and_sampled_above():
    from prismrec.train.config import SAMPLED_ABOVE

    auto = TrainConfig()
    assert auto.loss == "auto"
    assert auto.loss_for(SAMPLED_ABOVE) == "ce" and auto.loss_for(SAMPLED_ABOVE + 1) == "sampled"
    assert TrainConfig(loss="ce").loss_for(10 * SAMPLED_ABOVE) == "ce"
    assert TrainConfig(exclude_seen=5).loss_for(10 * SAMPLED_ABOVE) == "ce"  # a ce-only option
    rows = [[i % (SAMPLED_ABOVE + 1) for i in range(u * 7, u * 7 + 8)] for u in range(40)]
    seqs = Sequences.from_lists(rows)
    for n_items, want in ((SAMPLED_ABOVE, "ce"), (SAMPLED_ABOVE + 1, "sampled")):
        net = MODELS["gru"](n_items, {"dim": 8})
        result = Trainer(TrainConfig(epochs=1, n_negatives=16, **FAST)).fit(
            net, seqs.mask(seqs.items < n_items))
        assert result.loss == want
