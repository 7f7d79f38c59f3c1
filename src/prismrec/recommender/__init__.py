"""``Recommender``: the user-facing object — ids in, DataFrames out, one sequence model inside.

What is trained. ``Recommender()`` (``model="auto"``) trains the strongest configuration
measured, as far as the data supports it: SASRec with tuned settings, item text when the
catalogue has text, the EASE blend when the catalogue fits in memory; ``choices_`` says
what was chosen and why (``_defaults``). ``Recommender("lstm")`` (or ``"gru"``,
``"sasrec"``) trains that model as configured, with text and the blend only when asked.

Two ways to fit, for two purposes:

- ``fit(data)`` trains for use. ``data`` is a ``Dataset``, an ``Interactions`` table or a
  DataFrame with user/item/timestamp columns. Every event is history; to choose the epoch,
  each user's last event is held out as the validation target (users with at least 3
  events), and it is still part of the history the recommendations start from.
- ``fit_split(split, users, items, histories=dataset.sequences)`` trains on
  ``split.train`` and stops early on ``split.valid``: the benchmark path, where
  ``split.test`` is scored later with ``score``.

Either way ``histories_`` holds every user's full known history (recommendations, seen-item
filtering, profiles and live profiles start from it), and ``training_`` records how the
model was trained: the split's name, a hash of the data and, per user, how many leading
events training and model selection read (``_provenance``; ``prismrec evaluate
--checkpoint`` uses it to score only cases the model never saw).

Item text. With a catalogue, ``fit(data, catalog, text=True)`` encodes every item's text
(``prismrec.text.encode_catalog``, default encoder all-MiniLM-L6-v2) and trains the
``"id+text"`` item embedding; ``text_vectors=`` passes vectors computed elsewhere. A model
with a text part can then take new items from their text alone (``add_items``), find items
near a query (``search``), and the catalogue, encoder name and template are saved with it.
An item with text but no training events (in the data, or added) is placed from its text
with a scale and a bias shift chosen on validation after training (``_cold``,
``cold_placement_``).

Streaming. ``update(events)`` appends new events to the users' histories in memory and
advances their model state by the new events only, through the one streaming engine
(``prismrec.profile.live.engine``) that the durable, store-backed service path
(``prismrec.profile.live``; ``live_bundle()`` hands it this model) uses too;
``forget(user)`` drops a user.

Blend. ``Recommender(..., blend=True)`` mixes the sequence model's scores with EASE
item-item scores of each user's recency-weighted history, ``(1 - a) * z(sequence) +
a * z(item-item)``, with EASE's ``lam``, the recency ``decay`` and ``a`` chosen on
validation after training (``blend_`` records the choice; ``_blend`` says why). Every
scoring path applies it: ``score``, ``recommend``, ``recommend_for_sequence``, streamed
states and ``prismrec.profile.live.LiveProfiles``.

Scikit-learn manners: ``__init__`` stores parameters only; learned state (``model_``,
``users_``, ``items_``, ``histories_``, ``training_``, ``result_``, ``catalog_``, ``text_encoder_``,
``text_template_``, ``cold_placement_``, ``item_item_``, ``blend_``, ``choices_``) exists after
fitting or loading.

The code is split by concern: ``core`` (the class: fit, score, recommend), ``_text``,
``_cold``, ``_stream``, ``_persist``, ``_provenance``, ``_blend`` and ``_defaults`` (plain
functions taking the recommender).
"""

from prismrec.recommender._blend import BlendConfig, BlendResult
from prismrec.recommender._defaults import Choices
from prismrec.recommender._persist import CATALOG_FILE, RECOMMENDER_FORMAT
from prismrec.recommender._stream import StreamUpdate
from prismrec.recommender._text import TEXT_MODES, NoTextPathError
from prismrec.recommender.core import Recommender, holdout_last

__all__ = ["CATALOG_FILE", "RECOMMENDER_FORMAT", "TEXT_MODES", "BlendConfig", "BlendResult",
           "Choices", "NoTextPathError", "Recommender", "StreamUpdate", "holdout_last"]
