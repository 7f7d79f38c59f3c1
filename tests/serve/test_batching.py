"""The serve layer's batchers: async requests run in batches, on the loop or one thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from prismrec.serve.batching import Batcher, LoopBatcher, each

KINDS = pytest.mark.parametrize("kind", [Batcher, LoopBatcher], ids=["thread", "loop"])


def run(coro):
    return asyncio.run(coro)


@KINDS
def test_each_request_gets_its_own_result_in_order(kind):
    batcher = kind(each(lambda x: x * x))

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(20)))

    assert run(main()) == [i * i for i in range(20)]
    batcher.close()


def test_requests_queued_together_run_as_one_batch_on_one_thread():
    seen: list[tuple[list[int], str]] = []

    def square_all(xs):
        seen.append((list(xs), threading.current_thread().name))
        return [x * x for x in xs]

    batcher = Batcher(square_all, window=0.05, max_batch=8, name="sq")

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(8)))

    assert run(main()) == [i * i for i in range(8)]
    assert [xs for xs, _ in seen] == [list(range(8))]
    assert {name for _, name in seen} == {"sq"}
    assert (batcher.batches, batcher.requests) == (1, 8)
    batcher.close()


@KINDS
def test_max_batch_caps_a_batch(kind):
    sizes = []

    def record(xs):
        sizes.append(len(xs))
        return list(xs)

    batcher = kind(record, window=0.05, max_batch=3)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(7)))

    assert run(main()) == list(range(7))
    assert max(sizes) <= 3 and sum(sizes) == 7
    batcher.close()


@KINDS
def test_an_error_fails_only_its_own_request(kind):
    def invert(x):
        return 1 / x

    batcher = kind(each(invert), window=0.05)

    async def main():
        return await asyncio.gather(*(batcher.submit(x) for x in (1, 0, 4)),
                                    return_exceptions=True)

    one, zero, four = run(main())
    assert (one, four) == (1.0, 0.25)
    assert isinstance(zero, ZeroDivisionError)
    batcher.close()


@KINDS
def test_a_failing_batch_function_fails_every_request_of_the_batch(kind):
    def broken(xs):
        raise RuntimeError("model exploded")

    batcher = kind(broken, window=0.05)

    async def main():
        return await asyncio.gather(*(batcher.submit(x) for x in range(3)),
                                    return_exceptions=True)

    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in run(main()))
    batcher.close()


@KINDS
def test_a_batch_function_returning_the_wrong_count_is_an_error(kind):
    batcher = kind(lambda xs: [], window=0.0)
    with pytest.raises(RuntimeError, match="returned 0 results for 1 requests"):
        run(batcher.submit(1))
    batcher.close()


@KINDS
def test_a_closed_batcher_refuses_new_requests(kind):
    batcher = kind(each(str))
    assert run(batcher.submit(5)) == "5"
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        run(batcher.submit(6))


@KINDS
@pytest.mark.parametrize("kwargs", [{"window": -1.0}, {"max_batch": 0}, {"max_batch": 1.5}])
def test_bad_settings_are_refused(kind, kwargs):
    with pytest.raises(ValueError):
        kind(each(str), **kwargs)


def test_the_loop_batcher_runs_one_turns_requests_as_one_batch_on_the_loop_thread():
    seen: list[tuple[list[int], str]] = []

    def square_all(xs):
        seen.append((list(xs), threading.current_thread().name))
        return [x * x for x in xs]

    batcher = LoopBatcher(square_all, max_batch=8)

    async def main():
        first = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
        return first, await batcher.submit(9)

    assert run(main()) == ([0, 1, 4, 9, 16], 81)
    assert seen == [([0, 1, 2, 3, 4], threading.current_thread().name), ([9], seen[0][1])]
    assert (batcher.batches, batcher.requests) == (2, 6)


def test_the_loop_batcher_skips_a_request_cancelled_before_its_batch_ran():
    ran: list[int] = []

    def record(xs):
        ran.extend(xs)
        return list(xs)

    batcher = LoopBatcher(record, window=0.05)

    async def main():
        gone = asyncio.ensure_future(batcher.submit(1))
        kept = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)  # both queued
        gone.cancel()
        return await kept

    assert run(main()) == 2
    assert ran == [2]


def test_concurrent_http_recommendations_equal_the_direct_answer(tiny_checkpoint, tmp_path):
    import httpx

    from prismrec.profile import Event, open_store
    from prismrec.profile.live import LiveProfiles
    from prismrec.recommender import Recommender
    from prismrec.serve import create_app

    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        live = LiveProfiles(Recommender.load(tiny_checkpoint), store)
        live.update([Event("ann", "i00003", 1.7e9), Event("u0001", "i00004", 1.7e9)])
        app = create_app(live)
        users = ["ann", "u0001", "u0002", "nobody"] * 3

        async def main():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await asyncio.gather(*(
                    client.get(f"/v1/users/{u}/recommendations", params={"k": 5})
                    for u in users))

        replies = run(main())
        app.state.workers.close()
        assert [r.status_code for r in replies] == [200] * len(users)
        for user, reply in zip(users, replies, strict=True):
            direct = live.recommendations(user, 5)
            assert [x["item"] for x in reply.json()["items"]] == direct.items
            assert reply.json()["fallback"] == direct.fallback


def test_the_loop_batcher_waits_for_company_only_while_busy():
    sizes: list[int] = []

    def record(xs):
        sizes.append(len(xs))
        return list(xs)

    batcher = LoopBatcher(record, window=0.5)

    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await batcher.submit(0) == 0  # a quiet service: the lone request runs at once
        quiet = loop.time() - start
        start = loop.time()
        first = asyncio.ensure_future(batcher.submit(1))  # just after a batch: it waits...
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(batcher.submit(2))  # ...so this one joins it
        assert await asyncio.gather(first, second) == [1, 2]
        return quiet, loop.time() - start

    quiet, busy = run(main())
    assert sizes == [1, 2]
    assert quiet < 0.25 <= busy


def test_an_async_batch_function_frees_the_loop_while_it_awaits():
    order: list[str] = []

    async def slow_double(xs):
        order.append("batch starts")
        await asyncio.sleep(0.05)
        order.append("batch ends")
        return [2 * x for x in xs]

    batcher = LoopBatcher(slow_double)

    async def other_work():
        await asyncio.sleep(0.01)
        order.append("other work")

    async def main():
        return await asyncio.gather(batcher.submit(1), batcher.submit(2), other_work())

    assert run(main())[:2] == [2, 4]
    assert order == ["batch starts", "other work", "batch ends"]


def test_requests_arriving_during_a_batch_form_the_next_one_batch_at_a_time():
    sizes: list[int] = []
    running = [0]

    async def record(xs):
        running[0] += 1
        sizes.append(len(xs) if running[0] == 1 else -1)  # -1: two batches overlapped
        await asyncio.sleep(0.05)
        running[0] -= 1
        return list(xs)

    batcher = LoopBatcher(record)

    async def later(x):
        await asyncio.sleep(0.01)  # while the first batch runs
        return await batcher.submit(x)

    async def main():
        return await asyncio.gather(batcher.submit(0), later(1), later(2))

    assert run(main()) == [0, 1, 2]
    assert sizes == [1, 2]


def test_under_load_the_next_batch_waits_for_company_too():
    """Requests that arrived while a batch ran wait ``window`` before the next batch, so a
    request sent just after that batch's replies joins them instead of running alone."""
    sizes: list[int] = []
    release = asyncio.Event()

    async def record(xs):
        sizes.append(len(xs))
        if len(sizes) == 1:
            await release.wait()
        return list(xs)

    batcher = LoopBatcher(record, window=0.5)

    async def main():
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)  # the first batch is running
        during = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.01)
        release.set()
        assert await first == 0
        after = asyncio.ensure_future(batcher.submit(2))  # as a client whose reply just went
        return await asyncio.gather(during, after)

    assert run(main()) == [1, 2]
    assert sizes == [1, 2]
