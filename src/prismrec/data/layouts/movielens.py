"""GroupLens MovieLens: 100K (u.data/u.item), 1M and 10M (``::`` .dat files), and the CSV
releases (latest, latest-small, 20M, 25M).

Events are ratings (``value`` = stars). The catalogue has the title, genres as
``categories`` and, where the release has tag applications, the distinct tags per movie
(most applied first) as ``tags``. The variant is recognised from the files present.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from prismrec.data._tables import read_table
from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.interactions import Interactions
from prismrec.data.layouts._common import (
    attach_lists,
    check_dir,
    flags_to_lists,
    listing,
    read_lines,
    split_fields,
    tags_per_item,
)
from prismrec.data.readers import read_events
from prismrec.errors import DataError

GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
]
NO_GENRE = "(no genres listed)"


def load(data_dir: Path, *, name: str | None = None, min_rating: float | None = None,
         strict: bool = True) -> Dataset:
    """Ratings and movies from an unpacked MovieLens folder (``ml-100k/``, ``ml-1m/``, ...).

    ``min_rating`` keeps only ratings at or above it (e.g. 4 for "liked" events).
    """
    d = check_dir(data_dir, "movielens")
    if (d / "u.data").exists():
        inter, catalog, variant = _load_100k(d, strict)
    elif (d / "ratings.dat").exists():
        inter, catalog, variant = _load_dat(d, strict)
    elif (d / "ratings.csv").exists():
        inter, catalog, variant = _load_csv(d, strict)
    elif (d / "movies.dat").exists():
        raise DataError(
            f"movielens: {d} has movies.dat but no ratings.dat, so there are no events to load "
            f"(found: {listing(d)}). Add ratings.dat from the official ml-1m.zip "
            "(https://grouplens.org/datasets/movielens/1m/), or use ml-1m-sas / ml-100k."
        )
    else:
        raise DataError(
            f"movielens: {d} has none of u.data (100K), ratings.dat (1M/10M) or ratings.csv "
            f"(latest/20M/25M); found: {listing(d)}"
        )
    if min_rating is not None:
        inter = inter.select(inter.frame["value"].to_numpy() >= min_rating)
    return Dataset.from_interactions(name or variant, inter, catalog, layout="movielens",
                                     variant=variant, min_rating=min_rating)


def _load_100k(d: Path, strict: bool) -> tuple[Interactions, Catalog | None, str]:
    inter = read_events(d / "u.data", format="tsv", names=["user", "item", "rating", "timestamp"],
                        value="rating", strict=strict)
    catalog = None
    if (d / "u.item").exists():
        genres = GENRES_100K
        if (d / "u.genre").exists():
            genres = split_fields(read_lines(d / "u.genre", "latin-1"), "|", 2, d / "u.genre")[0]
            genres = genres.tolist()
        catalog = _read_u_item(d / "u.item", genres)
    return inter, catalog, "ml-100k"


def _read_u_item(path: Path, genres: list[str]) -> Catalog:
    """``id|title|release date|video release date|IMDb URL|<one 0/1 flag per genre>``."""
    raw = pd.read_csv(path, sep="|", header=None, encoding="latin-1", dtype=str,
                      keep_default_na=False, quoting=csv.QUOTE_NONE)
    if raw.shape[1] != 5 + len(genres):
        raise DataError(f"{path}: expected {5 + len(genres)} '|'-separated fields per line "
                        f"(5 + one flag per genre), found {raw.shape[1]}")
    flags = raw.iloc[:, 5:].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy() > 0
    df = pd.DataFrame({"item": raw[0], "title": raw[1],
                       "categories": flags_to_lists(flags, genres)})
    cat = Catalog.from_frame(df, categories="categories", source=str(path))
    cat.frame["release_date"] = raw[2].to_numpy()
    cat.frame["imdb_url"] = raw[4].to_numpy()
    return cat


def read_movies_dat(path: Path) -> Catalog:
    """``MovieID::Title::Genres`` (latin-1), as in ml-1m and ml-10m."""
    parts = split_fields(read_lines(path, "latin-1"), "::", 3, path)
    df = pd.DataFrame({"item": parts[0].str.strip(), "title": parts[1], "categories": parts[2]})
    return Catalog.from_frame(df, categories="categories", list_sep="|", source=str(path))


def _load_dat(d: Path, strict: bool) -> tuple[Interactions, Catalog | None, str]:
    # "1::1193::5::978300760": splitting on ":" gives empty fields between the "::" pairs,
    # which keeps pandas' fast C parser (a two-character separator would need the slow one).
    names = ["user", "_a", "item", "_b", "rating", "_c", "timestamp"]
    inter = read_events(d / "ratings.dat", format="csv", sep=":", names=names, value="rating",
                        encoding="latin-1", strict=strict)
    catalog = read_movies_dat(d / "movies.dat") if (d / "movies.dat").exists() else None
    variant = "ml-1m"
    if (d / "tags.dat").exists():
        variant = "ml-10m"
        lines = read_lines(d / "tags.dat", "latin-1")
        head = split_fields(lines, "::", 3, d / "tags.dat")
        tail = head[2].str.rsplit("::", n=1, expand=True)  # a tag may itself contain "::"
        if catalog is not None:
            attach_lists(catalog.frame, "tags", tags_per_item(head[1].str.strip(), tail[0]))
    return inter, catalog, variant


def _load_csv(d: Path, strict: bool) -> tuple[Interactions, Catalog | None, str]:
    inter = read_events(d / "ratings.csv", format="csv", sep=",", user="userId", item="movieId",
                        value="rating", strict=strict)
    catalog = None
    if (d / "movies.csv").exists():
        movies = read_table(d / "movies.csv", ["movieId", "title", "genres"], format="csv",
                            sep=",").frame
        genres = movies["genres"].fillna("").where(movies["genres"] != NO_GENRE, "")
        df = pd.DataFrame({"item": movies["movieId"], "title": movies["title"],
                           "categories": genres})
        catalog = Catalog.from_frame(df, categories="categories", source=str(d / "movies.csv"))
        if (d / "tags.csv").exists():
            tags = read_table(d / "tags.csv", ["movieId", "tag"], format="csv", sep=",").frame
            attach_lists(catalog.frame, "tags", tags_per_item(tags["movieId"], tags["tag"]))
    return inter, catalog, d.name if d.name.startswith("ml-") else "movielens"
