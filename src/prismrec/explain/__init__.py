"""Step 7 of the path: interests named, reasons per item, profile narratives.

``CatalogText.from_catalog`` prepares the catalogue once; ``label_interest`` names an interest
from the categories or tags its items share (words only without either), ``ChatLabeler``
with a chat model; ``explain_item`` says which interest a recommendation serves and which
history items contribute most to it (``attribution``: the score lost without each); a
``Narrator`` (template, local SmolLM2 model, or an OpenAI-compatible chat endpoint) writes a
short, checked narrative of a profile summary.
"""

from prismrec.explain._chat import ChatEndpointNarrator
from prismrec.explain._local_llm import LocalLLMNarrator
from prismrec.explain.labels import CatalogText, InterestLabel, defining_items, label_interest
from prismrec.explain.llm_labels import ChatLabeler
from prismrec.explain.narrate import (
    FallbackNarrator,
    InterestSummary,
    Narrative,
    NarrativeLimits,
    Narrator,
    NarratorAuthError,
    NarratorError,
    ProfileSummary,
    TemplateNarrator,
    check_narrative,
    limit_text,
    prompt_messages,
)
from prismrec.explain.reasons import (
    Explanation,
    Support,
    explain_item,
    reason_text,
    supporting_items,
)

__all__ = [
    "CatalogText",
    "ChatEndpointNarrator",
    "ChatLabeler",
    "Explanation",
    "FallbackNarrator",
    "InterestLabel",
    "InterestSummary",
    "LocalLLMNarrator",
    "Narrative",
    "NarrativeLimits",
    "Narrator",
    "NarratorAuthError",
    "NarratorError",
    "ProfileSummary",
    "Support",
    "TemplateNarrator",
    "check_narrative",
    "defining_items",
    "explain_item",
    "label_interest",
    "limit_text",
    "prompt_messages",
    "reason_text",
    "supporting_items",
]
