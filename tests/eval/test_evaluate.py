"""evaluate(): full ranking, seen-item filtering, leakage, batching, coverage/novelty, Report."""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest

import prismrec.eval
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, leave_one_out
from prismrec.errors import DataError
from prismrec.eval import Report, evaluate, select_on_validation

# the package re-exports the function evaluate(), which hides the module of the same name
evaluate_module = importlib.import_module("prismrec.eval.evaluate")


class FixedScorer:
    """Returns a given score row per user index."""

    def __init__(self, table) -> None:
        self.table = np.asarray(table, dtype=np.float32)

    def score(self, users: np.ndarray, histories: Sequences) -> np.ndarray:
        return self.table[users]


class ConstantScorer:
    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def score(self, users: np.ndarray, histories: Sequences) -> np.ndarray:
        return np.zeros((len(users), self.n_items), dtype=np.float32)


class RecordingScorer(ConstantScorer):
    """Remembers every history it was shown, per user."""

    def __init__(self, n_items: int) -> None:
        super().__init__(n_items)
        self.seen: dict[int, list[int]] = {}
        self.batch_sizes: list[int] = []

    def score(self, users, histories):
        self.batch_sizes.append(len(users))
        for u, row in zip(users, histories.to_lists(), strict=True):
            self.seen[int(u)] = row
        return super().score(users, histories)


def cases(histories, targets, users=None) -> EvalCases:
    users = np.arange(len(histories)) if users is None else np.asarray(users)
    return EvalCases(users, Sequences.from_lists(histories), Sequences.from_lists(targets))


def test_hand_computed_metrics_through_evaluate():
    scorer = FixedScorer([[0.9, 0.1, 0.5, 0.7, 0.3]])
    report = evaluate(scorer, cases([[4]], [[2]]), ks=(2, 10), n_bootstrap=0)
    # item 4 is seen and filtered; ranking 0, 3, 2, 1: target 2 at rank 3
    assert report.metrics["ndcg@10"] == pytest.approx(1 / math.log2(4))
    assert report.metrics["mrr@10"] == pytest.approx(1 / 3)
    assert report.metrics["hr@2"] == 0.0
    assert report.per_user["rank"].tolist() == [3.0]


def test_constant_scorer_ranks_target_behind_every_unseen_item():
    c = cases([[0, 1]], [[2]])
    kept = evaluate(ConstantScorer(10), c, ks=(9, 10), filter_seen=False, n_bootstrap=0)
    assert kept.per_user["rank"].tolist() == [10.0]
    assert kept.metrics["hr@9"] == 0.0 and kept.metrics["hr@10"] == 1.0
    filtered = evaluate(ConstantScorer(10), c, ks=(10,), n_bootstrap=0)
    assert filtered.per_user["rank"].tolist() == [8.0]  # the two seen items drop below


def test_seen_target_is_a_miss_only_when_filtering():
    scorer = FixedScorer([[0.0, 5.0, 1.0]])  # the target (item 1) scores highest
    c = cases([[1]], [[1]])  # ... but the user already had it
    assert evaluate(scorer, c, ks=(1,), filter_seen=False, n_bootstrap=0)["hr@1"] == 1.0
    filtered = evaluate(scorer, c, ks=(1, 3), n_bootstrap=0)
    assert filtered["hr@3"] == 0.0
    assert filtered.per_user["rank"].tolist() == [math.inf]


def test_scorer_never_sees_the_target_or_anything_after_it():
    seqs = Sequences.from_lists([[0, 1, 2, 3, 4], [5, 6, 7], [8, 9, 10, 11]])
    split = leave_one_out(seqs)
    scorer = RecordingScorer(12)
    evaluate(scorer, split.test, n_bootstrap=0)
    assert scorer.seen == {0: [0, 1, 2, 3], 1: [5, 6], 2: [8, 9, 10]}
    scorer = RecordingScorer(12)
    evaluate(scorer, split.valid, n_bootstrap=0)
    assert scorer.seen == {0: [0, 1, 2], 1: [5], 2: [8, 9]}


def test_batches_stay_under_the_float_budget(monkeypatch):
    monkeypatch.setattr(evaluate_module, "MAX_BATCH_FLOATS", 30)
    scorer = RecordingScorer(10)
    c = cases([[i % 10] for i in range(25)], [[(i + 1) % 10] for i in range(25)])
    evaluate(scorer, c, batch_size=100, n_bootstrap=0)
    assert max(scorer.batch_sizes) * 10 <= 30
    assert sum(scorer.batch_sizes) == 25


def test_results_do_not_depend_on_batch_size():
    rng = np.random.default_rng(0)
    table = rng.integers(0, 4, size=(40, 15)).astype(np.float32)  # many ties
    hist = [rng.choice(15, size=rng.integers(1, 5), replace=False).tolist() for _ in range(40)]
    tgt = [rng.choice(15, size=rng.integers(1, 4)).tolist() for _ in range(40)]
    pop = rng.integers(0, 9, size=15)
    kw = dict(ks=(1, 5), item_popularity=pop, n_bootstrap=50)
    one = evaluate(FixedScorer(table), cases(hist, tgt), batch_size=1, **kw)
    big = evaluate(FixedScorer(table), cases(hist, tgt), batch_size=64, **kw)
    pd.testing.assert_frame_equal(one.per_user, big.per_user)
    assert one.metrics == big.metrics and one.ci == big.ci


def test_coverage_and_novelty_by_hand():
    scorer = FixedScorer([[4, 3, 2, 1], [1, 2, 4, 3], [4, 1, 2, 3]])
    c = cases([[3], [3], [3]], [[0], [0], [0]])
    pop = np.array([4, 2, 1, 1])  # shares 1/2, 1/4, 1/8, 1/8 -> information 1, 2, 3, 3 bits
    report = evaluate(scorer, c, ks=(1, 2), item_popularity=pop, n_bootstrap=0)
    # top-1 lists: 0, 2, 0; top-2 lists: {0, 1}, {2, 1}, {0, 2}  (item 3 is seen everywhere)
    assert report["coverage@1"] == pytest.approx(2 / 4)
    assert report["coverage@2"] == pytest.approx(3 / 4)
    assert report["novelty@1"] == pytest.approx((1 + 3 + 1) / 3)
    assert report["novelty@2"] == pytest.approx((1.5 + 2.5 + 2.0) / 3)
    assert "novelty@1" not in evaluate(scorer, c, ks=(1,), n_bootstrap=0).metrics


def test_several_targets_per_case():
    scorer = FixedScorer([[5, 4, 3, 2, 1, 0]])
    report = evaluate(scorer, cases([[5]], [[3, 1, 1]]), ks=(3,), n_bootstrap=0)
    # targets 1 and 3 at ranks 2 and 4
    assert report["recall@3"] == 0.5
    assert report["hr@3"] == 1.0
    assert report["ndcg@3"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert report.per_user["n_targets"].tolist() == [2]


def test_report_shapes_and_json():
    rng = np.random.default_rng(1)
    table = rng.random((30, 8)).astype(np.float32)
    c = cases([[int(i % 8)] for i in range(30)], [[int((i + 3) % 8)] for i in range(30)])
    report = evaluate(FixedScorer(table), c, ks=(5, 3), n_bootstrap=200, seed=4)
    assert isinstance(report, Report)
    assert report.n_cases == 30 and report.ks == (3, 5)
    assert list(report.per_user.columns[:3]) == ["user", "n_targets", "rank"]
    assert len(report.per_user) == 30
    assert report["ndcg@5"] == pytest.approx(report.per_user["ndcg@5"].mean())
    lo, hi = report.ci["ndcg@5"]
    assert lo <= report["ndcg@5"] <= hi
    assert "coverage@5" not in report.ci
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["filter_seen"] is True and data["n_cases"] == 30
    assert data["metrics"]["hr@3"] == pytest.approx(report["hr@3"])
    t = report.table()
    assert list(t.columns) == ["metric", "mean", "ci_low", "ci_high"]
    by_name = t.set_index("metric")
    assert pd.isna(by_name.loc["coverage@3", "ci_low"])  # catalogue-level: no interval
    assert by_name.loc["ndcg@5", "ci_high"] == hi
    assert "ndcg@3" in str(report) and "seen filtered" in str(report)
    again = evaluate(FixedScorer(table), c, ks=(5, 3), n_bootstrap=200, seed=4)
    assert again.ci == report.ci


def test_bad_scorer_output_is_reported():
    c = cases([[0]], [[1]])
    with pytest.raises(TypeError, match="score"):
        evaluate(np.zeros((1, 3)), c)  # not a scorer at all

    class Flat(ConstantScorer):
        def score(self, users, histories):
            return np.zeros(self.n_items)

    with pytest.raises(DataError, match="shape"):
        evaluate(Flat(3), c)
    with pytest.raises(DataError, match="NaN"):
        evaluate(FixedScorer([[np.nan, 1.0, 2.0]]), c, n_bootstrap=0)
    with pytest.raises(DataError, match="target items"):
        evaluate(FixedScorer([[1.0, 2.0]]), cases([[0]], [[5]]), n_bootstrap=0)
    with pytest.raises(ValueError, match="ks"):
        evaluate(FixedScorer([[1.0, 2.0]]), c, ks=(0,))


def test_select_on_validation_keeps_the_best_grid_value():
    n = 6
    good = np.eye(n, k=1, dtype=np.float32)  # scores item i+1 for user i

    class Shifted:
        def __init__(self, shift: int) -> None:
            self.shift = shift

        def fit(self, train, n_items):
            self.table_ = np.roll(good, self.shift, axis=1)
            return self

        def score(self, users, histories):
            return self.table_[users]

    c = cases([[i] for i in range(n - 1)], [[i + 1] for i in range(n - 1)])
    best, model, table = select_on_validation(Shifted, [2, 0, 1], Sequences.from_lists([[0]]),
                                              c, n, metric="hr@1")
    assert best == 0 and model.shift == 0
    assert table["hr@1"].tolist() == [0.0, 1.0, 0.0]


def test_public_surface():
    for name in prismrec.eval.__all__:
        assert getattr(prismrec.eval, name) is not None
    assert {"evaluate", "Report", "Scorer", "BASELINES", "EASE", "ItemKNN", "MostPopular",
            "tune_ease", "select_on_validation"} <= set(prismrec.eval.__all__)
