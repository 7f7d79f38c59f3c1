"""Adding items while events and recommendations run, on both stores: every answer comes
from one whole bundle (model, vocabulary, item table), never a half-grown one.

Threads post events and read recommendations while another thread adds items in several
batches; each answer names the checkpoint it was computed by, and every item in it must
belong to that checkpoint's vocabulary. No request may fail.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from prismrec.data.synthetic import generate
from prismrec.profile import Event, open_store
from prismrec.profile.live import LiveProfiles
from prismrec.recommender import Recommender
from prismrec.text import HashingEncoder

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def text_rec() -> Recommender:
    torch.manual_seed(0)
    data = generate(n_users=80, n_items=40, seed=4).to_dataset()
    return Recommender("gru", model_config={"dim": 12},
                       train_config={"epochs": 1, "progress": False, "threads": 1}).fit(
        data, text=True, encoder=HashingEncoder(32))


@pytest.fixture(params=["sqlite", "redis"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'live.db'}"
    server = request.getfixturevalue("redis_url")
    import redis

    with redis.Redis.from_url(server) as client:
        client.flushdb()
    return server


def test_adding_items_under_load_never_mixes_bundles(text_rec, url):
    import pandas as pd

    n_batches, per_batch = 4, 3
    new_ids = [f"new-{b}-{j}" for b in range(n_batches) for j in range(per_batch)]
    with open_store(url) as store:
        live = LiveProfiles(text_rec, store)
        vocab = {live.checkpoint: set(live.items.to_list())}
        old_items = live.items.to_list()
        answers, errors = [], []
        stop = threading.Event()

        def guarded(fn):
            def run(*args):
                try:
                    fn(*args)
                except Exception as exc:  # noqa: BLE001 - every failure is reported below
                    errors.append(exc)
                    stop.set()
            return run

        @guarded
        def post(t: int) -> None:
            rng = np.random.default_rng(t)
            j = 0
            while not stop.is_set() or j < 5:
                pool = old_items + new_ids  # some items are not known yet: logged only
                item = pool[int(rng.integers(len(pool)))]
                live.update([Event(f"user-{t}-{j % 4}", item, T0 + j, event_id=f"{t}-{j}")])
                j += 1

        @guarded
        def read(t: int) -> None:
            j = 0
            while not stop.is_set() or j < 5:
                for rec in live.recommendations_many(
                        [dict(user=f"user-{t % 2}-{j % 4}", k=8), dict(user="u0001", k=8)]):
                    if isinstance(rec, Exception):
                        raise rec
                    answers.append(rec)
                j += 1

        @guarded
        def grow() -> None:
            for b in range(n_batches):
                rows = pd.DataFrame({"item": new_ids[b * per_batch:(b + 1) * per_batch],
                                     "title": [f"gadget {b} {j}" for j in range(per_batch)]})
                live.add_items(rows, HashingEncoder(32))
                vocab[live.checkpoint] = set(live.items.to_list())
            stop.set()

        threads = ([threading.Thread(target=post, args=(t,)) for t in range(2)]
                   + [threading.Thread(target=read, args=(t,)) for t in range(2)]
                   + [threading.Thread(target=grow)])
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert not any(th.is_alive() for th in threads), "a thread hung"
    assert not errors, errors
    assert len(live.items) == len(old_items) + len(new_ids)
    assert len(vocab) == n_batches + 1
    seen_checkpoints = {a.checkpoint for a in answers}
    assert seen_checkpoints <= set(vocab)
    assert len(seen_checkpoints) >= 2  # answers came from before and after a swap
    for a in answers:
        assert set(a.items) <= vocab[a.checkpoint], "an answer mixed two bundles"
        assert len(a.items) == len(set(a.items)) and np.isfinite(a.scores).all()
    # the Recommender the service started from is unchanged: the service grew copies
    assert "new-0-0" not in text_rec.items_
