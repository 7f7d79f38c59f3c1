"""exclusion_mask: business rules to a mask, loud about ids and categories it cannot match."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prismrec.data.catalog import Catalog
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError, UnknownIdError
from prismrec.retrieve import exclusion_mask


@pytest.fixture
def shop():
    vocab = Vocab(["a", "b", "c", "d"])
    catalog = Catalog.from_frame(pd.DataFrame({
        "item": ["a", "b", "c", "d", "zz"],  # "zz" is in the catalogue but not the index
        "title": ["A", "B", "C", "D", "Z"],
        "cats": ["toys|kids", "tools", "", "kids", "toys"],
    }), categories="cats")
    return vocab, catalog


def test_excluded_ids_are_marked(shop):
    vocab, _ = shop
    mask = exclusion_mask(4, exclude_ids=["c", "a"], item_vocab=vocab)
    assert mask.tolist() == [True, False, True, False]


def test_excluded_categories_mark_every_item_having_one(shop):
    vocab, catalog = shop
    mask = exclusion_mask(6, exclude_categories=["kids"], item_vocab=vocab, catalog=catalog)
    assert mask.tolist() == [True, False, False, True, False, False]
    both = exclusion_mask(4, exclude_ids=["b"], exclude_categories=["toys"],
                          item_vocab=vocab, catalog=catalog)
    assert both.tolist() == [True, True, False, False]


def test_nothing_to_exclude_gives_an_all_false_mask(shop):
    vocab, catalog = shop
    mask = exclusion_mask(4, exclude_ids=[], exclude_categories=[], item_vocab=vocab,
                          catalog=catalog)
    assert mask.dtype == np.bool_ and not mask.any() and mask.shape == (4,)


def test_unknown_ids_are_reported_not_dropped(shop):
    vocab, _ = shop
    with pytest.raises(UnknownIdError) as info:
        exclusion_mask(4, exclude_ids=["a", "nope", "zz"], item_vocab=vocab)
    assert "'nope'" in str(info.value) and "'zz'" in str(info.value)
    assert "2 excluded item id(s)" in str(info.value)


def test_unknown_category_lists_the_known_ones(shop):
    vocab, catalog = shop
    with pytest.raises(DataError) as info:
        exclusion_mask(4, exclude_categories=["Toys"], item_vocab=vocab, catalog=catalog)
    assert "'Toys'" in str(info.value) and "'kids', 'tools', 'toys'" in str(info.value)


def test_categories_need_a_catalogue(shop):
    vocab, _ = shop
    with pytest.raises(DataError, match="catalog="):
        exclusion_mask(4, exclude_categories=["toys"], item_vocab=vocab)


def test_mask_shorter_than_the_vocabulary_is_refused(shop):
    vocab, _ = shop
    with pytest.raises(ValueError, match="len\\(index\\)"):
        exclusion_mask(3, exclude_ids=["a"], item_vocab=vocab)
