"""Recommender(blend=...): sequence scores mixed with EASE item-item scores on every path."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from prismrec.data import Catalog, Dataset, Interactions, leave_one_out
from prismrec.errors import CheckpointError
from prismrec.eval.baselines import EASE
from prismrec.eval.evaluate import evaluate
from prismrec.models.item_item import MAX_ITEMS, ItemItem, gram_matrix, text_gram
from prismrec.profile import Event, open_store
from prismrec.profile.live import LiveProfiles
from prismrec.recommender import BlendConfig, Recommender
from prismrec.text import HashingEncoder

torch.set_num_threads(1)

TRAIN = {"epochs": 10, "lr": 1e-2, "progress": False, "threads": 1, "batch_size": 64}
STAGES, VARIANTS = 12, 10
N_ITEMS = STAGES * VARIANTS


def taste_frame(n_users: int = 300, seed: int = 0) -> pd.DataFrame:
    """Item ``i = stage * VARIANTS + variant``. Each user walks the stages in order from a
    random start (sequential signal: the next stage follows from the last item) and at each
    stage picks one of their two favourite variants (co-occurrence signal: the variants
    show only across the whole history). Each part alone knows half of the answer."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        taste = rng.choice(VARIANTS, 2, replace=False)
        start = rng.integers(STAGES)
        for t in range(rng.integers(6, 12)):
            item = ((start + t) % STAGES) * VARIANTS + rng.choice(taste)
            rows.append((f"u{u}", f"i{item}", 1.7e9 + 60.0 * t))
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


def taste_catalog() -> Catalog:
    frame = pd.DataFrame({"item": [f"i{i}" for i in range(N_ITEMS)],
                          "title": [f"stage {i // VARIANTS} variant {i % VARIANTS}"
                                    for i in range(N_ITEMS)]})
    return Catalog.from_frame(frame)


@pytest.fixture(scope="module")
def data():
    ds = Dataset.from_interactions("taste", Interactions.from_frame(taste_frame()),
                                   taste_catalog())
    return ds, leave_one_out(ds.sequences)


@pytest.fixture(scope="module")
def rec(data) -> Recommender:
    ds, split = data
    return Recommender("gru", model_config={"dim": 32}, train_config=TRAIN,
                       blend=True).fit_split(split, ds.users, ds.items, ds.catalog, text=True,
                                             encoder=HashingEncoder(32))


def sequence_only(rec: Recommender) -> Recommender:
    alone = copy.copy(rec)
    alone.item_item_ = None
    return alone


def ndcg(scorer, cases) -> float:
    return evaluate(scorer, cases, ks=(10,), n_bootstrap=0).metrics["ndcg@10"]


def test_the_blend_is_chosen_on_validation_and_the_table_is_the_evaluation_protocol(rec, data):
    ds, split = data
    b = rec.blend_
    assert b.chosen_on == "validation" and b.metric == "ndcg@10"
    table = pd.DataFrame(b.table)
    assert len(table) == 3 * 6 * 3 * 11 and b.best == table["ndcg@10"].max()
    assert (b.lam, b.decay, b.text_alpha) == (rec.item_item_.lam, rec.item_item_.decay,
                                              rec.item_item_.text_alpha)
    assert ndcg(rec, split.valid) == pytest.approx(b.best, abs=1e-9)
    seq_alone = ndcg(sequence_only(rec), split.valid)
    assert table.loc[table.weight == 0.0, "ndcg@10"].to_numpy() == pytest.approx(seq_alone)
    plain = table[table.text_alpha == 0.0]
    for lam, decay in [(10.0, 1.0), (50.0, 0.8), (500.0, 0.6)]:
        row = plain[(plain.lam == lam) & (plain.decay == decay) & (plain.weight == 1.0)]
        ease = EASE(lam, decay).fit(split.train, len(ds.items))
        assert row["ndcg@10"].item() == pytest.approx(ndcg(ease, split.valid), abs=1e-9)


class ItemItemScorer:
    def __init__(self, ii: ItemItem) -> None:
        self.ii = ii

    def score(self, users, histories):
        return self.ii.scores(histories).numpy()


def test_a_text_model_gives_ease_its_text_similarity_as_side_information(rec, data):
    ds, split = data
    table = pd.DataFrame(rec.blend_.table)
    vectors = rec.model_.items.text_vectors[1:].numpy()
    gram = gram_matrix(split.train, len(ds.items)) + 10.0 * text_gram(vectors)
    ii = ItemItem(len(ds.items), 0.8).fit_gram(gram, 50.0, 10.0)
    row = table[(table.text_alpha == 10.0) & (table.lam == 50.0) & (table.decay == 0.8)
                & (table.weight == 1.0)]
    assert row["ndcg@10"].item() == pytest.approx(ndcg(ItemItemScorer(ii), split.valid),
                                                  abs=1e-9)


def test_an_id_only_model_tries_plain_ease_only(data):
    ds, split = data
    rec = Recommender("gru", model_config={"dim": 8}, train_config={**TRAIN, "epochs": 1},
                      blend={"lams": [50.0], "decays": [0.8]})
    rec.fit_split(split, ds.users, ds.items)
    assert {r["text_alpha"] for r in rec.blend_.table} == {0.0}


def test_the_blend_beats_both_parts_on_held_out_test_cases(rec, data):
    ds, split = data
    blended = ndcg(rec, split.test)
    seq_alone = ndcg(sequence_only(rec), split.test)
    ease_alone = ndcg(EASE(rec.blend_.lam, rec.blend_.decay).fit(split.train, len(ds.items)),
                      split.test)
    assert 0.0 < rec.blend_.weight < 1.0
    assert blended >= seq_alone + 0.03 and blended >= ease_alone + 0.03


def test_score_is_the_standardized_mix_of_both_parts(rec, data):
    _, split = data
    cases = split.test
    got = rec.score(cases.users, cases.history)
    seq = sequence_only(rec).score(cases.users, cases.history)
    other = rec.item_item_.scores(cases.history).numpy()

    def z(x):
        return (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)

    a = rec.blend_.weight
    np.testing.assert_allclose(got, (1 - a) * z(seq) + a * z(other), atol=1e-4)


def test_recommend_paths_agree_with_score(rec):
    user = "u3"
    r = rec.users_.index_of(user)
    hist = rec.histories_.take(np.array([r]))
    want = rec.score(np.array([r]), hist)[0]
    top = rec.recommend(user, k=len(rec.items_), filter_seen=False)
    np.testing.assert_allclose(top["score"], np.sort(want)[::-1], rtol=1e-5, atol=1e-6)
    seq = rec.recommend_for_sequence(rec.items_.ids(hist.items), k=5,
                                     times=hist.times.tolist())
    pd.testing.assert_frame_equal(seq, rec.recommend(user, k=5).drop(columns="user"))


def test_save_and_load_give_identical_scores_and_record_the_choice(rec, data, tmp_path):
    _, split = data
    path = rec.save(tmp_path / "blend")
    loaded = Recommender.load(path)
    cases = split.test
    np.testing.assert_array_equal(loaded.score(cases.users, cases.history),
                                  rec.score(cases.users, cases.history))
    assert loaded.blend_ == rec.blend_
    assert torch.equal(loaded.item_item_.weights, rec.item_item_.weights)
    meta = json.loads((path / "checkpoint.json").read_text())["meta"]
    assert {k: meta["blend"][k] for k in ("lam", "decay", "weight")} == {
        "lam": rec.blend_.lam, "decay": rec.blend_.decay, "weight": rec.blend_.weight}
    assert len(meta["blend"]["table"]) == len(rec.blend_.table)


def test_a_checkpoint_with_a_broken_blend_is_refused(rec, tmp_path):
    path = rec.save(tmp_path / "blend")
    doc = json.loads((path / "checkpoint.json").read_text())
    del doc["meta"]["blend"]["lam"]
    (path / "checkpoint.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="blend"):
        Recommender.load(path)


def test_streaming_updates_score_like_the_whole_history_in_one_batch(rec):
    streamed = copy.deepcopy(rec)
    user = "u5"
    r = streamed.users_.index_of(user)
    items = streamed.items_.ids(streamed.histories_.row(r))
    times = streamed.histories_.row_times(r).tolist()
    new = ["i7", "i42", "i7", "i99"]
    for j, item in enumerate(new):
        t = times[-1] + 60.0 * (j + 1)
        streamed.update(pd.DataFrame({"user": [user], "item": [item], "timestamp": [t]}))
    assert user in streamed._states
    got = streamed.recommend(user, k=len(rec.items_), filter_seen=False)
    batch = rec.recommend_for_sequence(
        items + new, k=len(rec.items_), filter_seen=False,
        times=times + [times[-1] + 60.0 * (j + 1) for j in range(len(new))])
    np.testing.assert_allclose(got.set_index("item")["score"].sort_index(),
                               batch.set_index("item")["score"].sort_index(), atol=1e-5)
    assert not np.allclose(got["score"], rec.recommend(user, k=len(rec.items_),
                                                       filter_seen=False)["score"])


def test_live_profiles_recommend_what_the_recommender_recommends(rec, tmp_path):
    path = rec.save(tmp_path / "blend")
    served, direct = Recommender.load(path), Recommender.load(path)
    user, t0 = "u8", float(direct.histories_.row_times(direct.users_.index_of("u8"))[-1])
    events = [("i3", t0 + 60.0), ("i77", t0 + 120.0), ("i3", t0 + 180.0)]
    with open_store(f"sqlite:///{tmp_path / 'live.db'}") as store:
        live = LiveProfiles(served, store)
        for item, t in events:
            live.update([Event(user, item, t)])
            direct.update(pd.DataFrame({"user": [user], "item": [item], "timestamp": [t]}))
        for filter_seen in (True, False):
            got = live.recommend(user, k=15, filter_seen=filter_seen)
            want = direct.recommend(user, k=15, filter_seen=filter_seen)
            assert got["item"].tolist() == want["item"].tolist()
            np.testing.assert_allclose(got["score"], want["score"], atol=1e-5)
        live.update([Event("newcomer", "i10", t0), Event("newcomer", "i11", t0 + 1.0)])
        got = live.recommend("newcomer", k=10)
    want = direct.recommend_for_sequence(["i10", "i11"], k=10, times=[t0, t0 + 1.0])
    assert got["item"].tolist() == want["item"].tolist()


def test_new_items_get_zero_item_item_rows_and_are_recommended_by_the_text_path(rec):
    grown = copy.deepcopy(rec)
    n = len(grown.items_)
    added = grown.add_items(pd.DataFrame({"item": ["fresh"], "title": ["stage 3 variant 3"]}))
    assert added == ["fresh"] and grown.item_item_.n_items == n + 1
    assert not grown.item_item_.weights[n].any() and not grown.item_item_.weights[:, n].any()
    out = grown.recommend("u1", k=n + 1, filter_seen=False)
    assert "fresh" in set(out["item"])
    seq = grown.recommend_for_sequence(["i3", "fresh"], k=3)
    assert len(seq) == 3


def test_without_validation_cases_the_documented_defaults_are_used():
    frame = taste_frame(60, seed=1)
    rec = Recommender("gru", model_config={"dim": 8}, train_config={**TRAIN, "epochs": 1},
                      blend={"lams": [20.0, 40.0]}).fit(frame, valid=False)
    cfg = BlendConfig()
    assert (rec.blend_.chosen_on, rec.blend_.lam, rec.blend_.decay, rec.blend_.weight) == (
        "defaults", cfg.default_lam, cfg.default_decay, cfg.default_weight)
    assert rec.blend_.table == [] and rec.item_item_.lam == cfg.default_lam


def test_blend_off_by_default_and_bad_options_are_rejected():
    assert Recommender("gru").get_params()["blend"] is None
    frame = taste_frame(20)
    with pytest.raises(ValueError, match="unknown blend option"):
        Recommender("gru", train_config={**TRAIN, "epochs": 1},
                    blend={"lambdas": [1.0]}).fit(frame)
    with pytest.raises(ValueError, match="weights must be in"):
        Recommender("gru", train_config={**TRAIN, "epochs": 1},
                    blend={"weights": [1.5]}).fit(frame)


def test_a_blend_above_max_items_is_refused_before_training():
    n = MAX_ITEMS + 1
    frame = pd.DataFrame({"user": np.arange(n) // 2, "item": np.arange(n),
                          "timestamp": np.arange(n, dtype=float)})
    rec = Recommender("gru", train_config={**TRAIN, "epochs": 1}, blend=True)
    with pytest.raises(ValueError, match=f"more than {MAX_ITEMS}"):
        rec.fit(frame)
    assert not hasattr(rec, "model_")


def test_refit_keeps_the_chosen_blend_and_refits_item_item_on_train_and_valid(data):
    ds, split = data
    rec = Recommender("gru", model_config={"dim": 8}, train_config={**TRAIN, "epochs": 2},
                      blend={"lams": [50.0], "decays": [0.8]})
    rec.fit_split(split, ds.users, ds.items, refit=True)
    want = ItemItem(len(ds.items)).fit_gram(gram_matrix(split.train_and_valid(), len(ds.items)),
                                            50.0)
    torch.testing.assert_close(rec.item_item_.weights, want.weights)
    assert rec.item_item_.decay == rec.blend_.decay
