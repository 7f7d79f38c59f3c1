"""Interest heads: K weighted interest vectors per user, streamed in O(1) and equal to batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prismrec.data.sequences import Sequences
from prismrec.models import build_model
from prismrec.models.interest import DecayHead, SelfAttentiveHead
from prismrec.testing import (
    RecurrentModelContract,
    SequenceModelContract,
)
from prismrec.train.config import TrainConfig
from prismrec.train.trainer import Trainer

HEAD = {"interests": 3}


class TestLSTMDecayHead(RecurrentModelContract):
    model = "lstm"
    config = {"dim": 16, **HEAD}
    learn_config = {"dim": 32, "dropout": 0.1, **HEAD}


class TestGRUComiRecHead(RecurrentModelContract):
    model = "gru"
    config = {"dim": 16, "interests": 3, "interest_head": "comirec", "interest_window": 6}
    learn_config = {"dim": 32, "dropout": 0.1, "interests": 3, "interest_head": "comirec",
                    "interest_window": 8}


class TestSASRecDecayHead(SequenceModelContract):
    model = "sasrec"
    config = {"dim": 16, **HEAD}
    learn_config = {"dim": 32, "dropout": 0.1, **HEAD}
    # at the contract's lr 5e-3 SASRec with the decay head stalls after epoch 1
    learn_train = {**SequenceModelContract.learn_train, "lr": 2e-3, "epochs": 60,
                   "patience": 10}


class TestSASRecComiRecHead(SequenceModelContract):
    model = "sasrec"
    config = {"dim": 16, "interests": 3, "interest_head": "comirec", "interest_window": 6}
    learn_config = {"dim": 32, "dropout": 0.1, "interests": 3, "interest_head": "comirec"}


def _history(n: int, n_items: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n_items, (3, n), generator=g), torch.tensor([n, n - 7, 1])


def _stream(m, items: torch.Tensor, lengths: torch.Tensor):
    """Step each row to its own length; return (hidden per position, final states per row)."""
    out, finals = [], []
    for r in range(items.shape[0]):
        state, hs = None, []
        for t in range(int(lengths[r])):
            h, state = m.step(state, items[r:r + 1, t])
            hs.append(h)
        out.append(torch.cat(hs))
        finals.append(state)
    return out, finals


@pytest.mark.parametrize("head", ["decay", "comirec"])
def test_streamed_interests_equal_the_batch_computation(head):
    # 150 events cross the decay head's 64-position blocks; the window (20) is exceeded too
    torch.manual_seed(0)
    m = build_model("lstm", 30, {"dim": 16, "interests": 4, "interest_head": head,
                                 "interest_window": 20}).eval()
    _assert_streaming_equals_batch(m, *_history(150, 30, seed=5))


def _assert_streaming_equals_batch(m, items, lengths) -> list:
    """Event-by-event states give the batch outputs and interests; returns the final states."""
    with torch.no_grad():
        full = m(items, lengths)
        batch = m.interests(items, lengths)
        streamed, finals = _stream(m, items, lengths)
    for r in range(len(lengths)):
        n = int(lengths[r])
        torch.testing.assert_close(streamed[r], full[r, :n], atol=1e-5, rtol=0)
        v, w = m.state_interests(finals[r])
        torch.testing.assert_close(v[0], batch.vectors[r], atol=1e-5, rtol=0)
        torch.testing.assert_close(w[0], batch.weights[r], atol=1e-5, rtol=0)
    return finals


def test_the_user_vector_is_the_weighted_mixture_of_the_interests():
    torch.manual_seed(0)
    m = build_model("gru", 20, {"dim": 8, "interests": 3}).eval()
    items, lengths = _history(12, 20, seed=1)
    it = m.interests(items, lengths)
    mix = torch.einsum("bk,bkd->bd", it.weights, it.vectors)
    torch.testing.assert_close(m.encode(items, lengths), mix)
    torch.testing.assert_close(it.weights.sum(1), torch.ones(3))


def test_assignment_shares_each_event_and_leaves_padding_empty():
    torch.manual_seed(0)
    m = build_model("sasrec", 20, {"dim": 8, "interests": 3}).eval()
    items, lengths = _history(12, 20, seed=2)
    it = m.interests(items, lengths)
    real = torch.arange(12)[None, :] < lengths[:, None]
    torch.testing.assert_close(it.assignment.sum(-1)[real], torch.ones(int(real.sum())))
    assert (it.assignment[~real] == 0).all() and (it.weight_history[~real] == 0).all()
    assert it.mass.shape == (3, 3, 2)


def test_decay_head_keeps_a_short_and_a_long_horizon():
    head = DecayHead(8, 2)
    short, long = head.half_lives()
    assert short < 5 < 20 < long


def test_comirec_head_is_not_streaming_and_decay_head_is():
    assert DecayHead.streaming and not SelfAttentiveHead.streaming


@pytest.mark.parametrize("bad", [{"interests": 1}, {"interests": -2},
                                 {"interests": 2, "interest_head": "capsule"},
                                 {"interests": 2, "interest_window": 0}])
def test_config_rejects_bad_interest_settings_by_name(bad):
    with pytest.raises(ValueError, match="interest"):
        build_model("lstm", 10, {"dim": 8, **bad})


def test_a_model_without_a_head_says_how_to_get_interests():
    m = build_model("lstm", 10, {"dim": 8})
    with pytest.raises(ValueError, match="interests=K"):
        m.interests(torch.zeros(1, 3, dtype=torch.long), torch.tensor([3]))


def _two_group_users(n_users: int, seed: int) -> Sequences:
    """Items 0-7 are one interest, 8-15 another; each user switches once between them."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_users):
        first = rng.integers(2)
        n1, n2 = rng.integers(4, 15), rng.integers(4, 15)
        a = rng.integers(0, 8, n1) + 8 * first
        b = rng.integers(0, 8, n2) + 8 * (1 - first)
        rows.append(np.concatenate([a, b]).tolist())
    return Sequences.from_lists(rows)


def test_a_new_interest_takes_the_lead_within_a_few_events_of_a_switch():
    torch.manual_seed(0)
    m = build_model("lstm", 16, {"dim": 16, "interests": 3, "dropout": 0.1,
                                 "hidden_dropout": 0.1})
    Trainer(TrainConfig(epochs=8, lr=5e-3, progress=False, threads=1, batch_size=32,
                        weight_decay=0.0)).fit(m, _two_group_users(300, seed=0))
    m.eval()
    running, kitchen = [0, 3, 1, 5, 2, 7, 4, 6, 0, 2], [9, 12, 8, 15, 11]
    x = torch.tensor([running + kitchen])
    it = m.interests(x, torch.tensor([x.shape[1]]))
    comp = it.assignment[0].argmax(-1)  # (T,) component of each event
    old, new = comp[:10].mode().values, comp[10:].mode().values
    assert old != new, "the two groups of items went to the same component"
    lead = it.weight_history[0].argmax(-1)  # (T,) the heaviest component after each event
    assert lead[9] == old
    assert (lead[10:13] == new).any(), f"lead after the switch: {lead[10:].tolist()}"
    assert lead[-1] == new


def _three_group_model() -> torch.nn.Module:
    """A GRU with a decay head whose items 0-7, 8-15, 16-23 point three clear ways."""
    torch.manual_seed(0)
    m = build_model("gru", 24, {"dim": 8, "interests": 3}).eval()
    with torch.no_grad():
        for g in range(3):
            m.items.id.weight[1 + 8 * g:9 + 8 * g] = torch.eye(8)[g] + 0.05 * torch.randn(8, 8)
    return m


def test_decay_head_slots_are_each_users_own_in_order_of_appearance():
    m = _three_group_model()
    a = [0, 3, 5, 1, 2] + [9, 12, 8, 15, 10]  # user A: group 0, then group 1
    b = [17, 20, 19, 23, 18] + [4, 6, 7, 0, 2]  # user B: group 2, then group 0
    it = m.interests(torch.tensor([a, b]), torch.tensor([10, 10]))
    comp = it.assignment.argmax(-1)  # (2, T)
    assert comp[0].tolist() == [0] * 5 + [1] * 5
    assert comp[1].tolist() == [0] * 5 + [1] * 5  # group 0 is slot 0 for A, slot 1 for B
    assert (it.assignment.max(-1).values > 0.99).all()  # clear items: near-hard shares


def test_decay_head_opens_a_slot_at_the_first_event_of_a_new_interest():
    m = _three_group_model()
    x = torch.tensor([[0, 3, 5, 1, 2, 4, 9]])
    it = m.interests(x, torch.tensor([7]))
    assert it.assignment[0, -1].argmax() == 1 and it.assignment[0, -1, 1] == 1.0
    assert it.mass[0, 2].sum() == 0  # the third slot is still unused ...
    assert it.weights[0, 2] < 1e-6  # ... and weighs nothing


# --- routing by the catalogue's categories ---------------------------------------------------
def _two_category_routes(n_items: int = 20) -> torch.Tensor:
    """Items 0-9 in category A, 10-19 in category B: one-hot routing vectors, (N, 2)."""
    r = torch.zeros(n_items, 2)
    r[: n_items // 2, 0] = 1.0
    r[n_items // 2:, 1] = 1.0
    return r


def _category_model(route: str, n_items: int = 20, model: str = "lstm") -> torch.nn.Module:
    """An untrained model whose random item vectors say nothing about the two categories."""
    torch.manual_seed(3)
    kw = {"route_vectors": _two_category_routes(n_items)} if route == "categories" else {}
    return build_model(model, n_items, {"dim": 16, "interests": 4, "interest_route": route},
                       **kw).eval()


def _mixed_history(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 20, (1, n), generator=g)  # both categories, interleaved


def _purity(items: torch.Tensor, comp: torch.Tensor) -> float:
    """Share of events whose component's majority category is their own category."""
    cat = (items >= 10).long()
    ok = 0
    for k in comp.unique():
        c = cat[comp == k]
        ok += int(max((c == 0).sum(), (c == 1).sum()))
    return ok / len(items)


@pytest.mark.parametrize("model", ["lstm", "gru", "sasrec"])
def test_category_routing_groups_events_by_catalogue_category_where_item_vectors_do_not(
        model):
    x = _mixed_history(40, seed=1)
    lengths = torch.tensor([40])
    routed = _category_model("categories", model=model)
    comp = routed.interests(x, lengths).assignment[0].argmax(-1)
    assert _purity(x[0], comp) == 1.0
    assert len(comp.unique()) == 2  # one interest per category, no stray slots
    # the same untrained weights routed by item vector alone mix the categories: the
    # catalogue vectors, not luck, make the grouping above
    plain = _category_model("item", model=model)
    plain.load_state_dict({k: v for k, v in routed.state_dict().items()
                           if k != "route_vectors"})
    comp_plain = plain.interests(x, lengths).assignment[0].argmax(-1)
    assert _purity(x[0], comp_plain) < 0.8


def test_an_item_without_categories_is_routed_by_its_item_vector():
    m = _category_model("categories")
    with torch.no_grad():
        m.route_vectors[1 + 5] = 0.0  # item 5 has no category
        m.items.id.weight[1 + 5] = m.items.id.weight[1 + 12] * 3.0  # ... and points like 12
    x = torch.tensor([[0, 1, 2, 12, 13, 14, 5]])
    comp = m.interests(x, torch.tensor([7])).assignment[0].argmax(-1)
    assert comp[-1] == comp[3] != comp[0]


def test_category_routed_streaming_equals_the_batch_computation():
    m = _category_model("categories")
    finals = _assert_streaming_equals_batch(m, *_history(90, 20, seed=4))
    assert finals[0][-1].shape == (4, 1, 16 + 2 + 2)  # (K, B, D + C + 2): S, R, Z, z


@pytest.mark.parametrize("bad, message", [
    ({"interest_route": "genres"}, "interest_route must be one of"),
    ({"interest_route": "categories"}, "needs routing vectors"),
    ({"interest_route": "categories", "route_dim": 4, "interest_head": "comirec"},
     "needs the decay interest head"),
    ({"interest_route": "categories", "route_dim": 4, "interests": 0},
     "needs the decay interest head"),
    ({"route_dim": 4}, "needs interest_route='categories'"),
    ({"interest_route": "categories", "route_dim": 4, "route_weight": 1.5}, "route_weight"),
])
def test_config_rejects_bad_routing_settings_by_name(bad, message):
    with pytest.raises(ValueError, match=message):
        build_model("lstm", 20, {"dim": 8, "interests": 3, **bad})


def test_routing_vectors_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"route_vectors must have shape \(20, 2\)"):
        build_model("lstm", 20, {"dim": 8, "interests": 3, "interest_route": "categories",
                                 "route_dim": 2}, route_vectors=torch.zeros(19, 2))


def test_items_added_from_text_get_zero_routing_vectors_unless_given():
    g = torch.Generator().manual_seed(0)
    m = build_model("lstm", 20, {"dim": 8, "interests": 3, "embedding": "text",
                                 "interest_route": "categories"},
                    text_vectors=torch.randn(20, 6, generator=g),
                    route_vectors=_two_category_routes())
    m.add_items(torch.randn(2, 6, generator=g))
    assert m.route_vectors.shape == (23, 2) and (m.route_vectors[21:] == 0).all()
    m.add_items(torch.randn(1, 6, generator=g), route_vectors=torch.tensor([[0.0, 1.0]]))
    assert m.n_items == 23 and m.route_vectors[23].tolist() == [0.0, 1.0]
    it = m.interests(torch.tensor([[0, 21, 22, 12]]), torch.tensor([4]))  # new items route
    assert it.assignment.shape == (1, 4, 3)
