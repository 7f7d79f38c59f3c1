"""read_events / read_catalog: every supported format, and errors that point at the line."""

from __future__ import annotations

import gzip
import json
import logging

import pandas as pd
import pytest

from prismrec.data import read_catalog, read_events
from prismrec.errors import DataError

EVENTS_CSV = "user,item,timestamp\nu1,i1,100\nu1,i2,200\nu2,i1,150\n"


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def rows(inter) -> list[tuple]:
    f = inter.frame
    return list(zip(f["user"], f["item"], f["timestamp"], strict=True))


# ---------------------------------------------------------------- formats


def test_csv_gives_string_ids_and_float_seconds_in_input_order(tmp_path):
    inter = read_events(write(tmp_path / "e.csv", EVENTS_CSV))
    assert rows(inter) == [("u1", "i1", 100.0), ("u1", "i2", 200.0), ("u2", "i1", 150.0)]
    assert inter.has_time and inter.frame.attrs["skipped"] == 0


def test_ids_keep_leading_zeros(tmp_path):
    inter = read_events(write(tmp_path / "e.csv", "user,item,timestamp\n007,0012,1\n"))
    assert rows(inter) == [("007", "0012", 1.0)]


def test_column_names_are_mapped(tmp_path):
    path = write(tmp_path / "e.csv", "uid,iid,when,stars,kind\na,x,5,4.5,view\n")
    inter = read_events(path, user="uid", item="iid", timestamp="when", value="stars",
                        event="kind")
    assert rows(inter) == [("a", "x", 5.0)]
    assert inter.frame["value"].tolist() == [4.5]
    assert inter.frame["event"].tolist() == ["view"]


def test_iso_date_times_become_unix_seconds(tmp_path):
    path = write(tmp_path / "e.csv", "user,item,timestamp\na,x,1970-01-02T00:00:00Z\n"
                                     "a,y,1970-01-01 00:01:00\n")
    assert read_events(path).frame["timestamp"].tolist() == [86400.0, 60.0]


@pytest.mark.parametrize("first", ["30", "1970-01-01T00:00:30Z"])
def test_numbers_and_date_times_mixed_in_one_column(tmp_path, first):
    path = write(tmp_path / "e.csv", f"user,item,timestamp\na,x,{first}\na,y,60\n"
                                     "a,z,1970-01-01T00:02:00+00:00\n")
    assert read_events(path).frame["timestamp"].tolist() == [30.0, 60.0, 120.0]


def test_tsv_by_suffix(tmp_path):
    inter = read_events(write(tmp_path / "e.tsv", EVENTS_CSV.replace(",", "\t")))
    assert len(inter) == 3


@pytest.mark.parametrize("sep", [";", "|", "\t"])
def test_separator_is_sniffed_for_txt(tmp_path, sep):
    inter = read_events(write(tmp_path / "e.txt", EVENTS_CSV.replace(",", sep)))
    assert rows(inter)[0] == ("u1", "i1", 100.0)


def test_gzipped_csv(tmp_path):
    path = tmp_path / "e.csv.gz"
    path.write_bytes(gzip.compress(EVENTS_CSV.encode()))
    assert len(read_events(path)) == 3


def test_headerless_file_with_names(tmp_path):
    path = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    inter = read_events(path, format="tsv", names=["user", "item", "rating", "timestamp"],
                        value="rating")
    assert rows(inter) == [("196", "242", 881250949.0), ("186", "302", 891717742.0)]


def test_parquet(tmp_path):
    path = tmp_path / "e.parquet"
    pd.DataFrame({"user": [1, 2], "item": ["a", "b"],
                  "timestamp": pd.to_datetime(["1970-01-01 00:00:10", "1970-01-01 00:00:20"])}
                 ).to_parquet(path)
    assert rows(read_events(path)) == [("1", "a", 10.0), ("2", "b", 20.0)]


@pytest.mark.parametrize("name", ["e.jsonl", "e.ndjson", "e.jsonl.gz"])
def test_json_lines(tmp_path, name):
    text = "".join(json.dumps({"user": u, "item": i, "timestamp": t, "extra": [1]}) + "\n"
                   for u, i, t in [(1, "x", 3), (2, "y", 4)])
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    assert rows(read_events(path)) == [("1", "x", 3.0), ("2", "y", 4.0)]


def test_python_dict_lines_need_loose(tmp_path):
    path = write(tmp_path / "e.json", "{'user': 'a', 'item': 'x', 'timestamp': 1}\n")
    with pytest.raises(DataError, match="line 1"):
        read_events(path)
    assert rows(read_events(path, loose=True)) == [("a", "x", 1.0)]


def test_format_argument_overrides_the_suffix(tmp_path):
    path = write(tmp_path / "events.log", EVENTS_CSV)
    with pytest.raises(DataError, match="format="):
        read_events(path)
    assert len(read_events(path, format="csv")) == 3


def test_no_timestamp_column_means_file_order(tmp_path):
    inter = read_events(write(tmp_path / "e.csv", "user,item\na,x\na,y\n"), timestamp=None)
    assert not inter.has_time
    assert inter.frame["timestamp"].tolist() == [0.0, 1.0]


# ---------------------------------------------------------------- errors


def test_file_not_found(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_events(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_events(write(tmp_path / "e.csv", ""))


def test_header_only(tmp_path):
    with pytest.raises(DataError, match="no data rows"):
        read_events(write(tmp_path / "e.csv", "user,item,timestamp\n"))


def test_missing_column_lists_the_columns_found(tmp_path):
    path = write(tmp_path / "e.csv", "user,product,timestamp\na,x,1\n")
    with pytest.raises(DataError) as err:
        read_events(path)
    msg = str(err.value)
    assert "'item'" in msg and "'user', 'product', 'timestamp'" in msg and "e.csv" in msg


def test_wrong_separator_gets_a_hint(tmp_path):
    path = write(tmp_path / "e.csv", EVENTS_CSV.replace(",", ";"))
    with pytest.raises(DataError, match="sep=';'"):
        read_events(path, sep=",")


def test_bad_timestamp_names_the_file_line(tmp_path):
    # line 1 header, line 3 blank: the bad row is on line 5 of the file
    path = write(tmp_path / "e.csv", "user,item,timestamp\na,x,1\n\na,y,2\nb,z,yesterday\n")
    with pytest.raises(DataError, match=r"e\.csv, line 5: cannot parse timestamp 'yesterday'"):
        read_events(path)


def test_bad_timestamp_in_json_lines_names_the_exact_line(tmp_path):
    lines = ['{"user": "a", "item": "x", "timestamp": 1}', "",
             '{"user": "a", "item": "y", "timestamp": "soon"}']
    path = write(tmp_path / "e.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"e\.jsonl, line 3: cannot parse timestamp 'soon'"):
        read_events(path)


def test_invalid_json_line(tmp_path):
    path = write(tmp_path / "e.jsonl", '{"user": "a", "item": "x", "timestamp": 1}\n{"user": \n')
    with pytest.raises(DataError, match=r"line 2: not a valid JSON object"):
        read_events(path)


def test_bad_encoding_suggests_an_encoding(tmp_path):
    path = write(tmp_path / "e.csv", "user,item,timestamp\na,x,1\nb,café,2\n", "latin-1")
    with pytest.raises(DataError, match=r"line 3: .*not valid utf-8.*encoding="):
        read_events(path)
    assert read_events(path, encoding="latin-1").frame["item"].tolist() == ["x", "café"]


def test_value_that_is_not_a_number(tmp_path):
    path = write(tmp_path / "e.csv", "user,item,timestamp,r\na,x,1,5\na,y,2,five\n")
    with pytest.raises(DataError, match="line 3: value 'five'"):
        read_events(path, value="r")


def test_missing_id(tmp_path):
    with pytest.raises(DataError, match="line 2: missing item id"):
        read_events(write(tmp_path / "e.csv", "user,item,timestamp\na,,1\n"))


# ---------------------------------------------------------------- lenient mode


def test_lenient_skips_bad_rows_counts_them_and_logs(tmp_path, caplog):
    path = write(tmp_path / "e.csv", "user,item,timestamp\na,x,1\nb,,2\nc,y,never\nd,z,4\n")
    with caplog.at_level(logging.WARNING, logger="prismrec.data.readers"):
        inter = read_events(path, strict=False)
    assert inter.frame["user"].tolist() == ["a", "d"]
    assert inter.frame.attrs["skipped"] == 2
    assert inter.frame.attrs["skipped_reasons"] == {"missing item id (column 'item')": 1,
                                                    "unparsable timestamp": 1}
    assert "skipped 2 bad row(s)" in caplog.text


def test_lenient_json_lines_skip_broken_lines(tmp_path):
    path = write(tmp_path / "e.jsonl", '{"user": "a", "item": "x", "timestamp": 1}\nnot json\n'
                                       '{"user": "b", "item": "y", "timestamp": 2}\n')
    inter = read_events(path, strict=False)
    assert inter.frame["user"].tolist() == ["a", "b"]
    assert inter.frame.attrs["skipped_reasons"] == {"not a valid JSON object": 1}


def test_lenient_with_nothing_left_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no usable rows"):
        read_events(write(tmp_path / "e.csv", "user,item,timestamp\na,x,?\n"), strict=False)


# ---------------------------------------------------------------- catalogue


def test_catalog_finds_known_text_columns(tmp_path):
    path = write(tmp_path / "items.csv", "item,title,categories,price\n1,Alpha,a|b,3\n2,Beta,,4\n")
    cat = read_catalog(path)
    assert cat.ids == ["1", "2"]
    assert cat.frame.loc["1", "categories"] == ["a", "b"]
    assert cat.frame.loc["2", "categories"] == []
    assert cat.text_fields == ["title", "categories"]


def test_catalog_columns_named_explicitly_and_list_sep(tmp_path):
    path = write(tmp_path / "items.tsv", "id\tname\tgenres\nm1\tAlien\tHorror, Sci-Fi\n")
    cat = read_catalog(path, item="id", title="name", categories="genres", list_sep=",")
    assert cat.frame.loc["m1", "title"] == "Alien"
    assert cat.frame.loc["m1", "categories"] == ["Horror", "Sci-Fi"]


def test_catalog_from_json_lines_with_real_lists(tmp_path):
    recs = [{"item": "a", "title": "A", "tags": ["x", "y"]}, {"item": "b", "title": "B"}]
    path = write(tmp_path / "items.jsonl", "".join(json.dumps(r) + "\n" for r in recs))
    cat = read_catalog(path)
    assert cat.frame.loc["a", "tags"] == ["x", "y"] and cat.frame.loc["b", "tags"] == []


def test_catalog_without_text_columns(tmp_path):
    with pytest.raises(DataError, match="no text column"):
        read_catalog(write(tmp_path / "items.csv", "item,price\n1,3\n"))


def test_catalog_repeated_item(tmp_path):
    path = write(tmp_path / "items.csv", "item,title\n1,A\n2,B\n1,C\n")
    with pytest.raises(DataError, match="line 4: item id '1' appears a second time"):
        read_catalog(path)
    cat = read_catalog(path, strict=False)
    assert cat.frame["title"].tolist() == ["A", "B"] and cat.frame.attrs["skipped"] == 1

