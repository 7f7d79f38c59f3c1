"""Cold items: an item with text but no training events takes the ID row and bias its text
predicts (a ridge map fitted on the trained items), at fit, in ``add_items`` and after load."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prismrec.data import Catalog, Dataset, Interactions
from prismrec.errors import CheckpointError
from prismrec.recommender import Recommender, _cold
from prismrec.recommender._cold import LAMBDAS, _loo_lambda, fit_cold_map
from prismrec.testing import cycle_sequences
from prismrec.text import HashingEncoder

torch.set_num_threads(1)

TRAIN = {"epochs": 40, "lr": 5e-3, "weight_decay": 0.0, "progress": False, "threads": 1,
         "valid_filter_seen": False, "batch_size": 64}
ENCODER = HashingEncoder(64)
COLOURS = ["red", "blue", "green", "amber", "violet", "silver", "golden", "black", "white",
           "orange", "teal", "crimson", "ivory", "olive"]
THINGS = ["lamp", "kettle", "scarf", "teapot", "lantern", "blanket", "mirror", "bicycle",
          "saddle", "compass", "telescope", "harmonica", "notebook", "umbrella"]
# i7 follows i9 in the cycle (7, 8, 9): after this history a good model puts i7 first
HISTORY = ["i7", "i8", "i9"]
NEW = pd.DataFrame({"item": ["i7-twin", "stranger"], "title": ["black bicycle", "plain spoon"]})


def cycle_frame(n_users: int = 200) -> pd.DataFrame:
    seqs = cycle_sequences(n_users)
    return pd.DataFrame({"user": [f"u{r}" for r in seqs.row_ids()],
                         "item": [f"i{i}" for i in seqs.items], "timestamp": seqs.times})


def catalog() -> Catalog:
    return Catalog.from_frame(pd.DataFrame(
        {"item": [f"i{i}" for i in range(14)],
         "title": [f"{COLOURS[i]} {THINGS[i]}" for i in range(14)]}))


def fit(embedding: str = "id+text") -> Recommender:
    return Recommender("gru", model_config={"dim": 32, "dropout": 0.1, "embedding": embedding},
                       train_config=TRAIN).fit(cycle_frame(), catalog(), text=True,
                                               encoder=ENCODER)


@pytest.fixture(scope="module")
def rec() -> Recommender:
    return fit()


def scores(r: Recommender, items: list[str]) -> list[float]:
    top = r.recommend_for_sequence(HISTORY, k=len(r.items_), filter_seen=False)
    return [float(top.set_index("item").loc[i, "score"]) for i in items]


def test_an_added_item_scores_like_the_trained_item_with_its_text(rec):
    r = copy.deepcopy(rec)
    assert r.cold_map_ is not None and r.cold_map_.n_items == 14
    assert r.add_items(NEW) == ["i7-twin", "stranger"]
    i7, twin, stranger = scores(r, ["i7", "i7-twin", "stranger"])
    assert twin > 0.9 * i7 and stranger < 0.5 * i7
    top = r.recommend_for_sequence(HISTORY, k=2, filter_seen=False)
    assert list(top["item"]) == ["i7", "i7-twin"]
    emb, n = r.model_.items, len(rec.items_)
    rows = emb.id.weight.detach()  # model row = index + 1
    cos = torch.cosine_similarity(rows[n + 1], rows[rec.items_.index_of("i7") + 1], dim=0)
    assert float(cos) > 0.95
    # teeth: the same model placing the twin with a zero ID row and the mean bias (the old
    # behaviour) leaves it far below i7
    old = copy.deepcopy(rec)
    old.cold_map_ = None
    old.add_items(NEW)
    assert torch.equal(old.model_.items.id.weight[n + 1], torch.zeros(32))
    assert float(old.model_.out_bias[n].detach()) == pytest.approx(
        float(rec.model_.out_bias.detach().mean()))
    assert scores(old, ["i7-twin"])[0] < 0.7 * i7


def test_an_item_without_training_events_is_placed_from_its_text():
    # i13 is only a test target, and its text is i7's: it should score like i7
    frame = cycle_frame()
    frame = frame[frame["item"] != "i13"]
    frame = pd.concat([frame, pd.DataFrame({"user": ["solo"] * 3, "item": ["i1", "i2", "i13"],
                                            "timestamp": [1.0, 2.0, 3.0]})])
    rows = catalog().frame.copy()
    rows.loc["i13", "title"] = rows.loc["i7", "title"]
    ds = Dataset.from_interactions("cycles", Interactions.from_frame(frame), Catalog(rows))
    split = ds.split("loo")
    cold = ds.items.index_of("i13")
    assert cold not in set(split.train.items)
    r = Recommender("gru", model_config={"dim": 32, "dropout": 0.1, "embedding": "id+text"},
                    train_config=TRAIN)
    r.fit_split(split, ds.users, ds.items, ds.catalog, text=True, encoder=ENCODER)
    i7, twin = scores(r, ["i7", "i13"])
    assert twin > 0.9 * i7
    assert r.cold_map_.n_items == 13  # fitted on the trained items only
    trained = torch.ones(len(ds.items), dtype=torch.bool)
    trained[cold] = False
    rows_, bias = r.cold_map_.predict(r.model_.items.text_vectors[cold + 1][None])
    torch.testing.assert_close(r.model_.items.id.weight[cold + 1].detach(), rows_[0])
    assert float(r.model_.out_bias[cold].detach()) == pytest.approx(float(bias[0]))


def test_a_text_only_model_takes_the_bias_its_text_predicts():
    r = fit("text")
    assert r.cold_map_.id_dim == 0 and r.cold_map_.lam_id is None
    r.add_items(NEW)
    _, bias = r.cold_map_.predict(torch.from_numpy(ENCODER.encode(["black bicycle"])))
    n = r.model_.n_items - 2
    b = r.model_.out_bias.detach()
    assert float(b[n]) == pytest.approx(float(bias[0]), abs=1e-6)
    assert float(b[n]) == pytest.approx(float(b[r.items_.index_of("i7")]), abs=0.05)


def test_the_map_survives_save_and_load(rec, tmp_path):
    back = Recommender.load(rec.save(tmp_path / "ck"))
    for k, v in rec.cold_map_.to_tensors().items():
        torch.testing.assert_close(back.cold_map_.to_tensors()[k], v)
    assert back.cold_map_.to_meta() == rec.cold_map_.to_meta()
    r = copy.deepcopy(rec)
    r.add_items(NEW)
    back.add_items(NEW)
    torch.testing.assert_close(back.model_.items.id.weight, r.model_.items.id.weight)
    torch.testing.assert_close(back.model_.out_bias, r.model_.out_bias)


def test_a_checkpoint_from_before_the_map_loads_and_adds_items_as_before(rec, tmp_path):
    path = rec.save(tmp_path / "old")
    doc = json.loads((path / "checkpoint.json").read_text())
    doc["meta"].pop("cold_map")  # the map's tensors stay: extra tensors nobody reads
    (path / "checkpoint.json").write_text(json.dumps(doc))
    back = Recommender.load(path)
    assert back.cold_map_ is None
    pd.testing.assert_frame_equal(back.recommend("u1"), rec.recommend("u1"))
    n = len(back.items_)
    back.add_items(NEW)
    assert torch.equal(back.model_.items.id.weight[n + 1], torch.zeros(32))


def test_a_damaged_map_is_refused(rec, tmp_path):
    path = rec.save(tmp_path / "bad")
    doc = json.loads((path / "checkpoint.json").read_text())
    doc["meta"]["cold_map"]["id_dim"] = 7
    (path / "checkpoint.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="cold-item map"):
        Recommender.load(path)


def test_too_few_trained_items_give_no_map_and_many_are_sampled(rec, monkeypatch):
    m = copy.deepcopy(rec.model_)
    trained = torch.zeros(m.n_items, dtype=torch.bool)
    trained[:9] = True
    assert fit_cold_map(m, trained) is None
    trained[:10] = True
    assert fit_cold_map(m, trained).n_items == 10
    monkeypatch.setattr(_cold, "MAX_ITEMS", 11)
    trained[:] = True
    assert fit_cold_map(m, trained).n_items == 11


@settings(max_examples=25, deadline=None)
@given(st.integers(12, 30), st.integers(2, 8), st.integers(0, 2**31 - 1))
def test_the_closed_form_leave_one_out_picks_what_refitting_picks(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x @ torch.randn(d, 3, generator=g, dtype=torch.float64) + torch.randn(
        n, 3, generator=g, dtype=torch.float64)
    x, y = x - x.mean(0), y - y.mean(0)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)

    def brute(lam: float) -> float:  # refit without row i, predict row i (no intercept)
        err = 0.0
        for i in range(n):
            keep = torch.arange(n) != i
            w = torch.linalg.solve(x[keep].T @ x[keep] + lam * torch.eye(d, dtype=x.dtype),
                                   x[keep].T @ y[keep])
            err += float(((x[i] @ w - y[i]) ** 2).sum())
        return err

    errs = [brute(lam) for lam in LAMBDAS]
    picked = _loo_lambda(u, s, y, LAMBDAS)
    assert errs[LAMBDAS.index(picked)] == pytest.approx(min(errs), rel=1e-6)
