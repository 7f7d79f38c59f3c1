"""File plumbing for the readers: formats, separators, encodings, line numbers.

Each reader returns a ``Table``: the raw values of the wanted columns and, for every row, the
line of the file it came from, so that messages can point at it.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from prismrec.errors import DataError

_SUFFIX_FORMAT = {
    ".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".dat": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}
FORMATS = ("csv", "tsv", "parquet", "jsonl")
SEPARATORS = (",", "\t", ";", "|")


@dataclass
class Table:
    """Raw columns of a file plus where each row came from (for messages)."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray  # (n,) 1-based line (text) or row (Parquet) number of every row
    unit: str = "line"
    skipped: Counter = field(default_factory=Counter)
    exact: bool = True  # False: ``lines`` are row positions that may miss blank lines

    def where(self, row: int) -> str:
        return f"{self.path}, {self.unit} {int(self.lines[row])}"


def infer_format(path: Path, format: str | None = None) -> str:
    """The format name for ``path``: the one given, else the suffix (ignoring ``.gz``)."""
    if format is not None:
        fmt = {"json": "jsonl", "ndjson": "jsonl", "txt": "csv"}.get(format.lower(), format.lower())
        if fmt not in FORMATS:
            raise DataError(f"{path}: unknown format {format!r}; use one of {', '.join(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _SUFFIX_FORMAT.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the file name; pass format= "
            f"({', '.join(FORMATS)})"
        )
    return fmt


def read_header(path: str | Path, *, format: str | None = None, sep: str | None = None,
                encoding: str = "utf-8") -> list[str]:
    """Column names of a table file (keys of the first record for JSON lines)."""
    path = check_file(path)
    fmt = infer_format(path, format)
    if fmt == "parquet":
        return _parquet_columns(path)
    if fmt == "jsonl":
        first = _first_json_record(path, encoding)
        return list(first) if first else []
    sep = _separator(path, fmt, sep, encoding)
    with _decoding_errors(path, encoding):
        head = pd.read_csv(path, sep=sep, nrows=0, encoding=encoding, compression="infer")
    return [str(c) for c in head.columns]


def read_table(path: str | Path, columns: list[str], *, format: str | None = None,
               sep: str | None = None, names: list[str] | None = None,
               encoding: str = "utf-8", strict: bool = True, fast: bool = True,
               loose: bool = False, quoting: bool = True,
               numeric: tuple[str, ...] = ()) -> Table:
    """The named columns of a file as raw values, with each row's line number.

    ``fast=False`` reads JSON lines one by one, so that line numbers are exact; ``loose``
    accepts Python dict literals in JSON lines; ``quoting=False`` treats quote characters in
    text tables as ordinary text (upstream files with unbalanced quotes in titles).
    ``numeric`` columns of a text table are parsed as numbers when they all are (faster).
    """
    path = check_file(path)
    fmt = infer_format(path, format)
    if fmt == "parquet":
        return _read_parquet(path, columns)
    if fmt == "jsonl":
        return read_jsonl(path, columns, encoding=encoding, strict=strict, fast=fast, loose=loose)
    sep = _separator(path, fmt, sep, encoding)
    return _read_csv(path, columns, sep, names, encoding, strict, quoting, numeric)


def check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    return path


def open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _sample_lines(path: Path, encoding: str, n: int = 6) -> list[str]:
    out: list[str] = []
    with _decoding_errors(path, encoding), open_binary(path) as fh:
        for raw in fh:
            line = raw.decode(encoding).rstrip("\r\n")
            if line.strip():
                out.append(line)
            if len(out) >= n:
                break
    return out


def _separator(path: Path, fmt: str, sep: str | None, encoding: str) -> str:
    """The given separator, tab for TSV, else the candidate that splits every sampled line alike."""
    if sep is not None:
        return sep
    if fmt == "tsv":
        return "\t"
    lines = _sample_lines(path, encoding)
    if not lines:
        raise DataError(f"{path}: the file has no content lines")
    best, best_count = ",", 0
    for cand in SEPARATORS:
        counts = [ln.count(cand) for ln in lines]
        if counts[0] > 0 and len(set(counts)) == 1 and counts[0] > best_count:
            best, best_count = cand, counts[0]
    if best_count == 0:  # no consistent candidate: take the one most used in the header
        header_counts = {c: lines[0].count(c) for c in SEPARATORS}
        top = max(header_counts, key=header_counts.get)
        best = top if header_counts[top] else ","
    return best


class _decoding_errors:
    """Turn a UnicodeDecodeError into a DataError naming the first undecodable line."""

    def __init__(self, path: Path, encoding: str) -> None:
        self.path, self.encoding = path, encoding

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or not issubclass(exc_type, UnicodeDecodeError):
            return False
        line = _first_undecodable_line(self.path, self.encoding)
        where = f"{self.path}, line {line}" if line else str(self.path)
        raise DataError(
            f"{where}: the bytes are not valid {self.encoding} ({exc.reason}); pass the file's "
            "encoding, e.g. encoding='latin-1'"
        ) from exc


def _first_undecodable_line(path: Path, encoding: str) -> int | None:
    with open_binary(path) as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return n
    return None


def fmt_cols(cols) -> str:
    return ", ".join(repr(str(c)) for c in cols)


def _missing_columns(path: Path, columns: list[str], present: list[str]) -> None:
    missing = [c for c in columns if c not in present]
    if not missing:
        return
    msg = (f"{path}: missing column(s) {fmt_cols(missing)}; columns found: "
           f"{fmt_cols(present)}. Name the right columns (user=, item=, timestamp=, ...)")
    if len(present) == 1:
        seps = [s for s in SEPARATORS if s in str(present[0])]
        if seps:
            msg += (f". There is a single column whose name contains {seps[0]!r}: the separator "
                    f"is probably {seps[0]!r}; pass sep={seps[0]!r}")
    if "timestamp" in missing:
        msg += ". Pass timestamp=None if the file has no timestamps"
    raise DataError(msg)


def _read_csv(path: Path, columns: list[str], sep: str, names: list[str] | None,
              encoding: str, strict: bool, quoting: bool = True,
              numeric: tuple[str, ...] = ()) -> Table:
    # object, not pandas' arrow-backed str: ids go on as Python strings without a round trip
    opts = dict(sep=sep, encoding=encoding, compression="infer", dtype=object,
                keep_default_na=False, na_values=[""],
                quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE)
    if names is not None:
        opts.update(header=None, names=names)
    with _decoding_errors(path, encoding):
        try:
            present = [str(c) for c in pd.read_csv(path, nrows=0, **opts).columns]
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{path}: the file is empty") from exc
        _missing_columns(path, columns, present)
        caught: list[warnings.WarningMessage] = []
        bad = "error" if strict else "warn"
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                frame = None
                if numeric:  # let the C parser convert numbers; text in them -> read as text
                    typed = {c: (np.float64 if c in numeric else object) for c in columns}
                    try:
                        frame = pd.read_csv(path, usecols=columns, skip_blank_lines=False,
                                            on_bad_lines=bad, **{**opts, "dtype": typed})
                    except ValueError as exc:
                        if isinstance(exc, pd.errors.ParserError):
                            raise
                        caught.clear()
                if frame is None:
                    frame = pd.read_csv(path, usecols=columns, skip_blank_lines=False,
                                        on_bad_lines=bad, **opts)
        except pd.errors.ParserError as exc:
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if m:
                raise DataError(
                    f"{path}, line {m[2]}: expected {m[1]} fields, found {m[3]}; check the "
                    f"separator (using {sep!r}) and quoting, or pass strict=False to skip such rows"
                ) from exc
            raise DataError(f"{path}: cannot parse the file ({exc})") from exc
    bad_lines = sorted(int(n) for w in caught for n in re.findall(r"Skipping line (\d+)",
                                                                  str(w.message)))
    first = 1 if names is not None else 2
    candidates = np.arange(first, first + len(frame) + len(bad_lines), dtype=np.int64)
    lines = candidates[~np.isin(candidates, bad_lines)][: len(frame)]
    skipped = Counter({"wrong number of fields": len(bad_lines)} if bad_lines else {})
    blank = frame.isna().all(axis=1).to_numpy()
    frame = frame[columns].loc[~blank].reset_index(drop=True)
    table = Table(path, frame, lines[~blank], "line", skipped)
    if len(frame) == 0 and not skipped:
        raise DataError(f"{path}: no data rows (only a header line)")
    return table


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(_parquet_source(path)).names)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


def _parquet_source(path: Path):
    if path.suffix.lower() == ".gz":
        with gzip.open(path, "rb") as fh:
            return io.BytesIO(fh.read())
    return path


def _read_parquet(path: Path, columns: list[str]) -> Table:
    import pyarrow.parquet as pq

    _missing_columns(path, columns, _parquet_columns(path))
    try:
        frame = pq.read_table(_parquet_source(path), columns=columns).to_pandas()
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    if len(frame) == 0:
        raise DataError(f"{path}: no data rows")
    return Table(path, frame, np.arange(1, len(frame) + 1, dtype=np.int64), "row")


# ---------------------------------------------------------------- JSON lines


def _first_json_record(path: Path, encoding: str, loose: bool = False) -> dict | None:
    with _decoding_errors(path, encoding), open_binary(path) as fh:
        for n, raw in enumerate(fh, start=1):
            line = raw.decode(encoding).strip()
            if not line:
                continue
            rec = _parse_json_line(line, loose)
            if not isinstance(rec, dict):
                raise DataError(f"{path}, line {n}: not a JSON object; expected one object "
                                "per line (JSON lines)")
            return rec
    raise DataError(f"{path}: the file has no content lines")


def _parse_json_line(line: str, loose: bool):
    try:
        return json.loads(line)
    except ValueError:
        if not loose:
            return None
    try:  # Amazon 2014 files hold Python dict literals, one per line
        return ast.literal_eval(line)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def read_jsonl(path: str | Path, columns: list[str], *, encoding: str = "utf-8",
               strict: bool = True, loose: bool = False, required: int | None = None,
               fast: bool = True) -> Table:
    """The given keys of a JSON-lines file.

    ``loose`` also accepts Python dict literals (Amazon 2014). The first ``required`` keys
    (all by default) must appear in the first record; the others may be absent.
    """
    path = check_file(path)
    first = _first_json_record(path, encoding, loose)
    required = len(columns) if required is None else required
    _missing_columns(path, columns[:required], list(first))
    table = None
    if fast:
        table = _read_jsonl_fast(path, columns, required, first, encoding)
    if table is None:
        table = _read_jsonl_lines(path, columns, encoding, strict, loose)
    return table


def _arrow_type(v):
    import pyarrow as pa

    if isinstance(v, bool):
        return pa.bool_()
    if isinstance(v, int):
        return pa.int64()
    if isinstance(v, float):
        return pa.float64()
    if isinstance(v, str):
        return pa.string()
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return pa.list_(pa.string())
    return None


def _read_jsonl_fast(path: Path, columns: list[str], required: int, first: dict,
                     encoding: str) -> Table | None:
    """pyarrow's vectorised reader when the file is clean UTF-8 with stable types; else None."""
    if encoding.lower().replace("-", "").replace("_", "") not in ("utf8", "utf8sig"):
        return None
    import pyarrow as pa
    import pyarrow.json as pj

    types = [(c, _arrow_type(first.get(c, ""))) for c in columns]
    if any(t is None for _, t in types):
        return None
    opts = pj.ParseOptions(explicit_schema=pa.schema(types), unexpected_field_behavior="ignore")
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            frame = pj.read_json(stream, parse_options=opts).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError):
        return None  # let the line-by-line reader find and name the bad line
    if frame[columns[:required]].isna().any().any():
        return None  # a row lacks a value: the slow path knows its line number
    return Table(path, frame, np.arange(1, len(frame) + 1, dtype=np.int64), "line", exact=False)


def _read_jsonl_lines(path: Path, columns: list[str], encoding: str, strict: bool,
                      loose: bool) -> Table:
    values: dict[str, list] = {c: [] for c in columns}
    lines: list[int] = []
    skipped: Counter = Counter()
    with open_binary(path) as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                text = raw.decode(encoding).strip()
            except UnicodeDecodeError as exc:
                if strict:
                    raise DataError(
                        f"{path}, line {n}: the bytes are not valid {encoding}; pass the file's "
                        "encoding, e.g. encoding='latin-1'") from exc
                skipped[f"not valid {encoding}"] += 1
                continue
            if not text:
                continue
            rec = _parse_json_line(text, loose)
            if not isinstance(rec, dict):
                if strict:
                    raise DataError(f"{path}, line {n}: not a valid JSON object: "
                                    f"{text[:80]!r}; pass strict=False to skip such lines")
                skipped["not a valid JSON object"] += 1
                continue
            for c in columns:
                values[c].append(rec.get(c))
            lines.append(n)
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in values.items()})
    return Table(path, frame, np.asarray(lines, dtype=np.int64), "line", skipped)
