"""How an item's catalogue fields become the one string a language model reads."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from prismrec.errors import DataError

if TYPE_CHECKING:
    from prismrec.data.catalog import Catalog

KNOWN_FIELDS = ("title", "categories", "brand", "description", "tags")


@dataclass(frozen=True)
class TextTemplate:
    """Fields joined in order by ``sep``; list fields (categories, tags) joined by ``list_sep``.

    ``fields=None`` takes the known text fields the catalogue has, in the order
    title, categories, brand, description, tags; fields named explicitly must all exist.
    Whitespace runs inside a field collapse to one space, blank fields are skipped, and the
    result is cut to ``max_chars`` at a word boundary (``None``: no cut). The model still
    truncates to its own token window (256 tokens for all-MiniLM-L6-v2, about 1,000
    characters of English), so ``max_chars`` mostly bounds work on very long descriptions.
    ``key`` describes the template; the disk cache files vectors under it.
    """

    fields: tuple[str, ...] | None = None
    sep: str = ". "
    list_sep: str = ", "
    max_chars: int | None = 1000

    def __post_init__(self) -> None:
        if self.fields is not None:
            if isinstance(self.fields, str) or not all(isinstance(f, str) for f in self.fields):
                raise ValueError(
                    f"TextTemplate.fields must be a tuple of column names, got {self.fields!r}"
                )
            if not self.fields:
                raise ValueError("TextTemplate.fields is empty; name at least one column")
            object.__setattr__(self, "fields", tuple(self.fields))
        if self.max_chars is not None and self.max_chars < 1:
            raise ValueError(f"TextTemplate.max_chars must be >= 1 or None, got {self.max_chars}")

    @property
    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fields"] = None if self.fields is None else list(self.fields)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextTemplate:
        d = dict(d)
        if d.get("fields") is not None:
            d["fields"] = tuple(d["fields"])
        return cls(**d)

    def resolve_fields(self, columns) -> tuple[str, ...]:
        """The fields this template reads from a frame with ``columns``, or a DataError."""
        present = [str(c) for c in columns]
        if self.fields is None:
            found = tuple(f for f in KNOWN_FIELDS if f in present)
            if not found:
                raise DataError(
                    f"catalogue has none of the text fields {', '.join(KNOWN_FIELDS)}; "
                    f"columns present: {', '.join(present) or '(none)'}; name the text "
                    f"columns with TextTemplate(fields=(...))"
                )
            return found
        missing = [f for f in self.fields if f not in present]
        if missing:
            raise DataError(
                f"catalogue has no text column {', '.join(map(repr, missing))}; "
                f"columns present: {', '.join(map(repr, present)) or '(none)'}"
            )
        return self.fields

    def compose(self, values: list[Any]) -> str:
        """One item's text from its field values, in the template's field order."""
        parts = [p for p in (_field_text(v, self.list_sep) for v in values) if p]
        end = self.sep.strip()
        if end:  # "Title." + ". " + "Brand" would read "Title.. Brand"
            parts = [p[: -len(end)].rstrip() if p.endswith(end) and i < len(parts) - 1 else p
                     for i, p in enumerate(parts)]
        text = self.sep.join(p for p in parts if p)
        return _truncate(text, self.max_chars)


def compose_texts(
    catalog: Catalog, template: TextTemplate | None = None, *, allow_empty: bool = False
) -> list[str]:
    """One text per catalogue item, in ``catalog.ids`` order.

    Items whose text comes out empty raise a DataError naming them, since an empty text
    gives every such item the same meaningless vector; ``allow_empty=True`` keeps them as "".
    """
    template = template or TextTemplate()
    frame = catalog.frame
    fields = template.resolve_fields(frame.columns)
    columns = [frame[f].tolist() for f in fields]
    texts = [template.compose(list(row)) for row in zip(*columns, strict=True)] if columns else []
    if not allow_empty:
        empty = [str(i) for i, t in zip(frame.index, texts, strict=True) if not t]
        if empty:
            shown = ", ".join(map(repr, empty[:5])) + (", ..." if len(empty) > 5 else "")
            raise DataError(
                f"{len(empty)} item(s) have no text in field(s) {', '.join(fields)}: {shown}; "
                f"fill them, choose other fields with TextTemplate(fields=...), or pass "
                f"allow_empty=True"
            )
    return texts


def _field_text(value: Any, list_sep: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | np.ndarray):
        return list_sep.join(p for p in (_field_text(v, list_sep) for v in value) if p)
    if pd.isna(value):
        return ""
    return " ".join(str(value).split())


def _truncate(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    if not text[max_chars].isspace():  # mid-word: back off to the last space if one is near
        space = cut.rfind(" ")
        if space >= max_chars * 0.8:
            cut = cut[:space]
    return cut.rstrip()
