"""``Recommender()`` is ``model="auto"``: the recipe, with text and blend decided by the data;
a named model keeps explicit behaviour. (The CLI side: tests/test_cli_defaults.py.)"""

from __future__ import annotations

import json

import pandas as pd

from prismrec import Recommender
from prismrec.recommender._defaults import AUTO_MODEL_CONFIG, AUTO_TRAIN_CONFIG


def _events(n_users: int = 30, length: int = 6) -> pd.DataFrame:
    rows = [(f"u{u}", f"i{(u + j) % 10}", 100 * u + j) for u in range(n_users)
            for j in range(length)]
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


def test_the_default_is_auto_and_fit_records_what_it_chose():
    rec = Recommender(train_config={"epochs": 1, "progress": False, "threads": 1})
    assert rec.get_params()["model"] == "auto"
    rec.fit(_events())
    ch = rec.choices_
    assert ch.model == "sasrec" == rec.model_.name and ch.auto
    assert ch.text is False and ch.reasons["text"] == "off: the data has no item catalogue"
    assert ch.blend is True and rec.blend_ is not None and rec.blend_.chosen_on == "validation"
    assert rec.blend_.best >= rec.blend_.alone()
    for key, value in AUTO_MODEL_CONFIG.items():
        assert getattr(rec.model_.config, key) == value
    assert rec.train_config_.lr == AUTO_TRAIN_CONFIG["lr"] and rec.train_config_.epochs == 1
    assert rec.get_params()["model"] == "auto"  # fit does not rewrite the parameters
    assert not rec.recommend("u0", k=3).empty


def test_a_named_model_trains_as_configured():
    rec = Recommender("lstm", train_config={"epochs": 1, "progress": False, "threads": 1})
    rec.fit(_events())
    ch = rec.choices_
    assert ch.model == "lstm" and not ch.auto and ch.model_config == {}
    assert ch.text is False and ch.blend is False and rec.blend_ is None
    assert rec.train_config_.lr != AUTO_TRAIN_CONFIG["lr"]
    assert rec.model_.config.dropout != AUTO_MODEL_CONFIG["dropout"]


def test_what_the_fit_chose_survives_save_and_load(tmp_path):
    rec = Recommender(train_config={"epochs": 1, "progress": False, "threads": 1})
    rec.fit(_events())
    back = Recommender.load(rec.save(tmp_path / "ck"))
    assert back.choices_.to_dict() == rec.choices_.to_dict()
    assert back.choices_.auto and back.choices_.reasons["blend"] == rec.choices_.reasons["blend"]


def test_a_checkpoint_from_before_choices_were_kept_loads_without_them(tmp_path):
    rec = Recommender("lstm", train_config={"epochs": 1, "progress": False, "threads": 1})
    path = rec.fit(_events()).save(tmp_path / "ck")
    doc = json.loads((path / "checkpoint.json").read_text())
    doc["meta"].pop("choices")
    (path / "checkpoint.json").write_text(json.dumps(doc))
    back = Recommender.load(path)
    assert back.choices_ is None
    pd.testing.assert_frame_equal(back.recommend("u1"), rec.recommend("u1"))
