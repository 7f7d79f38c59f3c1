"""Cold items: an item with text but no training events is placed from its text (scale x
text projection, mean bias + shift), the pair chosen on validation, at fit, in
``add_items`` and after load."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import torch

from prismrec.data import Dataset, Interactions
from prismrec.errors import CheckpointError
from prismrec.recommender import Recommender, _cold
from prismrec.recommender._cold import ColdPlacement
from prismrec.testing import cycle_catalog, cycle_frame
from prismrec.text import HashingEncoder

torch.set_num_threads(1)

TRAIN = {"epochs": 40, "lr": 5e-3, "weight_decay": 0.0, "progress": False, "threads": 1,
         "valid_filter_seen": False, "batch_size": 64}
ENCODER = HashingEncoder(64)
# i7 follows i9 in the cycle (7, 8, 9): after this history a good model puts i7 first
HISTORY = ["i7", "i8", "i9"]
NEW = pd.DataFrame({"item": ["i7-twin", "stranger"], "title": ["black bicycle", "plain spoon"]})



def fit(embedding: str = "id+text") -> Recommender:
    return Recommender("gru", model_config={"dim": 32, "dropout": 0.1, "embedding": embedding},
                       train_config=TRAIN).fit(cycle_frame(), cycle_catalog(), text=True,
                                               encoder=ENCODER)


@pytest.fixture(scope="module")
def rec() -> Recommender:
    return fit()


def scores(r: Recommender, items: list[str]) -> list[float]:
    top = r.recommend_for_sequence(HISTORY, k=len(r.items_), filter_seen=False)
    return [float(top.set_index("item").loc[i, "score"]) for i in items]


def test_the_placement_is_chosen_on_validation_and_is_the_best_of_its_table(rec):
    p = rec.cold_placement_
    assert p.chosen_on == "validation"
    grid = {(row["scale"], row["shift"]): row["ndcg@10"] for row in p.table}
    assert set(grid) == {(a, b) for a in _cold.SCALES for b in _cold.SHIFTS}
    assert grid[(p.scale, p.shift)] == max(grid.values())
    assert grid[(p.scale, p.shift)] >= grid[(1.0, 0.0)]  # never below the old placement
    bias = rec.model_.out_bias.detach()
    assert p.mean_bias == pytest.approx(float(bias.mean()), abs=1e-6)  # every item trained


def test_an_added_item_is_scale_times_its_text_at_the_mean_bias_plus_shift(rec):
    r = copy.deepcopy(rec)
    r.cold_placement_ = ColdPlacement(1.5, 0.75, rec.cold_placement_.mean_bias, "validation")
    n = len(r.items_)
    assert r.add_items(NEW) == ["i7-twin", "stranger"]
    m = r.model_
    with torch.no_grad():
        text = m.items.proj(torch.from_numpy(ENCODER.encode(["black bicycle", "plain spoon"])))
        torch.testing.assert_close(m.output_table()[n:], 1.5 * text)
        torch.testing.assert_close(m.out_bias[n:], torch.full((2,), rec.cold_placement_.mean_bias
                                                             + 0.75))
    # a larger scale and shift lift the twin of i7 towards i7 after i7's usual history
    plain = copy.deepcopy(rec)
    plain.cold_placement_ = ColdPlacement(1.0, 0.0, rec.cold_placement_.mean_bias)
    plain.add_items(NEW)
    assert scores(r, ["i7-twin"])[0] > scores(plain, ["i7-twin"])[0]


def test_an_item_without_training_events_is_placed_like_an_added_one():
    frame = cycle_frame()
    frame = frame[frame["item"] != "i13"]
    frame = pd.concat([frame, pd.DataFrame({"user": ["solo"] * 3, "item": ["i1", "i2", "i13"],
                                            "timestamp": [1.0, 2.0, 3.0]})])
    ds = Dataset.from_interactions("cycles", Interactions.from_frame(frame), cycle_catalog())
    split = ds.split("loo")
    cold = ds.items.index_of("i13")
    assert cold not in set(split.train.items)
    r = Recommender("gru", model_config={"dim": 32, "dropout": 0.1, "embedding": "id+text"},
                    train_config=TRAIN)
    r.fit_split(split, ds.users, ds.items, ds.catalog, text=True, encoder=ENCODER)
    p, m = r.cold_placement_, r.model_
    trained = torch.ones(len(ds.items), dtype=torch.bool)
    trained[cold] = False
    assert p.mean_bias == pytest.approx(float(m.out_bias.detach()[trained].mean()), abs=1e-6)
    with torch.no_grad():
        text = m.items.proj(m.items.text_vectors[cold + 1])
        torch.testing.assert_close(m.output_table()[cold], p.scale * text)
        assert float(m.out_bias[cold]) == pytest.approx(p.mean_bias + p.shift)


def test_without_validation_cases_the_old_placement_is_kept():
    r = Recommender("gru", model_config={"dim": 16, "embedding": "id+text"},
                    train_config={**TRAIN, "epochs": 2}).fit(
        cycle_frame(60), cycle_catalog(), text=True, encoder=ENCODER, valid=False)
    assert (r.cold_placement_.scale, r.cold_placement_.shift) == (1.0, 0.0)
    assert r.cold_placement_.chosen_on == "default" and r.cold_placement_.table == []
    n = len(r.items_)
    r.add_items(NEW)
    assert torch.equal(r.model_.items.id.weight[n + 1], torch.zeros(16))


def test_the_placement_survives_save_and_load(rec, tmp_path):
    back = Recommender.load(rec.save(tmp_path / "ck"))
    assert back.cold_placement_ == rec.cold_placement_
    r = copy.deepcopy(rec)
    r.add_items(NEW)
    back.add_items(NEW)
    torch.testing.assert_close(back.model_.items.id.weight, r.model_.items.id.weight)
    torch.testing.assert_close(back.model_.out_bias, r.model_.out_bias)


def test_a_checkpoint_from_before_the_placement_loads_and_adds_items_as_before(rec, tmp_path):
    path = rec.save(tmp_path / "old")
    doc = json.loads((path / "checkpoint.json").read_text())
    doc["meta"].pop("cold_placement")
    (path / "checkpoint.json").write_text(json.dumps(doc))
    back = Recommender.load(path)
    assert back.cold_placement_ is None
    pd.testing.assert_frame_equal(back.recommend("u1"), rec.recommend("u1"))
    n = len(back.items_)
    back.add_items(NEW)
    assert torch.equal(back.model_.items.id.weight[n + 1], torch.zeros(32))
    assert float(back.model_.out_bias[n].detach()) == pytest.approx(
        float(rec.model_.out_bias.detach().mean()))


def test_a_damaged_placement_is_refused(rec, tmp_path):
    path = rec.save(tmp_path / "bad")
    doc = json.loads((path / "checkpoint.json").read_text())
    doc["meta"]["cold_placement"]["scale"] = -1.0
    (path / "checkpoint.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="cold-item placement"):
        Recommender.load(path)
