"""The user-facing Recommender: ids in, DataFrames out, estimator manners."""

import numpy as np
import pandas as pd
import pytest

from prismrec.data import Dataset, Interactions, leave_one_out
from prismrec.errors import CheckpointError, UnknownIdError
from prismrec.recommender import Recommender, holdout_last
from prismrec.testing import CYCLES, cycle_frame, cycle_sequences

TRAIN = {"epochs": 40, "lr": 5e-3, "weight_decay": 0.0, "progress": False, "threads": 1,
         "valid_filter_seen": False, "batch_size": 64}



@pytest.fixture(scope="module")
def fitted():
    inter = Interactions.from_frame(cycle_frame(time_col="ts"), timestamp="ts")
    return Recommender("gru", model_config={"dim": 32, "dropout": 0.1},
                       train_config=TRAIN).fit(inter)


def test_init_stores_parameters_only():
    rec = Recommender("sasrec", model_config={"dim": 8}, train_config={"epochs": 2})
    assert rec.get_params()["model_config"] == {"dim": 8}
    assert not hasattr(rec, "model_")
    with pytest.raises(ValueError, match="not fitted"):
        rec.recommend("u1")


def test_unknown_model_name_is_rejected_at_fit():
    with pytest.raises(ValueError, match="unknown model 'bert'"):
        Recommender("bert", train_config={"epochs": 1}).fit(cycle_frame(20))


def test_holdout_last_keeps_the_last_event_out_of_training_only():
    seqs = cycle_sequences(10)
    train, cases = holdout_last(seqs)
    assert (train.lengths == seqs.lengths - 1).all()
    assert cases.targets.items.tolist() == seqs.nth_from_end(1).tolist()


def test_fit_returns_self_and_learns_the_cycles(fitted):
    assert fitted.result_.best_metrics["hr@10"] == 1.0
    # user u0 walks a known cycle: the next item follows their last item in that cycle
    hist = fitted.items_.ids(fitted.histories_.row(fitted.users_.index_of("u0")))
    last, prev = int(hist[-1][1:]), int(hist[-2][1:])
    cycle = next(c for c in CYCLES if last in c and prev in c)
    expected = f"i{cycle[(cycle.index(last) + 1) % len(cycle)]}"
    top = fitted.recommend("u0", k=1, filter_seen=False)
    assert top.loc[0, "item"] == expected


def test_recommend_frame_has_ids_ranks_and_descending_scores(fitted):
    out = fitted.recommend(["u1", "u2"], k=5, filter_seen=False)
    assert list(out.columns) == ["user", "rank", "item", "score"]
    assert out["user"].tolist() == ["u1"] * 5 + ["u2"] * 5
    assert out["rank"].tolist() == [1, 2, 3, 4, 5] * 2
    for _, g in out.groupby("user"):
        assert g["score"].is_monotonic_decreasing
    assert all(isinstance(i, str) and i.startswith("i") for i in out["item"])


def test_batch_and_single_calls_agree(fitted):
    single = fitted.recommend("u7", k=6)
    batch = fitted.recommend(["u3", "u7", "u9"], k=6)
    pd.testing.assert_frame_equal(fitted.recommend(["u7"], k=6), single)
    pd.testing.assert_frame_equal(batch[batch.user == "u7"].reset_index(drop=True), single)


def test_filter_seen_leaves_out_the_users_items(fitted):
    out = fitted.recommend("u5", k=20)
    seen = set(fitted.items_.ids(fitted.histories_.row(fitted.users_.index_of("u5"))))
    assert seen and not seen & set(out["item"])
    assert len(out) == len(fitted.items_) - len(seen)  # k beyond what is left: all the rest


def test_unknown_user_and_item_errors_name_the_id(fitted):
    with pytest.raises(UnknownIdError, match="unknown user 'nobody'"):
        fitted.recommend(["u1", "nobody"])
    with pytest.raises(UnknownIdError, match="unknown item 'i999'"):
        fitted.recommend_for_sequence(["i1", "i999"])


def test_recommend_for_sequence_continues_a_new_users_cycle(fitted):
    cycle = [f"i{i}" for i in CYCLES[3]]  # (10, 8, 11, 12, 13): 8 is shared with cycle 2
    out = fitted.recommend_for_sequence(cycle * 2 + cycle[:2], k=1, filter_seen=False)
    assert list(out.columns) == ["rank", "item", "score"]
    assert out.loc[0, "item"] == cycle[2]


def test_score_is_the_evaluation_scorer_protocol(fitted):
    split = leave_one_out(fitted.histories_)
    scores = fitted.score(split.test.users, split.test.history)
    assert scores.shape == (len(split.test), len(fitted.items_)) and scores.dtype == np.float32
    evaluate = pytest.importorskip("prismrec.eval.evaluate").evaluate
    report = evaluate(fitted, split.test, ks=(10,), filter_seen=False, n_bootstrap=0)
    assert report.metrics["hr@10"] == 1.0


def test_save_and_load_recommend_the_same_without_training_data(fitted, tmp_path):
    fitted.save(tmp_path / "rec")
    back = Recommender.load(tmp_path / "rec")
    assert back.model == "gru" and back.model_config == fitted.model_.config.to_dict()
    pd.testing.assert_frame_equal(back.recommend(["u1", "u4"], k=5),
                                  fitted.recommend(["u1", "u4"], k=5))
    assert back.result_.best_epoch == fitted.result_.best_epoch


def test_loading_a_bare_model_checkpoint_as_a_recommender_fails_clearly(fitted, tmp_path):
    from prismrec.train import save_checkpoint

    save_checkpoint(tmp_path / "bare", fitted.model_)
    with pytest.raises(CheckpointError, match="not a saved Recommender"):
        Recommender.load(tmp_path / "bare")


def test_fit_accepts_a_dataset_and_fit_split_a_split():
    df = cycle_frame(60)
    ds = Dataset.from_interactions("cycles", Interactions.from_frame(df))
    cfg = {**TRAIN, "epochs": 2}
    rec = Recommender("sasrec", model_config={"dim": 8}, train_config=cfg).fit(ds)
    assert len(rec.histories_) == len(ds.users)
    split = ds.split("loo")
    rec2 = Recommender("lstm", model_config={"dim": 8}, train_config=cfg)
    assert rec2.fit_split(split, ds.users, ds.items) is rec2
    assert rec2.result_.epochs == 2
    # histories_ are the full histories (the split's test history plus its target), not the
    # training rows; training_ says where training stopped
    assert np.array_equal(rec2.histories_.items, ds.sequences.items)
    assert np.array_equal(rec2.training_.train_cut, split.train.lengths)
    rec3 = Recommender("lstm", model_config={"dim": 8}, train_config=cfg)
    rec3.fit_split(split, ds.users, ds.items, histories=ds.sequences)
    assert rec3.histories_ is ds.sequences


def test_refit_retrains_on_train_and_valid_for_the_selected_epochs(tmp_path):
    df = cycle_frame(60)
    ds = Dataset.from_interactions("cycles", Interactions.from_frame(df))
    split = ds.split("loo")
    cfg = {**TRAIN, "epochs": 6, "patience": 2}
    rec = Recommender("gru", model_config={"dim": 8}, train_config=cfg)
    rec.fit_split(split, ds.users, ds.items, refit=True)
    chosen = rec.result_.best_epoch
    assert rec.refit_result_.epochs == chosen and rec.refit_result_.best_metrics == {}
    full = split.train_and_valid()
    assert full.n_events == split.train.n_events + len(split.valid)
    # the final model trained on train + validation; histories_ keep everything known
    assert rec.training_.refit and np.array_equal(rec.training_.train_cut, full.lengths)
    assert rec.histories_.n_events == ds.sequences.n_events
    loaded = Recommender.load(rec.save(tmp_path / "refit"))
    assert loaded.refit_result_.epochs == chosen
    assert np.array_equal(loaded.training_.train_cut, full.lengths)
    # fit(refit=True) retrains on every event, the held-out last ones included
    again = Recommender("gru", model_config={"dim": 8}, train_config=cfg).fit(ds, refit=True)
    assert again.refit_result_.epochs == again.result_.best_epoch


def test_refit_without_validation_is_refused_with_a_reason():
    df = cycle_frame(20)
    rec = Recommender("gru", model_config={"dim": 8}, train_config={**TRAIN, "epochs": 1})
    with pytest.raises(ValueError, match="needs valid=True"):
        rec.fit(df, valid=False, refit=True)
    ds = Dataset.from_interactions("cycles", Interactions.from_frame(df))
    split = ds.split("loo")
    no_valid = type(split)(split.name, split.train, split.valid.take(np.arange(0)), split.test)
    with pytest.raises(ValueError, match="needs validation cases"):
        rec.fit_split(no_valid, ds.users, ds.items, refit=True)


def test_train_and_valid_appends_each_validation_target_to_its_users_row():
    split = leave_one_out(cycle_sequences(12))
    full = split.train_and_valid()
    for j, user in enumerate(split.valid.users):
        want = [*split.valid.history.row(j), *split.valid.targets.row(j)]
        assert full.row(user).tolist() == want
    assert split.test.history.take(np.arange(len(split.test))).n_events == full.n_events


def test_text_modes_take_text_vectors_aligned_with_the_item_vocabulary(tmp_path):
    df = cycle_frame(40)
    ds = Dataset.from_interactions("cycles", Interactions.from_frame(df))
    cfg = {**TRAIN, "epochs": 2}
    text = np.random.default_rng(0).normal(size=(len(ds.items), 12)).astype(np.float32)
    with pytest.raises(ValueError, match="need text_vectors"):
        Recommender("gru", model_config={"embedding": "id+text"}, train_config=cfg).fit(ds)
    with pytest.raises(ValueError, match="takes none"):
        Recommender("gru", train_config=cfg).fit(ds, text_vectors=text)
    rec = Recommender("gru", model_config={"dim": 8, "embedding": "text"},
                      train_config=cfg).fit(ds, text_vectors=text)
    np.testing.assert_allclose(rec.model_.items.text_vectors[1:].numpy(), text)
    back = Recommender.load(rec.save(tmp_path / "t"))
    pd.testing.assert_frame_equal(back.recommend("u1"), rec.recommend("u1"))
