"""Reasons cite the user's own history items that contribute most to the recommendation."""

from __future__ import annotations

import numpy as np
import pytest

from prismrec.explain import Explanation, explain_item, reason_text, supporting_items

HISTORY_IDS = ["shoe", "pan", "vest", "novel"]
HISTORY = np.array([[1.0, 0.1, 0.0],    # shoe
                    [0.0, 1.0, 0.0],    # pan
                    [0.8, 0.0, 0.3],    # vest
                    [-1.0, 0.0, 0.0]])  # novel: points away from running
CANDIDATE = np.array([1.0, 0.0, 0.2])  # a running item
TITLES = {"shoe": "Trail Shoe X", "pan": "Frying Pan", "vest": "Hydration Vest Y",
          "novel": "Space Novel"}


def test_the_most_similar_history_items_support_the_recommendation():
    found = supporting_items(CANDIDATE, HISTORY, HISTORY_IDS, k=2)
    assert [i for i, _, _ in found] == ["vest", "shoe"]
    cos_vest = HISTORY[2] @ CANDIDATE / np.linalg.norm(HISTORY[2]) / np.linalg.norm(CANDIDATE)
    assert found[0][1] == pytest.approx(cos_vest)
    assert found[0][2] == 2


def test_an_item_seen_twice_is_cited_once_at_its_latest_position():
    ids = ["shoe", "pan", "shoe", "vest"]
    vecs = HISTORY[[0, 1, 0, 2]]
    found = supporting_items(np.array([1.0, 0.1, 0.0]), vecs, ids, k=2)
    assert [(i, p) for i, _, p in found] == [("shoe", 2), ("vest", 3)]


def test_items_pointing_away_are_never_cited():
    found = supporting_items(CANDIDATE, HISTORY, HISTORY_IDS, k=4)
    assert "novel" not in [i for i, _, _ in found]
    assert "pan" not in [i for i, _, _ in found]  # cosine exactly 0 is not support
    assert supporting_items(np.array([0.0, 0.0, 1.0]), HISTORY[:2], HISTORY_IDS[:2]) == []


def test_an_empty_history_or_k_zero_gives_no_support():
    assert supporting_items(CANDIDATE, np.zeros((0, 3)), [], k=2) == []
    assert supporting_items(CANDIDATE, HISTORY, HISTORY_IDS, k=0) == []


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="history_vecs"):
        supporting_items(CANDIDATE, HISTORY[:, :2], HISTORY_IDS)
    with pytest.raises(ValueError, match="3 ids for 4"):
        supporting_items(CANDIDATE, HISTORY, HISTORY_IDS[:3])


CONTRIB = np.array([0.4, -0.1, 0.9, 0.0])  # shoe, pan, vest, novel


def test_explanation_cites_the_largest_contributions_by_title():
    e = explain_item("new-shoe", 1, "running · trail", CONTRIB, HISTORY_IDS, TITLES)
    assert isinstance(e, Explanation)
    assert e.reason == ("serves your interest in running · trail; because you viewed "
                        "Hydration Vest Y and Trail Shoe X")
    assert e.supporting_ids == ["vest", "shoe"]
    assert e.supporting_titles == ["Hydration Vest Y", "Trail Shoe X"]
    assert e.to_dict()["supporting"][0] == {"item_id": "vest", "title": "Hydration Vest Y",
                                            "contribution": pytest.approx(0.9)}


def test_items_that_lower_or_do_not_change_the_score_are_never_cited():
    e = explain_item("x", 0, "running", CONTRIB, HISTORY_IDS, TITLES, k=4)
    assert e.supporting_ids == ["vest", "shoe"]
    none = explain_item("x", 0, "running", -np.abs(CONTRIB), HISTORY_IDS, TITLES)
    assert none.supporting == () and none.reason == "serves your interest in running"


def test_equal_contributions_prefer_the_more_recent_item():
    e = explain_item("x", 0, "a", np.array([0.5, 0.5]), ["old", "new"], {}, k=1,
                     positions=[3, 7])
    assert e.supporting_ids == ["new"]
    with pytest.raises(ValueError, match="2 contributions for 3"):
        explain_item("x", 0, "a", np.array([0.5, 0.5]), ["a", "b", "c"], {})


def test_missing_titles_fall_back_to_ids_and_the_verb_fits_the_domain():
    e = explain_item("m9", 0, "sci-fi", np.array([1.0]), ["m1"], {}, verb="watched", k=3)
    assert e.reason == "serves your interest in sci-fi; because you watched m1"


def test_without_support_the_reason_names_only_the_interest():
    assert reason_text("coffee", []) == "serves your interest in coffee"


def test_long_titles_are_shortened_at_a_word():
    title = "The Remarkably Long Title of an Extended Special Edition Vinyl Box Set Remastered"
    text = reason_text("jazz", [title, "B"], verb="bought")
    assert text.startswith("serves your interest in jazz; because you bought The Remarkably")
    assert "…" in text and text.endswith(" and B")
    assert len(text) < len("serves your interest in jazz; because you bought ") + 70
