"""Item text is composed from catalogue fields by a small, documented template."""

from __future__ import annotations

import pandas as pd
import pytest

from prismrec.data import Catalog
from prismrec.errors import DataError
from prismrec.text import TextTemplate, compose_texts


def catalog(**columns) -> Catalog:
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame(columns, index=pd.Index([f"i{j}" for j in range(n)], name="item"))
    return Catalog(frame)


def test_fields_joined_in_template_order_with_list_fields_comma_joined():
    cat = catalog(title=["Trail runner"], brand=["Acme"], categories=[["Shoes", "Running"]],
                  description=["Light and grippy."], tags=[["trail", "outdoor"]])
    assert compose_texts(cat) == [
        "Trail runner. Shoes, Running. Acme. Light and grippy. trail, outdoor"
    ]


def test_default_template_uses_only_the_known_fields_present():
    cat = catalog(title=["Mug"], brand=["Delft"], price=[3.5])
    assert compose_texts(cat) == ["Mug. Delft"]


def test_explicit_fields_pick_and_order_columns_including_custom_ones():
    cat = catalog(title=["Dune"], author=["Frank Herbert"], brand=["Ace"])
    texts = compose_texts(cat, TextTemplate(fields=("author", "title"), sep=" | "))
    assert texts == ["Frank Herbert | Dune"]


def test_blank_fields_are_skipped_and_whitespace_collapsed():
    cat = catalog(title=["  Desk\n lamp  "], categories=[[]], brand=[""],
                  description=[None])
    assert compose_texts(cat) == ["Desk lamp"]


def test_no_double_full_stop_when_a_field_already_ends_with_one():
    cat = catalog(title=["Lamp."], brand=["Ikea."])
    assert compose_texts(cat) == ["Lamp. Ikea."]


def test_long_text_is_cut_at_a_word_boundary_within_max_chars():
    words = " ".join(f"word{i}" for i in range(100))
    (text,) = compose_texts(catalog(title=[words]), TextTemplate(max_chars=50))
    assert len(text) <= 50
    assert words.startswith(text)
    assert words[len(text)] == " "  # ends on a whole word


def test_max_chars_none_keeps_everything():
    words = "x" * 5000
    assert compose_texts(catalog(title=[words]), TextTemplate(max_chars=None)) == [words]


def test_missing_column_names_it_and_the_columns_present():
    cat = catalog(title=["a"], brand=["b"])
    with pytest.raises(DataError, match=r"'summary'.*columns present: 'title', 'brand'"):
        compose_texts(cat, TextTemplate(fields=("title", "summary")))


def test_catalogue_without_any_text_field_is_a_clear_error():
    with pytest.raises(DataError, match="none of the text fields.*price"):
        compose_texts(catalog(price=[1.0]))


def test_empty_text_is_an_error_naming_the_items():
    cat = catalog(title=["ok", " ", ""])
    with pytest.raises(DataError, match=r"2 item\(s\) have no text.*'i1', 'i2'.*allow_empty"):
        compose_texts(cat)


def test_allow_empty_keeps_empty_texts():
    assert compose_texts(catalog(title=["ok", ""]), allow_empty=True) == ["ok", ""]


def test_key_changes_with_every_setting_and_round_trips():
    base = TextTemplate()
    variants = [TextTemplate(fields=("title",)), TextTemplate(sep=" - "),
                TextTemplate(list_sep="/"), TextTemplate(max_chars=200)]
    assert len({base.key, *(v.key for v in variants)}) == 5
    for t in [base, *variants]:
        assert TextTemplate.from_dict(t.to_dict()) == t


@pytest.mark.parametrize("kwargs", [{"fields": ()}, {"fields": "title"}, {"max_chars": 0}])
def test_bad_template_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TextTemplate(**kwargs)


@pytest.mark.data
def test_amazon_scientific_texts_are_all_non_empty(shared_data):
    path = shared_data / "amazon-scientific-unisrec" / "Scientific.text"
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    cat = Catalog.from_frame(df, item="item_id:token", title="text:token_seq")
    texts = compose_texts(cat)
    assert len(texts) == 4385
    assert all(0 < len(t) <= 1000 for t in texts)
