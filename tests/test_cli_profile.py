"""`prismrec profile`: a user's interests from a real checkpoint, as text, JSON and a plot."""

from __future__ import annotations

import json

import pytest

from prismrec.cli import main


@pytest.fixture(scope="module")
def head_checkpoint(tmp_path_factory):
    """A small LSTM with a 3-interest decay head, trained briefly on synthetic shop data."""
    from prismrec.data.synthetic import generate
    from prismrec.recommender import Recommender

    data = generate(n_users=120, n_items=60, seed=1).to_dataset()
    rec = Recommender("lstm", model_config={"dim": 16, "interests": 3},
                      train_config={"epochs": 2, "progress": False, "threads": 1}).fit(data)
    return rec.save(tmp_path_factory.mktemp("ckpt") / "lstm-interests")


def test_profile_prints_weighted_interests_and_a_narrative(head_checkpoint, capsys):
    assert main(["profile", "--checkpoint", str(head_checkpoint), "--user", "u0003",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("user u0003:") and "decay components" in out
    assert "%" in out.splitlines()[1]


def test_profile_json_is_the_library_profile_document(head_checkpoint, capsys):
    from prismrec.recommender import Recommender

    assert main(["profile", "--checkpoint", str(head_checkpoint), "--user", "u0003",
                 "--json", "--threads", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == Recommender.load(head_checkpoint).profile("u0003").to_dict()
    assert doc["user"] == "u0003" and doc["components"] == "decay" and doc["fallback"] is None
    weights = [i["weight"] for i in doc["interests"]]
    assert weights == sorted(weights, reverse=True) and abs(sum(weights) - 1) < 1e-6
    assert all({"id", "label", "horizon", "first_seen", "last_seen"} <= set(i)
               for i in doc["interests"])
    assert all(set(t) == {"id", "title"} for i in doc["interests"] for t in i["top_items"])


def test_profile_json_timeline_gives_the_weight_after_each_event(head_checkpoint, capsys):
    assert main(["profile", "--checkpoint", str(head_checkpoint), "--user", "u0003",
                 "--json", "--timeline", "--threads", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    n = len(doc["events"])
    assert n == doc["n_events"] and all(len(i["timeline"]) == n for i in doc["interests"])


def test_profile_plot_is_a_png_of_the_timeline(head_checkpoint, tmp_path):
    import matplotlib.image as mpimg

    png = tmp_path / "plots" / "timeline.png"
    assert main(["profile", "--checkpoint", str(head_checkpoint), "--user", "u0003",
                 "--plot", str(png), "--threads", "1"]) == 0
    img = mpimg.imread(png)
    assert img.shape[0] > 200 and img.shape[1] > 500
    assert img[..., :3].std() > 0.05  # not a blank canvas


def test_single_vector_checkpoint_gets_clustered_interests(tiny_checkpoint, capsys):
    assert main(["profile", "--checkpoint", str(tiny_checkpoint), "--user", "u0001",
                 "--json", "--threads", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["components"] == "kmeans" and 1 <= len(doc["interests"]) <= 4
    assert "no interest head" in doc["fallback"]
    assert main(["profile", "--checkpoint", str(tiny_checkpoint), "--user", "u0001",
                 "--threads", "1"]) == 0
    assert "no interest head" in capsys.readouterr().out


def test_recommend_names_titles_interests_and_reasons(head_checkpoint, capsys):
    assert main(["recommend", "--checkpoint", str(head_checkpoint), "--user", "u0003", "-k",
                 "3", "--json", "--threads", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["components"] == "decay" and doc["fallback"] is None
    rows = doc["recommendations"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert all(r["title"] and r["reason"].startswith("serves your interest in " +
                                                     r["interest_label"]) for r in rows)
    ids = {i["id"] for i in json.loads(_profile_json(head_checkpoint, capsys))["interests"]}
    assert {r["interest"] for r in rows} <= ids


def _profile_json(checkpoint, capsys) -> str:
    assert main(["profile", "--checkpoint", str(checkpoint), "--user", "u0003", "--json",
                 "--threads", "1"]) == 0
    return capsys.readouterr().out


def test_recommend_mute_removes_the_interest_and_bad_ids_are_clear_errors(head_checkpoint,
                                                                          capsys):
    assert main(["recommend", "--checkpoint", str(head_checkpoint), "--user", "u0003", "-k",
                 "5", "--diversity", "0.5", "--json", "--threads", "1"]) == 0
    first = json.loads(capsys.readouterr().out)["recommendations"][0]["interest"]
    assert main(["recommend", "--checkpoint", str(head_checkpoint), "--user", "u0003", "-k",
                 "5", "--mute", str(first), "--json", "--threads", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)["recommendations"]
    assert rows and first not in {r["interest"] for r in rows}
    assert main(["recommend", "--checkpoint", str(head_checkpoint), "--user", "u0003",
                 "--mute", "77", "--threads", "1"]) == 2
    assert "cannot mute interest 77" in capsys.readouterr().err
    assert main(["recommend", "--checkpoint", str(head_checkpoint), "--user", "u0003",
                 "--mute", str(first), "--boost", str(first), "--threads", "1"]) == 2
    assert "both muted and boosted" in capsys.readouterr().err


def test_unknown_user_is_an_error_not_a_traceback(tiny_checkpoint, capsys):
    assert main(["profile", "--checkpoint", str(tiny_checkpoint), "--user", "nobody"]) == 2
    assert "unknown user 'nobody'" in capsys.readouterr().err
