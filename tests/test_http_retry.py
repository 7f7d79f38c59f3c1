"""prismrec._http: the one retry helper the embeddings and chat clients share.

Waits double up to a cap, less a random share (jitter), so clients that failed together do
not retry in lockstep; the clients' own HTTP tests (real servers on 127.0.0.1) cover the
status handling through this helper.
"""

from __future__ import annotations

import random

import pytest

from prismrec._http import RetryPolicy


def test_waits_double_to_the_cap_less_at_most_the_jitter_share():
    policy = RetryPolicy(max_retries=6, backoff=0.5, max_backoff=4.0, jitter=0.5)
    rng = random.Random(1)
    for attempt, nominal in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        for _ in range(50):
            w = policy.wait(attempt, rng)
            assert nominal * 0.5 <= w <= nominal


def test_two_clients_that_fail_together_wait_differently():
    policy = RetryPolicy()
    waits = {round(policy.wait(2, random.Random(seed)), 9) for seed in range(20)}
    assert len(waits) > 15  # twenty clients, (nearly) twenty different waits


def test_no_jitter_gives_the_plain_doubling():
    policy = RetryPolicy(backoff=0.25, max_backoff=1.0, jitter=0.0)
    assert [policy.wait(i) for i in range(4)] == pytest.approx([0.25, 0.5, 1.0, 1.0])


def test_both_clients_use_it():
    import inspect

    from prismrec.explain import _chat
    from prismrec.text import _openai

    for module in (_chat, _openai):
        src = inspect.getsource(module)
        assert "post_json(" in src and "urlopen" not in src
