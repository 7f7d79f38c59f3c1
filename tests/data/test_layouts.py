"""Each upstream layout on tiny files written here in the exact upstream format."""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile

import numpy as np
import pytest

from prismrec.data import DATASETS, download, list_datasets, load_dataset
from prismrec.data.layouts import amazon, lastfm, mind, movielens, recbole, sasrec
from prismrec.errors import DataError

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def write(path, text: str, encoding: str = "utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def write_gz(path, text: str):
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    return path


def seq_ids(ds, user: str) -> list[str]:
    return ds.items.ids(ds.sequences.row(ds.users.index_of(user)))


# ---------------------------------------------------------------- MovieLens


def flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES)


@pytest.fixture
def ml100k(tmp_path):
    d = tmp_path / "ml-100k"
    write(d / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250900\n")
    write(d / "u.item",
          f"242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|"
          f"{flags('Comedy')}\n"
          f"302|L.A. Confidential (1997)|01-Jan-1997||http://us.imdb.com/M/title-exact?L%2EA%2E|"
          f"{flags('Crime', 'Film-Noir', 'Thriller')}\n"
          f"1534|Café au lait (1993)|01-Jan-1993||http://x|{flags('Comedy')}\n",
          encoding="latin-1")
    write(d / "u.genre", "".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)) + "\n")
    return d


def test_movielens_100k(ml100k):
    ds = movielens.load(ml100k)
    assert ds.name == "ml-100k" and len(ds.users) == 2 and ds.sequences.n_events == 3
    assert seq_ids(ds, "196") == ["302", "242"]  # 881250900 comes before 881250949
    assert ds.interactions.frame["value"].tolist() == [3.0, 3.0, 5.0]
    cat = ds.catalog.frame
    assert cat.loc["302", "categories"] == ["Crime", "Film-Noir", "Thriller"]
    assert cat.loc["1534", "title"] == "Café au lait (1993)"  # latin-1 decoded
    assert "1534" in ds.items  # catalogue items without ratings are indexed too


def test_movielens_min_rating(ml100k):
    ds = movielens.load(ml100k, min_rating=4)
    assert ds.sequences.n_events == 1


def test_movielens_bad_rating_line_is_named(ml100k):
    write(ml100k / "u.data", "196\t242\t3\t881250949\n186\t302\t3\tnoon\n")
    with pytest.raises(DataError, match=r"u\.data, line 2: cannot parse timestamp 'noon'"):
        movielens.load(ml100k)


@pytest.fixture
def ml1m(tmp_path):
    d = tmp_path / "ml-1m"
    write(d / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(d / "movies.dat",
          "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
          "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
          "3::Star Wars: Episode V - Crème (1980)::Action|Sci-Fi\n", encoding="latin-1")
    return d


def test_movielens_1m(ml1m):
    ds = movielens.load(ml1m)
    assert ds.name == "ml-1m" and seq_ids(ds, "1") == ["1193", "661"]
    cat = ds.catalog.frame
    assert cat.loc["661", "categories"] == ["Animation", "Children's", "Musical"]
    assert cat.loc["3", "title"] == "Star Wars: Episode V - Crème (1980)"
    assert "tags" not in cat


def test_movielens_1m_without_ratings_says_so(ml1m):
    (ml1m / "ratings.dat").unlink()
    with pytest.raises(DataError, match="no ratings.dat"):
        movielens.load(ml1m)


def test_movielens_10m_tags(ml1m):
    write(ml1m / "tags.dat", "15::1193::nurse::1215184630\n20::1193::Jack Nicholson::1188263867\n"
                             "21::1193::jack nicholson::1188263868\n5::661::a::b::1188263869\n")
    ds = movielens.load(ml1m)
    assert ds.name == "ml-10m"
    assert ds.catalog.frame.loc["1193", "tags"] == ["Jack Nicholson", "nurse"]
    assert ds.catalog.frame.loc["661", "tags"] == ["a::b"]
    assert ds.catalog.frame.loc["3", "tags"] == []


def test_movielens_csv_release(tmp_path):
    d = tmp_path / "ml-latest-small"
    write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n"
                             "1,3,4.5,964981247\n2,1,2.5,1445714994\n")
    write(d / "movies.csv", 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
                            '3,"American President, The (1995)",Comedy|Drama|Romance\n'
                            "9,Empty (2001),(no genres listed)\n")
    write(d / "tags.csv", "userId,movieId,tag,timestamp\n2,1,pixar,1445714994\n"
                          "3,1,fun,1445714995\n4,1,Pixar,1445714996\n")
    ds = movielens.load(d)
    assert ds.name == "ml-latest-small" and seq_ids(ds, "1") == ["3", "1"]
    cat = ds.catalog.frame
    assert cat.loc["3", "title"] == "American President, The (1995)"
    assert cat.loc["9", "categories"] == []
    assert cat.loc["1", "tags"] == ["pixar", "fun"]  # two applications of pixar, any case
    assert ds.interactions.frame["value"].tolist() == [4.0, 4.5, 2.5]


def test_movielens_unknown_folder(tmp_path):
    write(tmp_path / "x" / "readme.txt", "hi")
    with pytest.raises(DataError, match="found: readme.txt"):
        movielens.load(tmp_path / "x")


# ---------------------------------------------------------------- RecBole


def test_recbole_atomic_files(tmp_path):
    write(tmp_path / "ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                 "1\t10\t4\t300\n1\t11\t5\t100\n2\t10\t3\t200\n")
    write(tmp_path / "ml.item", 'item_id:token\tmovie_title:token_seq\tgenre:token_seq\n'
                                '10\t"Quoted" Title\tAction Drama\n11\tOther\tComedy\n')
    ds = recbole.load(tmp_path)
    assert ds.name == "ml" and ds.has_time
    assert seq_ids(ds, "1") == ["11", "10"]
    assert ds.catalog.frame.loc["10", "title"] == '"Quoted" Title'
    assert ds.catalog.frame.loc["10", "categories"] == ["Action", "Drama"]


def test_recbole_needs_a_name_when_several(tmp_path):
    write(tmp_path / "a.inter", "user_id:token\titem_id:token\n1\t2\n")
    write(tmp_path / "b.inter", "user_id:token\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match="pass name="):
        recbole.load(tmp_path)
    assert not recbole.load(tmp_path, name="a").has_time


HEAD = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


@pytest.fixture
def presplit(tmp_path):
    """User 0: items 0..4 (plain prefixes). User 1: 5 6 7 8 2 with histories cut to 3 items."""
    write(tmp_path / "S.train.inter",
          HEAD + "0\t0 1\t2\n0\t0\t1\n1\t5 6 7\t8\n1\t5 6\t7\n1\t5\t6\n")
    write(tmp_path / "S.valid.inter", HEAD + "0\t0 1 2\t3\n1\t6 7 8\t2\n")
    write(tmp_path / "S.test.inter", HEAD + "0\t0 1 2 3\t4\n1\t7 8 2\t0\n")
    asins = ["A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8"]
    write(tmp_path / "S.item2index", "".join(f"{a}\t{k}\n" for k, a in enumerate(asins)))
    write(tmp_path / "S.user2index", "RA\t0\nRB\t1\n")
    write(tmp_path / "S.text", "item_id:token\ttext:token_seq\n"
                               "A2\tThing two. Cat A. Brand. \nA0\tThing zero. Cat A. Brand. \n")
    return tmp_path


def test_recbole_presplit_rebuilds_full_sequences(presplit):
    ds = recbole.load(presplit, name="S")
    assert not ds.has_time
    assert ds.items.to_list() == [str(k) for k in range(9)]  # item "k" has index k
    assert ds.sequences.to_lists() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 2, 0]]
    assert ds.sequences.row_times(1).tolist() == [0, 1, 2, 3, 4, 5]


def test_recbole_presplit_given_split(presplit):
    split = recbole.load(presplit, name="S").given_split
    assert split.name == "given"
    assert split.train.to_lists() == [[0, 1, 2], [5, 6, 7, 8]]  # everything before valid target
    assert split.valid.history.to_lists() == [[0, 1, 2], [6, 7, 8]]
    assert split.valid.targets.to_lists() == [[3], [2]]
    assert split.test.history.to_lists() == [[0, 1, 2, 3], [7, 8, 2]]
    assert split.test.targets.to_lists() == [[4], [0]]
    assert split.test.history.row_times(1).tolist() == [2, 3, 4]  # positions in the sequence
    assert split.test.targets.row_times(1).tolist() == [5]


def test_recbole_presplit_catalog_keyed_by_index(presplit):
    cat = recbole.load(presplit, name="S").catalog.frame
    assert cat.index.tolist() == ["0", "2"]
    assert cat.loc["2", "asin"] == "A2"
    assert cat.loc["2", "title"] == "Thing two. Cat A. Brand."


def test_recbole_presplit_inconsistent_rows(presplit):
    write(presplit / "S.valid.inter", HEAD + "0\t0 1 2\t3\n1\t6 5 8\t2\n")
    with pytest.raises(DataError, match=r"S\.valid\.inter, line 3: the history is not"):
        recbole.load(presplit, name="S")


# ---------------------------------------------------------------- SASRec (ml-1m-sas)


def test_sasrec_skip_one_split(tmp_path):
    d = tmp_path / "ml-1m-sas"
    # user 1: 1 2 3 [4] 5 (second-to-last unknown); user 2 is a validation user: 2 3 4 1 5 6
    write(d / "train/input.txt", "1 2 3\n2 3 4\n")
    write(d / "val/input.txt", "2 3 4 1\n")
    write(d / "val/output.txt", "5\n")
    write(d / "test/output.txt", "5\n6\n")
    write(d / "sas_to_original_items.txt", "1 1193\n2 661\n3 914\n4 3408\n5 2355\n6 1197\n")
    write(tmp_path / "ml-1m" / "movies.dat", "1193::Cuckoo (1975)::Drama\n661::Peach (1996)::"
                                             "Animation\n", encoding="latin-1")
    ds = sasrec.load(d)
    s = ds.given_split
    assert s.train.to_lists() == [[0, 1, 2], [1, 2, 3]]
    assert s.valid.users.tolist() == [1]
    assert s.valid.history.to_lists() == [[1, 2, 3, 0]] and s.valid.targets.to_lists() == [[4]]
    assert s.test.history.to_lists() == [[0, 1, 2], [1, 2, 3, 0]]
    assert s.test.targets.to_lists() == [[4], [5]]
    assert s.test.targets.times.tolist() == [4.0, 5.0]  # one position skipped
    assert ds.sequences.to_lists() == [[0, 1, 2, 4], [1, 2, 3, 0, 4, 5]]
    assert ds.sequences.row_times(0).tolist() == [0, 1, 2, 4]
    assert ds.catalog.frame.loc["1", "title"] == "Cuckoo (1975)"
    assert ds.catalog.frame.loc["2", "movie_id"] == "661"


# ---------------------------------------------------------------- Amazon


def test_amazon_2014_gzip_and_loose_meta(tmp_path):
    reviews = [{"reviewerID": "A2", "asin": "B1", "overall": 5.0, "unixReviewTime": 1360000000,
                "reviewText": "great", "helpful": [0, 0]},
               {"reviewerID": "A2", "asin": "B0", "overall": 4.0, "unixReviewTime": 1350000000,
                "reviewText": "ok", "helpful": [1, 2]}]
    write_gz(tmp_path / "reviews_Beauty_5.json.gz", "".join(json.dumps(r) + "\n" for r in reviews))
    meta = ("{'asin': 'B0', 'title': 'Soap &amp; Co', 'categories': [['Beauty', 'Bath'], "
            "['Beauty', 'Soap']], 'salesRank': {'Beauty': 5}}\n"
            "{'asin': 'B1', 'description': 'A brush', 'brand': 'Brushy', "
            "'categories': [['Beauty']]}\n")
    write_gz(tmp_path / "meta_Beauty.json.gz", meta)
    ds = amazon.load(tmp_path)
    assert ds.name == "Beauty" and seq_ids(ds, "A2") == ["B0", "B1"]
    cat = ds.catalog.frame
    assert cat.loc["B0", "title"] == "Soap & Co"
    assert cat.loc["B0", "categories"] == ["Beauty", "Bath", "Soap"]
    assert cat.loc["B1", "brand"] == "Brushy" and cat.loc["B1", "description"] == "A brush"


def test_amazon_2014_python_dict_reviews(tmp_path):
    write_gz(tmp_path / "reviews_Toys.json.gz",
             "{'reviewerID': 'A1', 'asin': 'T1', 'overall': 3.0, 'unixReviewTime': 20, "
             "'summary': \"It's fine\"}\n"
             "{'reviewerID': 'A1', 'asin': 'T2', 'overall': 1.0, 'unixReviewTime': 10}\n")
    ds = amazon.load(tmp_path)
    assert ds.name == "Toys" and seq_ids(ds, "A1") == ["T2", "T1"]
    assert ds.catalog is None


def test_amazon_2018_plain_json_duplicates_and_lists(tmp_path):
    r = {"overall": 4.0, "verified": True, "reviewTime": "09 4, 2015", "reviewerID": "U1",
         "asin": "X1", "style": {"Size:": "L"}, "unixReviewTime": 1441324800, "vote": "2"}
    lines = [r, r, {**r, "asin": "X2", "unixReviewTime": 1441324900}]
    write(tmp_path / "Industrial_and_Scientific_5.json", "".join(json.dumps(x) + "\n"
                                                                  for x in lines))
    meta = [{"asin": "X1", "title": "Scale", "category": ["Industrial & Scientific", "Lab"],
             "description": ["Weighs", "things"], "brand": "Acme"},
            {"asin": "X1", "title": "Scale again"}]
    write(tmp_path / "meta_Industrial_and_Scientific.json", "".join(json.dumps(m) + "\n"
                                                                     for m in meta))
    ds = amazon.load(tmp_path)
    assert seq_ids(ds, "U1") == ["X1", "X2"]  # the verbatim repeat is dropped, and counted
    assert ds.dropped() == {"repeated (user, item, time) reviews": 1}
    kept = amazon.load(tmp_path, drop_duplicates=False)
    assert seq_ids(kept, "U1") == ["X1", "X1", "X2"] and kept.dropped() == {}
    assert kept.info["kept_duplicates"] == 1
    cat = ds.catalog.frame
    assert cat.loc["X1", "title"] == "Scale" and cat.loc["X1", "description"] == "Weighs things"
    assert cat.loc["X1", "categories"] == ["Industrial & Scientific", "Lab"]


def test_amazon_several_reviews_files_need_a_choice(tmp_path):
    write(tmp_path / "A_5.json", '{"reviewerID": "u", "asin": "a", "overall": 1, '
                                 '"unixReviewTime": 1}\n')
    write(tmp_path / "B_5.json", '{"reviewerID": "u", "asin": "b", "overall": 1, '
                                 '"unixReviewTime": 1}\n')
    with pytest.raises(DataError, match="pass reviews="):
        amazon.load(tmp_path)
    assert amazon.load(tmp_path, reviews="B_5.json").catalog is None


# ---------------------------------------------------------------- MIND


def test_mind_clicks_and_news(tmp_path):
    write(tmp_path / "behaviors.tsv",
          "1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN10-0 N11-1 N12-1\n"
          "2\tU2\t11/11/2019 8:00:00 AM\t\tN10-1\n"
          "3\tU1\t11/12/2019 1:00:00 PM\tN1 N2\tN13-0\n")
    write(tmp_path / "news.tsv",
          'N1\tsports\tfootball_nfl\t"Quoted" headline\tAn abstract.\thttps://x\t[]\t[]\n'
          "N11\tnews\tnewsus\tTitle 11\t\thttps://y\t[]\t[]\n")
    ds = mind.load(tmp_path)
    f = ds.interactions.frame
    u1 = f[f["user"] == "U1"]
    assert u1["item"].tolist() == ["N1", "N2", "N11", "N12"]
    assert u1["event"].tolist() == ["history", "history", "click", "click"]
    t0 = 1573463158.0  # 2019-11-11 09:05:58 UTC
    assert u1["timestamp"].tolist() == [t0 - 2, t0 - 1, t0, t0]
    assert seq_ids(ds, "U2") == ["N10"]
    cat = ds.catalog.frame
    assert cat.loc["N1", "title"] == '"Quoted" headline'
    assert cat.loc["N1", "description"] == "An abstract."
    assert cat.loc["N1", "categories"] == ["sports", "football_nfl"]


def test_mind_folder_of_releases_takes_each_history_once(tmp_path):
    write(tmp_path / "MINDsmall_train" / "behaviors.tsv",
          "1\tU1\t11/11/2019 9:00:00 AM\tN1\tN2-1\n")
    write(tmp_path / "MINDsmall_dev" / "behaviors.tsv",
          "7\tU1\t11/15/2019 9:00:00 AM\tN1\tN3-1 N4-0\n")
    ds = load_dataset("mind", tmp_path)
    assert seq_ids(ds, "U1") == ["N1", "N2", "N3"]
    assert ds.catalog is None


def test_mind_bad_time_is_named(tmp_path):
    write(tmp_path / "behaviors.tsv", "1\tU1\tyesterday\tN1\tN2-1\n"
                                      "2\tU2\t11/15/2019 8:55:22 AM\tN1\tN2-1 N3-0\n")
    with pytest.raises(DataError, match=r"behaviors\.tsv, line 1: cannot parse time"):
        mind.load(tmp_path)
    ds = mind.load(tmp_path, strict=False)
    assert ds.dropped() == {"impressions with a bad time or user (--no-strict)": 1}
    assert seq_ids(ds, "U2") == ["N1", "N2"]


# ---------------------------------------------------------------- Last.fm


@pytest.fixture
def hetrec(tmp_path):
    write(tmp_path / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n"
                                         "3\t51\t5\n")
    write(tmp_path / "artists.dat", "id\tname\turl\tpictureURL\n51\tDuran Duran\t"
                                    "http://www.last.fm/music/Duran+Duran\thttp://p/1.jpg\n"
                                    "52\tMorcheeba\thttp://www.last.fm/music/Morcheeba\t\n")
    write(tmp_path / "tags.dat", "tagID\ttagValue\n1\tmetal\n2\tnew wave\n3\tchill-out\n"
                                 "4\tfrançais\n", encoding="latin-1")
    write(tmp_path / "user_taggedartists-timestamps.dat",
          "userID\tartistID\ttagID\ttimestamp\n2\t52\t3\t1241128800000\n"
          "2\t51\t2\t1238536800000\n2\t51\t4\t1238536800000\n3\t51\t2\t1277935200000\n")
    return tmp_path


def test_lastfm_hetrec_tag_events(hetrec):
    ds = lastfm.load(hetrec)
    f = ds.interactions.frame
    assert list(zip(f["user"], f["item"], f["timestamp"], f["value"], strict=True)) == [
        ("2", "52", 1241128800.0, 11690.0), ("2", "51", 1238536800.0, 13883.0),
        ("3", "51", 1277935200.0, 5.0)]  # two tags at one time are one event
    assert seq_ids(ds, "2") == ["51", "52"]
    cat = ds.catalog.frame
    assert cat.loc["51", "title"] == "Duran Duran"
    assert cat.loc["51", "tags"] == ["new wave", "français"]
    assert cat.loc["51", "categories"] == ["new wave", "français"]  # tags name interests
    assert ds.info["events_file"] == "user_taggedartists-timestamps.dat"
    assert ds.dropped() == {"tag applications merged into one (user, artist, time) event": 1}
    every_tag = lastfm.load(hetrec, drop_duplicates=False)
    assert every_tag.sequences.n_events == 4 and every_tag.dropped() == {}


def test_lastfm_hetrec_reads_the_day_month_year_tag_file(hetrec):
    (hetrec / "user_taggedartists-timestamps.dat").unlink()
    write(hetrec / "user_taggedartists.dat",
          "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t52\t3\t1\t5\t2009\n"
          "2\t51\t2\t1\t4\t2009\n2\t51\t4\t1\t4\t2009\n3\t51\t2\t1\t7\t2010\n")
    ds = lastfm.load(hetrec)
    assert ds.info["events_file"] == "user_taggedartists.dat"
    f = ds.interactions.frame
    assert list(zip(f["user"], f["item"], f["timestamp"], strict=True)) == [
        ("2", "52", 1241136000.0), ("2", "51", 1238544000.0), ("3", "51", 1277942400.0)]
    assert seq_ids(ds, "2") == ["51", "52"]
    assert ds.catalog.frame.loc["51", "categories"] == ["new wave", "français"]


def test_lastfm_hetrec_listens(hetrec):
    ds = lastfm.load(hetrec, events="listens")
    assert not ds.has_time and ds.interactions.frame["value"].tolist() == [13883, 11690, 5]


def test_lastfm_1k_tracks(tmp_path):
    write(tmp_path / lastfm.LOG_1K,
          "user_000001\t2009-05-04T23:08:57Z\tf1b1cf71-bd35-4e99-8624-24a6e15f133a\tDeep Dish\t"
          "\tFuck Me Im Famous (Pacha Ibiza)-09-28-2007\n"
          "user_000001\t2009-05-04T13:54:10Z\ta7f7df4a-77d8-4f12-8acd-5c60c93f4de8\t坂本龍一\t"
          "f7c1f8f8-b935-45ed-8fc8-7def69d92a10\tThe Last Emperor (Theme)\n")
    ds = lastfm.load(tmp_path)
    key = "Deep Dish — Fuck Me Im Famous (Pacha Ibiza)-09-28-2007"
    assert seq_ids(ds, "user_000001") == ["f7c1f8f8-b935-45ed-8fc8-7def69d92a10", key]
    cat = ds.catalog.frame
    assert cat.loc[key, "categories"] == ["Deep Dish"]
    assert cat.loc["f7c1f8f8-b935-45ed-8fc8-7def69d92a10", "title"] == "The Last Emperor (Theme)"


# ---------------------------------------------------------------- registry


def test_registry_lists_the_promised_datasets():
    names = {i.name for i in list_datasets()}
    assert {"ml-100k", "ml-1m", "ml-10m", "ml-latest-small", "ml-latest", "ml-25m",
            "amazon-scientific", "recbole", "amazon-2014", "amazon-2018", "mind",
            "lastfm-hetrec", "lastfm-1k", "ml-1m-sas"} <= names
    assert all(callable(i.loader) for i in list_datasets())


def test_load_dataset_names_the_dataset(ml100k):
    assert load_dataset("ml-100k", ml100k).name == "ml-100k"


def test_load_dataset_missing_files_lists_expected_and_found(ml1m):
    (ml1m / "ratings.dat").unlink()
    with pytest.raises(DataError) as err:
        load_dataset("ml-1m", ml1m)
    assert "ratings.dat missing" in str(err.value) and "found: movies.dat" in str(err.value)


def test_load_dataset_missing_directory_and_unknown_name(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset("ml-100k", tmp_path / "absent")
    with pytest.raises(DataError, match="unknown dataset 'ml-7'"):
        load_dataset("ml-7", tmp_path)


@pytest.fixture
def archive(tmp_path, ml100k):
    path = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in ml100k.iterdir():
            zf.write(f, f"ml-100k/{f.name}")
    return path


def test_download_verifies_sha256_and_unpacks(tmp_path, archive):
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = download("ml-100k", tmp_path / "dl", url=archive.as_uri(), sha256=sha)
    assert out == tmp_path / "dl" / "ml-100k"
    assert load_dataset("ml-100k", out).sequences.n_events == 3


def test_download_rejects_a_wrong_checksum(tmp_path, archive):
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        download("ml-100k", tmp_path / "dl", url=archive.as_uri(), sha256="0" * 64)
    assert list((tmp_path / "dl").iterdir()) == []


def test_download_needs_a_checksum(tmp_path, archive):
    assert DATASETS["ml-latest"].sha256 is None
    with pytest.raises(DataError, match="pass sha256="):
        download("ml-latest", tmp_path / "dl", url=archive.as_uri())


def test_registered_checksums_look_like_sha256():
    for info in list_datasets():
        if info.sha256 is not None:
            assert len(info.sha256) == 64 and int(info.sha256, 16) >= 0
            assert info.download_url is not None
    assert np.all([i.homepage is None or i.homepage.startswith("http")
                   for i in list_datasets()])
