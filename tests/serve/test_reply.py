"""The plain recommendation reply, written as bytes, equals the JSONResponse of its dict."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from prismrec.profile.live import Recommendations
from prismrec.serve.interests import fast_items
from prismrec.serve.reply import PlainReply

ids = st.text(min_size=1, max_size=12)
titles = st.dictionaries(ids, st.text(max_size=30), max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False)


def reference(user: str, recs: Recommendations, diversity: float, title_of) -> bytes:
    """What the route sent before: the dict of ``fast_items`` through ``JSONResponse``."""
    return JSONResponse({"user": user, "items": fast_items(recs, title_of),
                         "fallback": recs.fallback, "diversity": diversity,
                         "explained": False, "composed": False, "components": None,
                         "steering": None, "checkpoint": recs.checkpoint}).body


@st.composite
def replies(draw):
    n = draw(st.integers(0, 6))
    items = draw(st.lists(ids, min_size=n, max_size=n))
    fallback = draw(st.sampled_from([None, "popular"]))
    scores = draw(st.lists(st.integers(0, 10**6) | finite if fallback else finite,
                           min_size=n, max_size=n))
    because = draw(st.lists(st.none() | ids, min_size=n, max_size=n))
    sims = [None if b is None else draw(st.floats(0.0, 1.0)) for b in because]
    user = draw(ids)
    diversity = draw(st.floats(0.0, 1.0))
    return user, Recommendations(user, items, scores, because, sims, fallback,
                                 draw(st.text(max_size=10))), diversity


@settings(max_examples=300, deadline=None)
@given(replies(), titles)
def test_the_bytes_equal_the_json_response_of_the_dict(reply, title_map):
    user, recs, diversity = reply
    encoder = PlainReply()
    expected = reference(user, recs, diversity, title_map.get)
    assert encoder.encode(user, recs, diversity, title_map.get) == expected
    assert encoder.encode(user, recs, diversity, title_map.get) == expected  # from its cache


def test_a_new_title_map_is_not_answered_from_the_old_ones_cache():
    recs = Recommendations("ann", ["i1"], [1.5], ["i2"], [0.25], None, "ck")
    encoder = PlainReply()
    old, new = {"i1": "Old", "i2": "Before"}, {"i1": "New", "i2": "After"}
    assert b'"title":"Old"' in encoder.encode("ann", recs, 0.0, old.get)
    again = encoder.encode("ann", recs, 0.0, new.get)
    assert again == reference("ann", recs, 0.0, new.get)
    assert b"Old" not in again and b"Before" not in again


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_score_that_is_not_a_number_is_refused_as_json_response_does(bad):
    recs = Recommendations("ann", ["i1"], [bad], [None], [None], None, "ck")
    with pytest.raises(ValueError):
        reference("ann", recs, 0.0, {}.get)
    with pytest.raises(ValueError):
        PlainReply().encode("ann", recs, 0.0, {}.get)
