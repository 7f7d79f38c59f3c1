"""The README's main job: synthetic shop → LSTM → comparison with baselines → three users."""

from __future__ import annotations

import pytest

from prismrec.quickstart import format_result, run
from prismrec.recommender import Recommender


@pytest.mark.slow
def test_quickstart_trains_compares_and_saves(tmp_path):
    result = run(tmp_path / "model", data={"n_users": 300, "n_items": 120},
                 train={"epochs": 3, "threads": 1})
    assert list(result.table["model"]) == ["pop", "itemknn", "ease", "lstm"]
    assert result.table["ndcg@10"].between(0, 1).all()
    assert len(result.examples) == 3
    for ex in result.examples:
        assert len(ex["recommendations"]) == 10
        assert ex["current_interest"] in ex["interests_over_history"]
    loaded = Recommender.load(result.checkpoint)
    assert len(loaded.recommend(result.examples[0]["user"], k=5)) == 5
    text = format_result(result)
    assert "NDCG@10" in text and result.examples[0]["user"] in text
    assert "lstm: ran all 3 epochs" in text  # how training ended is always printed


@pytest.mark.slow
def test_a_quickstart_stopped_by_time_says_so():
    result = run(None, data={"n_users": 200, "n_items": 80},
                 train={"epochs": 50, "patience": 0, "threads": 1, "max_seconds": 1e-6})
    assert "lstm: stopped by time after 1 epochs" in format_result(result)
