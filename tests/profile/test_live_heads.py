"""LiveProfiles with an interest-head model: the head's state streams with the RNN state, and
the interest weights read from it equal the batch computation over the whole history."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prismrec.data.synthetic import generate
from prismrec.profile import Event, open_store
from prismrec.profile.live import LiveProfiles
from prismrec.profile.profile import build_profile
from prismrec.recommender import Recommender

T0 = 1_700_000_000.0


@pytest.fixture(scope="module",
                params=["lstm-item", "gru-item", "sasrec-item", "lstm-categories", "gru"])
def fitted(request) -> Recommender:
    torch.manual_seed(0)
    data = generate(n_users=60, n_items=40, seed=2).to_dataset()
    model, _, route = request.param.partition("-")  # none: the default, "auto"
    config = {"dim": 16, "time_gaps": True, "interests": 3,
              **({"max_len": 30} if model == "sasrec" else {}),
              **({"interest_route": route} if route else {})}
    rec = Recommender(model, model_config=config,
                      train_config={"epochs": 1, "progress": False, "threads": 1}).fit(data)
    # the synthetic shop has categories, so "auto" routes by them (the generator's 8)
    routed = route != "item"
    assert rec.model_.config.interest_route == ("categories" if routed else "item")
    assert rec.model_.config.route_dim == (8 if routed else 0)
    return rec


def _events(rec: Recommender, n: int, seed: int = 0) -> tuple[list[str], list[float]]:
    rng = np.random.default_rng(seed)
    ids = rec.items_.to_list()
    items = [ids[i] for i in rng.integers(0, len(ids), n)]
    times = (T0 + np.cumsum(rng.integers(1, 5000, n))).astype(float).tolist()
    return items, times


def _batch_interests(rec: Recommender, items: list[str], times: list[float]):
    """Interest vectors and weights of the whole history in one batch, (K, D), (K,)."""
    idx = np.asarray([rec.items_.index_of(i) for i in items], dtype=np.int64)
    model = rec.model_.eval()
    gaps = np.concatenate([[-1.0], np.diff(times)])  # SASRec: the window keeps its true gaps
    if model.max_len is not None:
        idx, gaps = idx[-model.max_len:], gaps[-model.max_len:]
    gaps = torch.from_numpy(gaps)[None]
    with torch.no_grad():
        it = model.interests(torch.from_numpy(idx)[None], torch.tensor([len(idx)]), gaps)
    return idx, it.vectors[0].numpy(), it.weights[0].double().numpy()


def test_streamed_interest_weights_equal_the_batch_computation(fitted, tmp_path):
    items, times = _events(fitted, 40)
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        live = LiveProfiles(fitted, store)
        assert live.interests("newcomer") is None
        for j, (item, t) in enumerate(zip(items, times, strict=True)):
            live.update([Event("newcomer", item, t, event_id=f"e{j}")])
        vectors, weights = live.interests("newcomer")
    _, batch_v, batch_w = _batch_interests(fitted, items, times)
    np.testing.assert_allclose(weights, batch_w, atol=1e-5)
    np.testing.assert_allclose(vectors, batch_v, atol=1e-5)
    # the profile a person reads renormalises the same weights over its interests
    full = np.asarray([fitted.items_.index_of(i) for i in items], dtype=np.int64)
    prof = build_profile(fitted.model_, full, np.asarray(times), fitted.items_.to_list())
    kept = [i.component for i in prof.interests]
    np.testing.assert_allclose(prof.weights(), weights[kept] / weights[kept].sum(), atol=1e-5)


def test_streamed_scores_with_a_head_equal_the_batch_scores(fitted, tmp_path):
    items, times = _events(fitted, 25, seed=1)
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        live = LiveProfiles(fitted, store)
        live.update([Event("u", i, t) for i, t in zip(items[:10], times[:10], strict=True)])
        for item, t in zip(items[10:], times[10:], strict=True):
            live.update([Event("u", item, t)])
        streamed = live.recommend("u", k=40)
    batch = fitted.recommend_for_sequence(items, k=40, times=times)
    a = dict(zip(streamed["item"], streamed["score"], strict=True))
    b = dict(zip(batch["item"], batch["score"], strict=True))
    assert set(a) == set(b)
    np.testing.assert_allclose([a[i] for i in b], list(b.values()), atol=1e-5)


def test_head_state_survives_the_store_and_a_new_process(fitted, tmp_path):
    items, times = _events(fitted, 15, seed=2)
    path = f"sqlite:///{tmp_path / 'p.db'}"
    with open_store(path) as store:
        first = LiveProfiles(fitted, store)
        first.update([Event("u", i, t) for i, t in zip(items, times, strict=True)])
        before = first.interests("u")
    with open_store(path) as store:  # decoded from the stored blob, not recomputed
        again = LiveProfiles(fitted, store)
        stored = store.get_state("u")
        assert again._io.usable(again.served, "u", stored) is not None
        after = again.interests("u")
    np.testing.assert_array_equal(before[1], after[1])


def test_a_user_known_from_training_continues_with_their_interests(fitted, tmp_path):
    user = fitted.users_.ids([3])[0]
    history = fitted.items_.ids(fitted.histories_.row(3))
    history_times = fitted.histories_.row_times(3).tolist()
    items, _ = _events(fitted, 6, seed=3)
    times = [history_times[-1] + 60.0 * (j + 1) for j in range(6)]
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        live = LiveProfiles(fitted, store)
        live.update([Event(user, i, t) for i, t in zip(items, times, strict=True)])
        _, weights = live.interests(user)
    _, _, batch_w = _batch_interests(fitted, history + items, history_times + times)
    np.testing.assert_allclose(weights, batch_w, atol=1e-5)


def test_a_model_without_a_head_says_how_to_get_interests(tmp_path):
    data = generate(n_users=30, n_items=20, seed=1).to_dataset()
    rec = Recommender("gru", model_config={"dim": 8},
                      train_config={"epochs": 1, "progress": False, "threads": 1}).fit(data)
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        with pytest.raises(ValueError, match="interests=K"):
            LiveProfiles(rec, store).interests("anyone")
