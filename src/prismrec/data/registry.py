"""Named datasets: which layout reads them, which files they need, where they come from.

``DATASETS`` is a plain dict so that the list is visible and easy to extend. Nothing here
touches the network unless ``download`` is called.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import tarfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prismrec.data.dataset import Dataset
from prismrec.data.layouts import amazon, events, lastfm, mind, movielens, recbole, sasrec
from prismrec.data.layouts._common import listing
from prismrec.errors import DataError

log = logging.getLogger(__name__)

_GROUPLENS = "https://files.grouplens.org/datasets"


@dataclass(frozen=True)
class DatasetInfo:
    """How to load one dataset. ``files`` are globs that must each match in the data folder."""

    name: str
    layout: str
    description: str
    loader: Callable[..., Dataset]
    files: tuple[str, ...]
    homepage: str | None  # None for data made here or brought by the user
    download_url: str | None = None
    sha256: str | None = None  # of the file at download_url
    options: dict = field(default_factory=dict)  # passed to the loader
    generic: bool = False  # a layout for any dataset of its form: keep the loader's name
    needs_dir: bool = True  # False for data made on the spot (the synthetic generator)


def _synthetic(data_dir: Path | None = None, *, seed: int = 0, n_users: int = 2000,
               n_items: int = 1000) -> Dataset:
    from prismrec.data.synthetic import generate

    return generate(seed=seed, n_users=n_users, n_items=n_items).to_dataset("synthetic")


def _ml(name: str, files: tuple[str, ...], description: str, sha256: str | None,
        page: str) -> DatasetInfo:
    return DatasetInfo(name, "movielens", description, movielens.load, files,
                       f"https://grouplens.org/datasets/movielens/{page}",
                       f"{_GROUPLENS}/movielens/{name}.zip", sha256)


# SHA-256 values of the GroupLens archives as recorded by tensorflow/datasets
# (url_checksums/movielens.txt); the others are not published, so download() asks for one.
DATASETS: dict[str, DatasetInfo] = {
    "synthetic": DatasetInfo(
        "synthetic", "synthetic", "Generated shop with drifting interests and ground truth "
        "(the embedded default; no folder needed)", _synthetic, (), None, needs_dir=False),
    "events": DatasetInfo(
        "events", "events", "Your own data: events.csv|parquet|jsonl (user,item,timestamp"
        "[,event,value,event_id]) and optional items.csv (item,title,description,...)",
        events.load, ("events.*",), None, generic=True),
    "ml-100k": _ml("ml-100k", ("u.data", "u.item"), "MovieLens 100K ratings (1997-98)",
                   "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", "100k/"),
    "ml-1m": _ml("ml-1m", ("ratings.dat", "movies.dat"), "MovieLens 1M ratings (2000-03)",
                 "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", "1m/"),
    "ml-10m": _ml("ml-10m", ("ratings.dat", "movies.dat"),
                  "MovieLens 10M ratings and tag applications", None, "10m/"),
    "ml-latest-small": _ml("ml-latest-small", ("ratings.csv", "movies.csv"),
                           "MovieLens latest, small (100K ratings, 3.7K tags)",
                           "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
                           "latest/"),
    "ml-latest": _ml("ml-latest", ("ratings.csv", "movies.csv"),
                     "MovieLens latest, full (regenerated from time to time)", None, "latest/"),
    "ml-20m": _ml("ml-20m", ("ratings.csv", "movies.csv"), "MovieLens 20M ratings and tags",
                  "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", "20m/"),
    "ml-25m": _ml("ml-25m", ("ratings.csv", "movies.csv"), "MovieLens 25M ratings and tags",
                  "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", "25m/"),
    "ml-1m-sas": DatasetInfo(
        "ml-1m-sas", "sasrec",
        "MovieLens 1M as preprocessed by SASRec, split as in gSASRec (no timestamps; skip-one "
        "test because test/input.txt is missing; protocol=loo: leave-one-out on the "
        "train/input.txt rows)",
        sasrec.load, ("train/input.txt", "val/input.txt", "val/output.txt", "test/output.txt"),
        "https://github.com/asash/gSASRec-pytorch"),
    "amazon-scientific": DatasetInfo(
        "amazon-scientific", "recbole",
        "Amazon 2018 Industrial & Scientific, UniSRec preprocessing (pre-split, no timestamps)",
        recbole.load,
        ("Scientific.train.inter", "Scientific.valid.inter", "Scientific.test.inter"),
        "https://github.com/RUCAIBox/UniSRec", options={"name": "Scientific"}),
    "recbole": DatasetInfo(
        "recbole", "recbole", "Any RecBole atomic dataset (pass name= for the file prefix)",
        recbole.load, ("*.inter",), "https://recbole.io/dataset_list.html", generic=True),
    "amazon-2014": DatasetInfo(
        "amazon-2014", "amazon", "Amazon reviews 2014, one category (reviews + meta files)",
        amazon.load, ("*.json*",), "https://jmcauley.ucsd.edu/data/amazon/", generic=True),
    "amazon-2018": DatasetInfo(
        "amazon-2018", "amazon", "Amazon reviews 2018, one category (reviews + meta files)",
        amazon.load, ("*.json*",), "https://nijianmo.github.io/amazon/index.html",
        generic=True),
    "mind": DatasetInfo(
        "mind", "mind", "MIND news clicks (one release folder, or a folder of them)",
        mind.load, ("**/behaviors.tsv",), "https://msnews.github.io/",
        "https://mind201910small.blob.core.windows.net/release/MINDsmall_train.zip",
        generic=True),
    "lastfm-hetrec": DatasetInfo(
        "lastfm-hetrec", "lastfm", "HetRec 2011 Last.fm 2K: tag applications, play counts",
        lastfm.load, ("user_artists.dat", "artists.dat"),
        "https://grouplens.org/datasets/hetrec-2011/",
        f"{_GROUPLENS}/hetrec2011/hetrec2011-lastfm-2k.zip"),
    "lastfm-1k": DatasetInfo(
        "lastfm-1k", "lastfm", "Last.fm 1K users' full listening logs (19M plays)",
        lastfm.load, (lastfm.LOG_1K,),
        "http://ocelma.net/MusicRecommendationDataset/lastfm-1K.html",
        "http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-1K.tar.gz"),
}


def list_datasets() -> list[DatasetInfo]:
    return list(DATASETS.values())


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def load_dataset(name: str, data_dir: str | Path | None = None, **opts) -> Dataset:
    """Load a named dataset from its unpacked folder; ``opts`` go to the layout's loader."""
    info = _info(name)
    accepted = inspect.signature(info.loader).parameters
    unknown = [k for k in opts if k not in accepted]
    if unknown:
        options = sorted(k for k in accepted if k not in ("data_dir", "name"))
        raise DataError(f"{name}: the loader takes no option(s) {', '.join(unknown)}; "
                        f"it takes: {', '.join(options) or 'none'}")
    if not info.needs_dir:
        return info.loader(None, **{**info.options, **opts})
    if data_dir is None:
        raise DataError(f"{name}: give the folder that holds its files (--data-dir)")
    d = Path(data_dir)
    if not d.is_dir():
        hint = (f"download it with prismrec.data.download({name!r}, folder)"
                if info.download_url else f"get it from {info.homepage}" if info.homepage
                else "check the path")
        raise DataError(f"{name}: data directory {d} not found; {hint}")
    missing = [g for g in info.files if not any(d.glob(g))]
    if missing:
        raise DataError(f"{name}: {', '.join(missing)} missing in {d} (expected "
                        f"{', '.join(info.files)}; found: {listing(d)})"
                        + (f". See {info.homepage}" if info.homepage else ""))
    ds = info.loader(d, **{**info.options, **opts})
    if not info.generic:
        ds.name = info.name
    return ds


def download(name: str, dest_dir: str | Path, *, url: str | None = None,
             sha256: str | None = None, extract: bool = True) -> Path:
    """Fetch a dataset archive, verify its SHA-256 and unpack it; returns the data folder.

    Only runs when called. ``url``/``sha256`` override the registry (a mirror, or a dataset
    whose checksum is not recorded). A file whose checksum does not match is deleted.
    """
    info = _info(name)
    url = url or info.download_url
    expected = (sha256 or info.sha256 or "").lower()
    if not url:
        raise DataError(f"{name}: no download address is known; get it from {info.homepage}")
    if not expected:
        raise DataError(f"{name}: no SHA-256 is recorded for {url}; pass sha256= with the value "
                        "from a source you trust")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / (Path(urllib.parse.urlparse(url).path).name or f"{name}.download")
    if not (target.exists() and _sha256(target) == expected):
        _fetch(url, target, expected)
    if not extract or not (zipfile.is_zipfile(target) or tarfile.is_tarfile(target)):
        return target
    return _unpack(target, dest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, target: Path, expected: str) -> None:
    part = target.with_name(target.name + ".part")
    log.info("downloading %s", url)
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as out:
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                out.write(block)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise DataError(f"could not download {url}: {exc}") from exc
    if h.hexdigest() != expected:
        part.unlink(missing_ok=True)
        raise DataError(f"{url}: SHA-256 mismatch (expected {expected}, got {h.hexdigest()}); "
                        "the download was deleted")
    part.replace(target)


def _unpack(archive: Path, dest: Path) -> Path:
    """Extract inside ``dest`` only; returns the single top folder if there is one."""
    root = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            _check_members(names, root, archive)
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tf:
            names = tf.getnames()
            _check_members(names, root, archive)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
                tf.extractall(dest, filter="data")
            else:
                tf.extractall(dest)  # members were checked above
    tops = {n.replace("\\", "/").split("/")[0] for n in names if n.strip("/")}
    if len(tops) == 1 and (dest / next(iter(tops))).is_dir():
        return dest / next(iter(tops))
    return dest


def _check_members(names: list[str], root: Path, archive: Path) -> None:
    for n in names:
        if not (root / n).resolve().is_relative_to(root):
            raise DataError(f"{archive}: refusing to extract {n!r} outside {root}")

