"""Interest labels come from the catalogue's own words: distinctive, weighted, deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prismrec.data import Catalog
from prismrec.data.synthetic import generate
from prismrec.explain import CatalogText, defining_items, label_interest
from prismrec.explain._words import tokenize

ROWS = [
    # running
    ("r1", "Trail Running Shoes", "Grippy trail shoes for muddy running routes.", "running",
     "Stridex"),
    ("r2", "Lightweight Running Jacket", "A reflective jacket for running at dawn.", "running",
     "Pacefield"),
    ("r3", "Running Socks", "Cushioned socks that keep running feet dry.", "running", "Stridex"),
    ("r4", "Trail Hydration Vest", "Carry water on long trail runs.", "running", "Kinetra"),
    # kitchen
    ("k1", "Cast Iron Frying Pan", "Heats evenly for searing steak in the kitchen.", "kitchen",
     "Copperline"),
    ("k2", "Chef Knife", "A sharp knife for chopping onions and herbs.", "kitchen",
     "Hearthstone"),
    ("k3", "Stock Pot", "A deep pot for soups and stews on the hob.", "kitchen", "Copperline"),
    ("k4", "Wooden Spoon Set", "Spoons for stirring sauces in the kitchen.", "kitchen",
     "Panmaster"),
    # books
    ("b1", "Space Opera Novel", "A starship crew crosses the galaxy.", "books", "Nebula Press"),
    ("b2", "Robot Detective Novel", "A robot solves a murder on Mars.", "books", "Orbit House"),
    ("b3", "Time Travel Stories", "Short stories about travel through time.", "books",
     "Nebula Press"),
    ("b4", "Alien Contact Saga", "First contact with an alien galaxy empire.", "books",
     "Starward"),
]
KITCHEN_WORDS = set(tokenize(" ".join(r[1] + " " + r[2] for r in ROWS[4:8]))) - {"set"}
BOOK_WORDS = set(tokenize(" ".join(r[1] + " " + r[2] for r in ROWS[8:])))


def tiny_catalog(extra_category: str | None = None) -> Catalog:
    df = pd.DataFrame(ROWS, columns=["item", "title", "description", "cat", "brand"])
    if extra_category:
        df["cat"] = df["cat"] + "|" + extra_category
    return Catalog.from_frame(df, title="title", description="description", categories="cat",
                              brand="brand")


@pytest.fixture(scope="module")
def texts() -> CatalogText:
    cat = tiny_catalog()
    return CatalogText.from_catalog(cat, cat.ids)


def idx(texts: CatalogText, *ids: str) -> np.ndarray:
    return np.array([texts.item_ids.index(i) for i in ids])


def test_running_items_are_named_with_running_words_and_no_kitchen_or_book_words(texts):
    label = label_interest(idx(texts, "r1", "r2", "r3", "r4"), None, texts)
    assert "running" in label.words
    assert not set(label.words) & (KITCHEN_WORDS | BOOK_WORDS)
    assert len(label.words) == 3


def test_a_shared_category_names_the_interest_without_title_words(texts):
    label = label_interest(idx(texts, "k1", "k2", "k3", "k4"), None, texts)
    assert label.category == "kitchen"
    assert label.category_share == pytest.approx(1.0)
    assert label.text == "kitchen"
    assert label.source == "categories" and label.facets == ("kitchen",)


def test_a_mixed_set_is_named_by_its_most_common_categories_not_by_words(texts):
    label = label_interest(idx(texts, "r1", "r4", "k1", "k3"), np.array([1, 1, 1, 0.5]),
                           texts)
    assert label.source == "categories"
    assert label.text == "running · kitchen"  # running has the larger share (2 of 3.5)
    assert not set(label.words) & BOOK_WORDS


def test_without_categories_or_tags_the_distinctive_words_name_it():
    frame = tiny_catalog().frame.drop(columns=["categories"])
    texts = CatalogText.from_catalog(Catalog(frame), list(frame.index))
    label = label_interest(idx(texts, "r1", "r2", "r3", "r4"), None, texts)
    assert label.source == "words" and label.category is None
    assert label.text == " · ".join(label.words) and "running" in label.words


def test_two_shared_categories_name_the_interest_most_specific_first():
    df = pd.DataFrame({"item": [f"m{i}" for i in range(10)],
                       "title": [f"Movie number {i}" for i in range(10)],
                       "genres": ["Drama|Romance", "Drama|Romance", "Drama|Romance", "Drama",
                                  "Drama", "Comedy", "Comedy", "Action", "Action", "Drama"]})
    cat = Catalog.from_frame(df, title="title", categories="genres", list_sep="|")
    texts = CatalogText.from_catalog(cat, cat.ids)
    label = label_interest(np.arange(3), None, texts)  # three Drama|Romance movies
    assert label.text == "Romance · Drama"  # Romance is rarer in the catalogue: more specific
    one = label_interest(np.arange(3), None, texts, n_facets=1)
    assert one.text == "Romance"


def test_tags_name_the_interest_when_no_category_is_shared():
    df = pd.DataFrame({"item": ["a1", "a2", "a3", "a4", "a5", "a6"],
                       "title": ["China Crisis", "Enigma", "Duran Duran", "Metallica",
                                 "Slayer", "Megadeth"],
                       "tags": [["new wave", "80s"], ["new wave", "ambient"],
                                ["new wave", "80s"], ["thrash"], ["thrash"], ["thrash"]]})
    cat = Catalog.from_frame(df, title="title", tags="tags")
    texts = CatalogText.from_catalog(cat, cat.ids)
    label = label_interest(np.arange(3), None, texts)
    assert label.source == "tags"
    assert label.text.split(" · ")[0] == "new wave"
    assert "china" not in label.text.lower()


def test_weights_decide_which_items_define_the_interest(texts):
    items = idx(texts, "r1", "r2", "r3", "k2")
    light = label_interest(items, np.array([1.0, 1.0, 1.0, 0.01]), texts)
    heavy = label_interest(items, np.array([0.01, 0.01, 0.01, 1.0]), texts)
    assert "running" in light.words
    assert set(heavy.words) <= set(tokenize("Chef Knife sharp chopping onions herbs kitchen "
                                            "Hearthstone"))
    assert heavy.category == "kitchen"


def test_label_is_deterministic_and_independent_of_item_order(texts):
    a = label_interest(idx(texts, "b1", "b2", "b3", "b4"), None, texts)
    b = label_interest(idx(texts, "b4", "b3", "b2", "b1"), None, texts)
    assert a == b
    assert a == label_interest(idx(texts, "b1", "b2", "b3", "b4"), None, texts)


def test_a_category_every_item_has_never_leads_the_label():
    cat = tiny_catalog(extra_category="shop")
    texts = CatalogText.from_catalog(cat, cat.ids)
    label = label_interest(idx(texts, "b1", "b2", "b3", "b4"), None, texts)
    assert label.category == "books"
    assert "shop" not in label.words


def test_n_words_sets_the_number_of_parts(texts):
    label = label_interest(idx(texts, "r1", "r2", "r3", "r4"), None, texts, n_words=1)
    assert label.words == ("running",)
    assert label.text == "running"


def test_items_missing_from_the_catalogue_are_named_by_id():
    cat = tiny_catalog()
    texts = CatalogText.from_catalog(cat, [*cat.ids, "new-1", "new-2"])
    assert len(texts) == 14
    label = label_interest(np.array([12, 13]), np.array([1.0, 2.0]), texts)
    assert label.words == ()
    assert label.text == "new-2 · new-1"  # heaviest first


def test_bad_input_is_refused_with_a_message(texts):
    with pytest.raises(ValueError, match="0..11"):
        label_interest(np.array([0, 12]), None, texts)
    with pytest.raises(ValueError, match="non-negative"):
        label_interest(np.array([0, 1]), np.array([1.0, -1.0]), texts)
    with pytest.raises(ValueError, match="shape"):
        label_interest(np.array([0, 1]), np.array([1.0]), texts)
    with pytest.raises(ValueError, match="non-empty"):
        label_interest(np.array([], dtype=np.int64), None, texts)


def test_defining_items_are_the_nearest_by_cosine_with_positive_weights():
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [-1.0, 0.0], [2.0, 0.1]])
    order, w = defining_items(np.array([1.0, 0.0]), items, m=3)
    assert order.tolist() == [0, 4, 2]
    assert (w > 0).all() and w[0] == pytest.approx(1.0)


def test_title_map_gives_titles_by_item_id(texts):
    assert texts.title_map()["k2"] == "Chef Knife"


# --- the synthetic shop: the label of a category's items names that category ----------------


@pytest.fixture(scope="module")
def shop():
    return generate(n_users=20, n_items=600, n_categories=8, seed=2)


def test_each_synthetic_category_is_named_by_its_category(shop):
    texts = CatalogText.from_catalog(shop.catalog, shop.catalog.ids)
    cats = np.array([c[0] for c in shop.catalog.frame["categories"]])
    for name in shop.categories:
        label = label_interest(np.flatnonzero(cats == name), None, texts)
        assert label.category == name
        assert label.text == name


def test_without_categories_synthetic_label_words_are_most_frequent_in_that_category(shop):
    frame = shop.catalog.frame.drop(columns=["categories"])
    texts = CatalogText.from_catalog(Catalog(frame), shop.catalog.ids)
    cats = np.array([c[0] for c in shop.catalog.frame["categories"]])
    docs = [set(tokenize(f"{t} {d} {b}")) for t, d, b in
            zip(frame["title"], frame["description"], frame["brand"], strict=True)]
    for name in shop.categories:
        label = label_interest(np.flatnonzero(cats == name), None, texts)
        assert label.category is None and len(label.words) == 3
        assert label.source == "words"
        for word in label.words:
            rate = {c: np.mean([word in docs[i] for i in np.flatnonzero(cats == c)])
                    for c in shop.categories}
            assert max(rate, key=rate.get) == name, (name, word, rate)


# --- a real catalogue -------------------------------------------------------------------------


@pytest.mark.data
def test_movielens_genres_name_their_movies(shared_data):
    from prismrec.data import load_dataset

    ds = load_dataset("ml-latest-small", shared_data / "ml-latest-small")
    texts = CatalogText.from_catalog(ds.catalog, list(ds.items))
    for genre in ("Animation", "Horror", "Documentary", "Western"):
        members = texts.categories[:, texts.category_names.index(genre)].nonzero()[0]
        label = label_interest(members, None, texts)
        assert label.category == genre
        assert label.category_share == pytest.approx(1.0)
