"""What a checkpoint keeps: every user's full history apart from what the model trained on.

Through the command line on data the test builds: ``recommend --user`` never returns an item
of the user's full history, a live profile starts from the full history, and ``evaluate
--checkpoint`` scores only cases the model never saw, reproducing ``train``'s figures.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from prismrec.cli import main
from prismrec.data import load_dataset
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases
from prismrec.data.synthetic import generate
from prismrec.profile.live import LiveProfiles
from prismrec.profile.sqlite_store import SQLiteStore
from prismrec.recommender import Recommender
from prismrec.recommender._provenance import known_histories, unseen_cases

N_ITEMS = 40


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    generate(n_users=60, n_items=N_ITEMS, seed=5).save(folder)
    return folder


@pytest.fixture(scope="module")
def trained(shop, tmp_path_factory):
    """(checkpoint folder, train's --json document, train's printed output)."""
    out = tmp_path_factory.mktemp("ck") / "gru"
    doc = out.parent / "train.json"
    args = ["train", "--dataset", "events", "--data-dir", str(shop), "--model", "gru",
            "--out", str(out), "--epochs", "2", "--quiet", "--threads", "1",
            "--json", str(doc)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    return out, json.loads(doc.read_text()), printed.getvalue()


def _full_history(shop) -> dict[str, list[str]]:
    frame = pd.read_csv(next(shop.glob("events.*")))
    frame = frame.sort_values("timestamp", kind="stable")
    return {str(u): [str(i) for i in g["item"]] for u, g in frame.groupby("user", sort=False)}


def test_recommend_never_returns_an_item_of_the_full_history(trained, shop, capsys):
    out, _, _ = trained
    full = _full_history(shop)
    users = sorted(full)[:12]
    for user in users:
        capsys.readouterr()
        assert main(["recommend", "--checkpoint", str(out), "--user", user, "-k",
                     str(N_ITEMS), "--json", "--threads", "1"]) == 0
        got = [r["item"] for r in json.loads(capsys.readouterr().out)["recommendations"]]
        assert got, user
        # every item but the user's own: the last two events (held out by the split) too
        assert not set(got) & set(full[user]), user
        assert len(got) == N_ITEMS - len(set(full[user]))


def test_the_checkpoint_keeps_full_histories_and_where_training_stopped(trained, shop):
    out, _, _ = trained
    rec = Recommender.load(out)
    data = load_dataset("events", shop)
    h, s = rec.histories_, data.sequences
    assert np.array_equal(h.offsets, s.offsets) and np.array_equal(h.items, s.items)
    tr = rec.training_
    assert tr.split == "loo" and not tr.refit
    n = s.lengths
    long = n >= 3  # leave-one-out: training stops two events short, selection one
    assert np.array_equal(tr.train_cut[long], n[long] - 2)
    assert np.array_equal(tr.select_cut[long], n[long] - 1)


def test_a_live_profile_starts_from_the_full_history(trained, shop, tmp_path):
    out, _, _ = trained
    rec = Recommender.load(out)
    full = _full_history(shop)
    user = sorted(full)[0]
    live = LiveProfiles(rec, SQLiteStore(tmp_path / "p.db"))
    got = live.recommend(user, k=10)
    want = rec.recommend_for_sequence(full[user], k=10)
    assert got["item"].tolist() == want["item"].tolist()
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-5, atol=1e-5)
    # the last two items of the history are seen: never recommended
    assert not set(got["item"]) & set(full[user])
    live.store.close()


def test_evaluate_checkpoint_reproduces_the_test_metrics_train_printed(trained, tmp_path,
                                                                       capsys):
    out, train_doc, printed = trained
    doc_path = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(out), "--json", str(doc_path),
                 "--threads", "1"]) == 0
    doc = json.loads(doc_path.read_text())
    assert doc["split"] == "loo"
    assert doc["data"]["test_cases_left_out"] == 0
    for key in ("ndcg@10", "hr@10", "recall@50"):
        assert doc["metrics"][key] == train_doc["all_metrics"]["filtered"][key]
    line = next(ln for ln in printed.splitlines() if "test filtered" in ln)
    assert f"ndcg@10 {doc['metrics']['ndcg@10']:.4f}" in line
    assert f"hr@10 {doc['metrics']['hr@10']:.4f}" in line


def test_evaluate_refuses_a_model_fitted_on_every_event(shop, tmp_path, capsys):
    data = load_dataset("events", shop)
    rec = Recommender("gru", train_config={"epochs": 1, "progress": False, "threads": 1})
    rec.fit(data)  # trains on all but each user's last event, selects on that last event
    rec.save(tmp_path / "all")
    code = main(["evaluate", "--checkpoint", str(tmp_path / "all"), "--dataset", "events",
                 "--data-dir", str(shop), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "refusing" in err and "'holdout_last'" in err
    assert "prismrec train --dataset events --split loo" in err


def test_evaluate_refuses_other_data(trained, shop, tmp_path, capsys):
    out, _, _ = trained
    other = tmp_path / "other"
    generate(n_users=60, n_items=N_ITEMS, seed=6).save(other)
    code = main(["evaluate", "--checkpoint", str(out), "--dataset", "events",
                 "--data-dir", str(other), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "differs from the data the checkpoint was trained on" in err


def test_evaluate_on_another_split_refuses_cases_the_model_saw(trained, shop, capsys):
    out, _, _ = trained
    data = load_dataset("events", shop)
    test = data.split("temporal").test
    # every temporal test case here predicts several events, the first of them before each
    # user's last one: events leave-one-out training or selection read
    assert (test.history.lengths < data.sequences.lengths[test.users] - 1).all()
    code = main(["evaluate", "--checkpoint", str(out), "--split", "temporal",
                 "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{len(test)} of {len(test)} cases predict events the model trained on" in err
    assert "--split temporal" in err


def test_only_cases_after_the_selection_cut_are_kept(trained, shop):
    out, _, _ = trained
    rec = Recommender.load(out)
    data = load_dataset("events", shop)
    split = data.split("loo")
    v, t = split.valid, split.test
    both = EvalCases(np.concatenate([v.users, t.users]),
                     Sequences.from_lists([v.history.row(j) for j in range(len(v))]
                                          + [t.history.row(j) for j in range(len(t))]),
                     Sequences.from_lists([v.targets.row(j) for j in range(len(v))]
                                          + [t.targets.row(j) for j in range(len(t))]))
    got = unseen_cases(rec.training_, data.sequences, both)
    assert got.total == len(v) + len(t)
    assert np.array_equal(got.cases.users, t.users)  # validation cases were seen
    assert f"{len(v)} of {len(v) + len(t)} cases" in got.reason
    # refit trains on the validation events too: the test cases stay unseen
    refit = replace(rec.training_, train_cut=rec.training_.select_cut, refit=True)
    assert len(unseen_cases(refit, data.sequences, t).cases) == len(t)


def test_fit_split_without_histories_keeps_what_the_split_knows(shop):
    data = load_dataset("events", shop)
    split = data.split("loo")
    known = known_histories(split)
    assert isinstance(known, Sequences)
    assert np.array_equal(known.items, data.sequences.items)
    assert np.array_equal(known.offsets, data.sequences.offsets)


def test_a_checkpoint_without_a_training_record_vouches_for_no_case(shop):
    data = load_dataset("events", shop)
    test = data.split("loo").test
    got = unseen_cases(None, data.sequences, test)
    assert len(got.cases) == 0 and got.total == len(test)
    assert "does not record which events it trained on" in got.reason


def test_cuts_are_safe_for_skip_one_histories_and_tied_times():
    from prismrec.recommender._provenance import record

    # one user, six events at times 0..5; training read 0-2, selection predicted event 3
    full = Sequences.from_lists([np.arange(6)], [np.arange(6.0)])
    train = Sequences.from_lists([np.arange(3)], [np.arange(3.0)])
    valid = EvalCases(np.array([0]), train, Sequences.from_lists([[3]], [[3.0]]))
    rec_ = record("given", full, train, valid, refit=False)
    assert (rec_.train_cut.tolist(), rec_.select_cut.tolist()) == ([3], [4])
    # skip-one: the test history leaves the validation event out, the target comes after it
    skip = EvalCases(np.array([0]), train, Sequences.from_lists([[4]], [[4.0]]))
    assert len(unseen_cases(rec_, full, skip).cases) == 1
    # ties in time: leave-one-out cases are placed by position, not by time
    tied_full = Sequences.from_lists([np.arange(6)], [[0.0, 1, 2, 3, 3, 5]])
    tied = record("loo", tied_full, train, valid, refit=False)
    assert tied.select_cut.tolist() == [4]
    case = EvalCases(np.array([0]), Sequences.from_lists([np.arange(4)], [[0.0, 1, 2, 3]]),
                     Sequences.from_lists([[4]], [[3.0]]))
    assert len(unseen_cases(tied, tied_full, case).cases) == 1
    # a case that is not a prefix and shares its target's time with a selection event is
    # placed by time: before that event, so counted as seen (the safe side)
    odd = EvalCases(np.array([0]), Sequences.from_lists([[9]], [[0.0]]),
                    Sequences.from_lists([[4]], [[3.0]]))
    assert len(unseen_cases(tied, tied_full, odd).cases) == 0


def test_the_dashboard_model_card_shows_the_test_metrics_train_printed(trained):
    from prismrec.serve.ui.data import Dashboard

    out, train_doc, _ = trained
    card = Dashboard(Recommender.load(out), checkpoint_dir=out).model_card()
    filtered = train_doc["all_metrics"]["filtered"]
    assert card["test"] == {k: round(filtered[k], 4)
                            for k in ("ndcg@10", "hr@10", "mrr@10", "recall@10")}
    assert card["dataset"] == "events" and card["split"] == "loo"
