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


def test_profile_json_has_interests_with_weight_history(head_checkpoint, capsys):
    assert main(["profile", "--checkpoint", str(head_checkpoint), "--user", "u0003",
                 "--json", "--threads", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["user"] == "u0003" and doc["source"] == "decay"
    weights = [i["weight"] for i in doc["interests"]]
    assert weights == sorted(weights, reverse=True) and abs(sum(weights) - 1) < 1e-6
    n = len(doc["event_items"])
    assert all(len(i["weight_history"]) == n for i in doc["interests"])
    assert doc["narrative"]["backend"] == "template" and doc["narrative"]["text"]


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
    assert doc["source"] == "kmeans" and 1 <= len(doc["interests"]) <= 4


def test_unknown_user_is_an_error_not_a_traceback(tiny_checkpoint, capsys):
    assert main(["profile", "--checkpoint", str(tiny_checkpoint), "--user", "nobody"]) == 2
    assert "unknown user 'nobody'" in capsys.readouterr().err
