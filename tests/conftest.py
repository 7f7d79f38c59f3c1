"""Shared fixtures: thread limits for a 2-core machine and the path to the real datasets."""

from __future__ import annotations

import os
from pathlib import Path

# Idle OpenMP threads spin by default; on a busy 2-core machine that makes small torch ops
# 30-100x slower. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo, or skip the test with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A private redis-server without persistence, stopped when the session ends."""
    import shutil
    import subprocess
    import time

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    import redis

    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    logfile = open(folder / "redis.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=logfile, stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "redis-server did not start: " + (folder / "redis.log").read_text()
                    ) from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
        logfile.close()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A small LSTM trained for 2 epochs on synthetic shop data, saved once per session.

    120 users, 60 items (ids u0000.., i00000..); used by the live-profile and service tests.
    """
    from prismrec.data.synthetic import generate
    from prismrec.recommender import Recommender

    data = generate(n_users=120, n_items=60, seed=1).to_dataset()
    rec = Recommender("lstm", model_config={"dim": 16},
                      train_config={"epochs": 2, "progress": False, "threads": 1}).fit(data)
    return rec.save(tmp_path_factory.mktemp("ckpt") / "lstm")


@pytest.fixture(scope="session")
def shop_data():
    """Synthetic shop (80 users, 150 items) for the tests of interests, reasons and diversity."""
    from prismrec.data.synthetic import generate

    return generate(n_users=80, n_items=150, seed=1).to_dataset()


@pytest.fixture(scope="session")
def head_gru(shop_data):
    """A GRU with a 3-interest head, 3 epochs on ``shop_data``; shared, never changed."""
    from prismrec.recommender import Recommender

    train = {"epochs": 3, "progress": False, "threads": 1, "batch_size": 32, "lr": 3e-3}
    return Recommender("gru", model_config={"dim": 32, "interests": 3},
                       train_config=train).fit(shop_data)
