"""`prismrec train` with no model flags trains the strongest configuration the data supports
(``prismrec.recommender._defaults``) and says what it chose and why."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prismrec.cli import main
from prismrec.recommender import Recommender
from prismrec.recommender._defaults import (
    AUTO_BLEND_MAX_ITEMS,
    AUTO_MODEL_CONFIG,
    AUTO_TEXT_CONFIG,
    AUTO_TRAIN_CONFIG,
)

N_ITEMS = 12


def _cycle_shop(folder, *, titles: bool, n_users: int = 80, rings: int = 2, steps: int = 5):
    """Each user walks ``rings`` rings of 12 items in turns, one step on each: with two,
    a, b, a+1, b+1, ... (ring A is items 0-11, ring B items 12-23). The next item is always
    the one ``rings`` places back + 1, which a sequence model learns exactly. With two
    rings EASE, which sees only co-occurrence in a recency-weighted bag, ranks the
    successor of the *last* item (the other ring's next step, one event too early) at
    least as high, so it is right less often; with one ring it is right too."""
    rng = np.random.default_rng(0)
    rows = ["user,item,timestamp"]
    for u in range(n_users):
        starts = rng.integers(0, N_ITEMS, size=rings)
        seq = [r * N_ITEMS + (int(starts[r]) + j) % N_ITEMS for j in range(steps)
               for r in range(rings)]
        rows += [f"u{u},p{item},{1000 * u + t}" for t, item in enumerate(seq)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "events.csv").write_text("\n".join(rows) + "\n")
    if titles:
        (folder / "items.csv").write_text("item,title\n" + "".join(
            f"p{i},Ring item number {i}\n" for i in range(rings * N_ITEMS)))
    return folder


def _train(folder, tmp_path, *extra) -> dict:
    doc = tmp_path / "train.json"
    assert main(["train", "--dataset", "events", "--data-dir", str(folder), "--threads", "1",
                 "--quiet", "--out", str(tmp_path / "model"), "--json", str(doc),
                 *extra]) == 0
    return json.loads(doc.read_text())


def test_without_a_catalogue_the_default_is_sasrec_with_the_blend_and_no_text(tmp_path,
                                                                            capsys):
    shop = _cycle_shop(tmp_path / "shop", titles=False)
    doc = _train(shop, tmp_path, "--epochs", "2")
    out = capsys.readouterr().out
    ch = doc["choices"]
    assert ch["model"] == "sasrec" and ch["auto"] is True and doc["model"] == "sasrec"
    assert ch["text"] is False and ch["reasons"]["text"] == "off: the data has no item catalogue"
    assert ch["blend"] is True and ch["reasons"]["blend"].startswith(f"on: {2 * N_ITEMS} items")
    assert ch["refit"] is False and doc["refit"] is None
    # the recipe reached the model and the trainer; flags the user gave still win (epochs)
    assert {k: doc["config"]["model"][k] for k in AUTO_MODEL_CONFIG} == AUTO_MODEL_CONFIG
    assert doc["config"]["model"]["embedding"] == "id"
    train = doc["config"]["train"]
    assert {k: train[k] for k in AUTO_TRAIN_CONFIG} == AUTO_TRAIN_CONFIG
    assert train["epochs"] == 2
    assert doc["text"] is None and doc["blend"]["chosen_on"] == "validation"
    # what is printed says what was chosen and why
    assert out.startswith("auto (sasrec) on events")
    for what in ("model", "text", "blend", "refit"):
        assert f"  {what}: {ch['reasons'][what]}" in out
    assert "blend with EASE: weight" in out and "validation ndcg@10: " in out
    loaded = Recommender.load(tmp_path / "model")  # the checkpoint keeps what was chosen
    assert loaded.model_.name == "sasrec" and loaded.blend_.to_dict() == doc["blend"]
    assert main(["evaluate", "--checkpoint", str(tmp_path / "model")]) == 0


GRU_EXACT = ["--model", "gru", "--blend", "--model-config", '{"dropout": 0, "hidden_dropout": 0}',
             "--lr", "0.01", "--epochs", "40", "--patience", "40", "--batch-size", "16"]


def _best_at(blend: dict, weight: float) -> float:
    return max(r["ndcg@10"] for r in blend["table"] if r["weight"] == weight)


def test_the_blend_weight_is_chosen_on_validation(tmp_path, capsys):
    shop = _cycle_shop(tmp_path / "shop", titles=False, n_users=200)
    # a GRU learns the two rings (nearly) exactly; --blend is the blend the default uses
    doc = _train(shop, tmp_path, *GRU_EXACT)
    out = capsys.readouterr().out
    b = doc["blend"]
    assert doc["choices"]["reasons"]["blend"] == "asked for; its weight is chosen on validation"
    weights = sorted({r["weight"] for r in b["table"]})
    assert weights[0] == 0.0 and weights[-1] == 1.0  # 0, the model alone, is on the grid
    assert _best_at(b, 0.0) > 0.98  # the sequence model alone is (nearly) exact
    assert _best_at(b, 1.0) < 0.9  # EASE alone cannot tell which ring moves next
    assert b["best"] == max(r["ndcg@10"] for r in b["table"])  # the validation maximum
    assert _best_at(b, b["weight"]) == b["best"] and b["weight"] < 1.0
    assert b["best"] >= _best_at(b, 0.0)  # never below the model alone on validation
    line = (f"validation ndcg@10: {b['best']:.4f} blended, {_best_at(b, 0.0):.4f} the "
            "sequence model alone")
    assert line in out


def test_weight_zero_is_chosen_when_the_sequence_model_alone_is_exact(tmp_path):
    shop = _cycle_shop(tmp_path / "shop", titles=False, rings=1, steps=9)
    doc = _train(shop, tmp_path, *GRU_EXACT)
    b = doc["blend"]
    assert _best_at(b, 0.0) == b["best"] == 1.0  # nothing can beat the model alone
    assert b["weight"] == 0.0  # and ties go to the first point tried: weight 0


def test_blend_and_model_opt_outs_and_a_named_model_trains_as_configured(tmp_path, capsys):
    shop = _cycle_shop(tmp_path / "shop", titles=True)
    doc = _train(shop, tmp_path, "--epochs", "1", "--no-text", "--no-blend")
    ch = doc["choices"]
    assert ch["model"] == "sasrec" and ch["text"] is False and ch["blend"] is False
    assert ch["reasons"]["text"] == "off: asked for (text=False)"
    assert ch["reasons"]["blend"] == "off: asked for (blend=False)"
    assert doc["blend"] is None and doc["text"] is None
    doc = _train(shop, tmp_path, "--epochs", "1", "--no-blend", "--model-config",
                 '{"embedding": "id"}')  # an embedding named in the config is a choice too
    assert doc["choices"]["text"] is False and doc["text"] is None
    assert doc["choices"]["reasons"]["text"] == "off: model_config asks for embedding='id'"
    capsys.readouterr()
    doc = _train(shop, tmp_path, "--model", "gru", "--epochs", "1")  # catalogue has text
    ch = doc["choices"]
    assert ch["model"] == "gru" and ch["auto"] is False
    assert ch["text"] is False and ch["blend"] is False and doc["blend"] is None
    assert "text=True asks for item text" in ch["reasons"]["text"]
    assert "blends only when asked" in ch["reasons"]["blend"]
    assert doc["config"]["train"]["lr"] != AUTO_TRAIN_CONFIG["lr"]  # TrainConfig's own
    assert capsys.readouterr().out.startswith("gru on events")


def test_train_config_reaches_the_trainer_and_the_flags_win(tmp_path, capsys):
    shop = _cycle_shop(tmp_path / "shop", titles=False)
    doc = _train(shop, tmp_path, "--model", "sasrec", "--epochs", "1", "--train-config",
                 '{"exclude_seen": 7, "lr_decay": 0.5, "epochs": 3}')
    train = doc["config"]["train"]
    assert (train["exclude_seen"], train["lr_decay"], train["epochs"]) == (7, 0.5, 1)
    capsys.readouterr()
    # a setting TrainConfig lacks: refused with its name, no traceback
    assert main(["train", "--dataset", "events", "--data-dir", str(shop), "--model", "sasrec",
                 "--out", str(tmp_path / "m2"), "--train-config", '{"exclude_sen": 7}']) == 2
    err = capsys.readouterr().err
    assert "unknown TrainConfig field(s) ['exclude_sen']" in err
    assert "Traceback" not in err


def test_blend_config_sets_the_grid_and_turns_the_blend_on(tmp_path, capsys):
    shop = _cycle_shop(tmp_path / "shop", titles=False)
    doc = _train(shop, tmp_path, "--model", "sasrec", "--epochs", "1", "--blend-config",
                 '{"lams": [300, 900], "decays": [1.0], "weights": [0, 0.05, 0.5]}')
    tried = {(r["lam"], r["decay"], r["weight"]) for r in doc["blend"]["table"]}
    assert tried == {(lam, 1.0, a) for lam in (300.0, 900.0) for a in (0.0, 0.05, 0.5)}
    capsys.readouterr()
    for flags, message in (
            (["--blend-config", '{"lam": [5]}'], "unknown blend option(s) ['lam']"),
            (["--blend-config", '{"lams": 500}'], "blend lams must be a list of numbers"),
            (["--blend-config", '{"weights": [2]}'], "blend weights must be in [0, 1]"),
            (["--blend-config", "{}", "--no-blend"], "drop --no-blend")):
        with pytest.raises(SystemExit) as exit_:
            main(["train", "--dataset", "events", "--data-dir", str(shop), "--model", "sasrec",
                  "--out", str(tmp_path / "m2"), *flags])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


@pytest.mark.slow  # loads the packaged text encoder
def test_text_is_on_by_default_when_the_catalogue_has_text(tmp_path, capsys):
    shop = _cycle_shop(tmp_path / "shop", titles=True)
    items = (shop / "items.csv").read_text().splitlines()
    (shop / "items.csv").write_text("\n".join(items[:-1]) + "\n")  # p11 has no row
    doc = _train(shop, tmp_path, "--epochs", "1", "--no-blend")
    out = capsys.readouterr().out
    ch = doc["choices"]
    assert ch["text"] is True
    assert ch["reasons"]["text"].startswith(f"on: the catalogue has text for "
                                            f"{2 * N_ITEMS - 1} of {2 * N_ITEMS} items")
    assert doc["text"]["encoder"]["name"] == "all-MiniLM-L6-v2"
    assert doc["text"]["missing"] == {"no_catalogue_row": 1}
    assert {k: doc["config"]["model"][k] for k in AUTO_TEXT_CONFIG} == AUTO_TEXT_CONFIG
    assert "item text: encoder all-MiniLM-L6-v2; trained with empty text: 1 item(s) no " \
        "catalogue row" in out


def test_the_auto_blend_stays_off_where_ease_would_not_fit():
    from prismrec.data.vocab import Vocab
    from prismrec.recommender._defaults import choose

    rec = Recommender()
    big = Vocab([f"i{i}" for i in range(AUTO_BLEND_MAX_ITEMS + 1)])
    ch = choose(rec, big, None, text="auto", text_vectors=None, refit=False)
    assert ch.blend is False and ch.blend_option is None
    assert ch.reasons["blend"].startswith(f"off: {AUTO_BLEND_MAX_ITEMS + 1:,} items")
    small = Vocab([f"i{i}" for i in range(100)])
    ch = choose(rec, small, None, text="auto", text_vectors=None, refit=False, available=1000)
    assert ch.blend is False and "GiB is available" in ch.reasons["blend"]
    ch = choose(Recommender(blend="auto"), small, None, text="auto", text_vectors=None,
                refit=False)
    assert ch.blend is True
    ch = choose(Recommender("lstm", blend="auto"), small, None, text="auto",
                text_vectors=None, refit=False)
    assert ch.blend is True and ch.model == "lstm"  # "auto" asked for by name: any model
    with pytest.raises(ValueError, match="unknown model 'lsmt'"):
        Recommender("lsmt").fit(_frame())


def _frame():
    import pandas as pd

    return pd.DataFrame({"user": ["a", "a", "a"], "item": ["x", "y", "z"],
                         "timestamp": [1, 2, 3]})


def test_train_help_says_which_defaults_cost_more(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--model {auto,lstm,gru,sasrec}" in text and "--no-text" in text
    assert "--no-blend" in text and "--no-refit" in text
    assert "costs one encoder pass" in text and "costs 6 dense N x N solves" in text
