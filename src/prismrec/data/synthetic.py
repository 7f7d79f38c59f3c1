"""Synthetic shop data with known ground truth: the default data for quickstart, tests and checks.

Real logs do not say which interest drove each click, so interest decomposition cannot be
checked against them. This generator draws users whose interests (shop categories) appear,
drift and fade over time, sessions that each follow one interest, Zipf popularity within a
category, accessories bought after main products, and items released during the log. It
exports the truth with the data: the active interest of every event and every user's interest
weights at every session start.

Everything is vectorised over users, sessions and events (no Python loop per event or per
session), so a million events take about a second; sizes scale to tens of millions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.interactions import Interactions

log = logging.getLogger(__name__)

EVENT_TYPES = ("view", "click", "purchase")
ROLES = ("main", "accessory")


@dataclass(frozen=True)
class _Category:
    """The words one shop category speaks, so that a language model can tell categories apart."""

    name: str
    brands: tuple[str, ...]
    adjectives: tuple[str, ...]
    products: tuple[str, ...]  # main products
    accessories: tuple[str, ...]  # bought after a main product
    phrases: tuple[str, ...]  # description sentences


def _c(name, brands, adjectives, products, accessories, phrases) -> _Category:
    return _Category(name, *(tuple(x.split(";")) for x in
                             (brands, adjectives, products, accessories, phrases)))


CATEGORIES: tuple[_Category, ...] = (
    _c("running gear",
       "Stridex;Pacefield;Kinetra;Tempo Labs;Roadrunner Co",
       "lightweight;breathable;cushioned;reflective;trail-ready;racing;responsive;sweat-wicking",
       "running shoes;trail shoes;racing flats;running jacket;running tights;GPS running watch;"
       "hydration vest;running shorts",
       "running socks;shoe laces;insoles;sweatband;armband phone holder;energy gel pack",
       "Built for long runs and race day.;Grips wet tarmac and muddy trails.;"
       "Keeps you cool over every mile.;Tested by marathon runners.;"
       "Light enough for tempo sessions and intervals.;Reflective details for early morning runs."),
    _c("kitchenware",
       "Copperline;Hearthstone;Chef's Table;Ladle & Co;Panmaster",
       "cast-iron;non-stick;stainless steel;enamelled;dishwasher-safe;heavy-gauge;ceramic;"
       "induction-ready",
       "frying pan;stock pot;chef's knife;dutch oven;saucepan;wok;roasting tin;stand mixer",
       "silicone spatula;pot holder;knife sharpener;pan lid;wooden spoon;oven mitt",
       "Heats evenly for perfect searing.;Goes from hob to oven.;"
       "A kitchen staple for everyday cooking.;Easy to clean after a family dinner.;"
       "Holds heat for slow braises and stews.;Loved by home cooks and chefs."),
    _c("sci-fi books",
       "Nebula Press;Orbit House;Starward Books;Quantum Pages;Event Horizon Publishing",
       "interstellar;dystopian;cyberpunk;time-travel;space-opera;post-apocalyptic;alien-contact;"
       "galactic",
       "novel;hardcover saga;paperback trilogy;short story collection;starship epic;"
       "android thriller;first-contact novel;colony chronicle",
       "bookmark;clip-on reading light;book sleeve;companion guide;star map poster;bookends",
       "A starship crew faces the unknown.;Humanity reaches beyond the solar system.;"
       "Robots question what it means to be alive.;Wormholes, warp drives and distant planets.;"
       "A gripping tale of first contact with aliens.;The future is stranger than we imagined."),
    _c("jazz records",
       "Blue Smoke Records;Bebop Vinyl;Midnight Session;Swing Street;Cool Note",
       "bebop;smooth;modal;big-band;swing;hard-bop;live;remastered",
       "vinyl LP;double album;quartet recording;trio session;live concert record;"
       "saxophone album;piano ballads LP;trumpet sessions",
       "record sleeves;turntable stylus;record cleaning brush;turntable mat;vinyl storage crate;"
       "anti-static cloth",
       "Recorded live in a smoky New York club.;Saxophone solos that swing all night.;"
       "Warm analogue sound pressed on heavy vinyl.;A landmark session of modal improvisation.;"
       "Upright bass, piano and brushed drums.;Remastered from the original studio tapes."),
    _c("gardening",
       "Greenthumb;Rootwise;Bloom & Grow;Fernhill;Terra Tools",
       "rust-proof;ergonomic;organic;frost-hardy;heavy-duty;raised;self-watering;perennial",
       "spade;lawn mower;raised bed kit;hedge trimmer;greenhouse;hose reel;wheelbarrow;"
       "compost bin",
       "gardening gloves;seed packets;plant labels;hose nozzle;pruning shears;kneeling pad",
       "Perfect for vegetable patches and flower beds.;Makes digging heavy clay soil easy.;"
       "Grow tomatoes, herbs and salad leaves.;Weatherproof for year-round use in the garden.;"
       "Helps seedlings thrive through spring.;Keeps lawns, hedges and borders tidy."),
    _c("board games",
       "Meeple Works;Dicefall;Tabletop Guild;Rook & Pawn;Gamenight",
       "strategy;cooperative;family;deck-building;worker-placement;party;tile-laying;two-player",
       "board game;card game;dice game;war game;trading game;dungeon crawler;legacy campaign;"
       "puzzle game",
       "expansion pack;card sleeves;dice set;box insert organiser;meeple upgrade kit;score pad",
       "For 2 to 5 players, ages 10 and up.;Build your empire and outwit your rivals.;"
       "Perfect for game night with friends.;Roll the dice and trade resources.;"
       "Each campaign plays differently.;Beautiful components and a clever rulebook."),
    _c("photography",
       "Aperture;Lumiq;Shutterline;Focalpoint;Brightlens",
       "mirrorless;full-frame;wide-angle;telephoto;weather-sealed;image-stabilised;"
       "fast-aperture;rangefinder",
       "camera body;zoom lens;prime lens;camera kit;camera drone;instant camera;action camera;"
       "medium-format camera",
       "lens cap;camera strap;memory card;lens filter;spare camera battery;sensor cleaning kit",
       "Sharp images even in low light.;Fast autofocus for wildlife and sport.;"
       "Shoots 4K video and RAW stills.;Capture landscapes in stunning detail.;"
       "Weather sealing for shoots in the rain.;A favourite of street photographers."),
    _c("coffee",
       "Roastwell;Crema Club;Bean Theory;Morning Ritual;Espressivo",
       "single-origin;dark-roast;espresso;pour-over;burr;fair-trade;medium-roast;cold-brew",
       "espresso machine;coffee grinder;whole coffee beans;French press;pour-over dripper;"
       "moka pot;ground coffee;cold brew maker",
       "paper filters;milk frothing jug;espresso tamper;descaling tablets;coffee scoop;"
       "reusable coffee cup",
       "Rich crema and chocolate notes.;Freshly roasted beans from Ethiopia and Colombia.;"
       "Brew barista-quality coffee at home.;Grind size dialled in for espresso.;"
       "Smooth, low-acid cold brew.;Notes of caramel, cherry and cocoa."),
    _c("camping",
       "Trailhaven;Summit Peak;Campfire Co;Northridge;Wildtrek",
       "waterproof;ultralight;four-season;insulated;packable;windproof;two-person;backcountry",
       "tent;sleeping bag;camping stove;hiking backpack;hammock;camp chair;sleeping mat;"
       "trekking poles",
       "tent pegs;gas canister;headlamp;carabiner;dry bag;water filter",
       "Pitches in minutes at the campsite.;Stays dry through mountain storms.;"
       "Warm on cold nights under the stars.;Packs small for backpacking trips.;"
       "Built for hiking and wild camping.;Cook hot meals in the backcountry."),
    _c("yoga",
       "Lotusflow;Zenmat;Asana Studio;Breathe Well;Stillpoint",
       "non-slip;eco-friendly;extra-thick;cork;meditation;stretchy;hot-yoga;balancing",
       "yoga mat;meditation cushion;yoga leggings;yoga wheel;balance board;resistance band set;"
       "yoga bolster;yoga top",
       "mat carry strap;yoga block;mat cleaner spray;yoga towel;stretching strap;"
       "essential oil roller",
       "Find your balance in every pose.;Grip that holds through downward dog.;"
       "Supports a calm daily meditation practice.;Flexible comfort for vinyasa flow.;"
       "Made for mindful stretching and breathing.;Cushions knees during long sessions."),
    _c("baby care",
       "Little Sprout;Cuddlebug;Tiny Steps;Babybloom;Nestling",
       "hypoallergenic;organic cotton;BPA-free;newborn;soft-touch;foldable;anti-colic;gentle",
       "pram;baby car seat;baby carrier;cot;high chair;baby monitor;changing table;play gym",
       "baby bottles;muslin cloths;dummy clips;nappy bag;teething ring;bib set",
       "Gentle on delicate newborn skin.;Keeps your little one safe and snug.;"
       "Easy for tired parents to use one-handed.;Grows with your baby from birth to toddler.;"
       "Soothes fussy babies at bedtime.;Tested to strict child-safety standards."),
    _c("video games",
       "Pixelforge;Nightshade Studios;Quest Interactive;Bitstorm;Arcadia Games",
       "open-world;multiplayer;retro;racing;role-playing;shooter;platformer;survival",
       "game console;video game;handheld console;VR headset;gaming PC;racing wheel;"
       "game collection;fighting game",
       "wireless controller;gaming headset;charging dock;memory expansion card;thumb grips;"
       "console carry case",
       "Explore a vast open world.;Team up online with friends.;"
       "Retro pixel art with modern controls.;Boss battles, loot and levelling up.;"
       "Smooth 120 fps gameplay.;Hours of adventure and side quests."),
)

# Words every category uses, so titles are not trivially separable by vocabulary alone.
_GENERIC = ("Classic", "Premium", "Essential", "Deluxe", "Everyday", "Pro", "Limited Edition")


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes and behaviour of the generated shop; every default is a plausible middle value."""

    n_users: int = 2000
    n_items: int = 1000
    n_categories: int = 8  # at most len(CATEGORIES) == 12
    events_per_user: float = 30.0  # mean events per user
    events_per_user_shape: float = 2.0  # gamma shape of user activity: lower = heavier tail
    min_events_per_user: int = 3
    max_interests: int = 4  # each user gets 1..max_interests interests (categories)
    session_length: float = 5.0  # mean events per session (geometric)
    session_gap_hours: float = 36.0  # mean pause between sessions, on top of one hour
    event_gap_seconds: float = 45.0  # median pause between events within a session
    interest_appear_prob: float = 0.5  # a non-core interest starts mid-history (else at start)
    interest_fade_prob: float = 0.4  # a non-core interest fades out before the history ends
    interest_ramp: float = 0.1  # share of a user's history over which an interest fades in/out
    weight_drift: float = 1.0  # std of each interest's log-weight change over a whole history
    new_item_fraction: float = 0.2  # items released during the log rather than before it
    zipf_exponent: float = 1.1  # popularity ~ 1 / rank**s within a category
    accessory_share: float = 0.35  # share of each category's items that are accessories
    accessory_prob: float = 0.7  # after a main-product purchase, the next event buys an accessory
    # view, click, purchase shares before accessory follow-ups (all purchases: ~+3% purchases)
    event_mix: tuple[float, float, float] = (0.70, 0.22, 0.08)
    noise_rate: float = 0.03  # events whose item comes from another category than the interest
    start_time: int = 1_600_000_000  # unix seconds (2020-09-13)
    span_days: float = 180.0  # users join, and new items are released, within this window
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.n_users < 1:
            problems.append(f"n_users must be >= 1, got {self.n_users}")
        if not 1 <= self.n_categories <= len(CATEGORIES):
            problems.append(f"n_categories must be in 1..{len(CATEGORIES)}, "
                            f"got {self.n_categories}")
        if self.n_items < 2 * self.n_categories:
            problems.append(f"n_items must be >= 2 * n_categories (a main product and an accessory "
                            f"per category), got {self.n_items} for {self.n_categories} categories")
        if not 1 <= self.max_interests <= self.n_categories:
            problems.append(f"max_interests must be in 1..n_categories, got {self.max_interests}")
        for name in ("events_per_user", "events_per_user_shape", "session_gap_hours",
                     "event_gap_seconds", "interest_ramp", "span_days"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if self.min_events_per_user < 1:
            problems.append(f"min_events_per_user must be >= 1, got {self.min_events_per_user}")
        if not self.session_length >= 1:
            problems.append(f"session_length must be >= 1, got {self.session_length}")
        if self.weight_drift < 0 or self.zipf_exponent < 0:
            problems.append("weight_drift and zipf_exponent must be >= 0")
        for name in ("interest_appear_prob", "interest_fade_prob", "new_item_fraction",
                     "accessory_prob", "noise_rate"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 < self.accessory_share < 1:
            problems.append(f"accessory_share must be in (0, 1), got {self.accessory_share}")
        mix = np.asarray(self.event_mix, dtype=float)
        if mix.shape != (3,) or (mix < 0).any() or abs(mix.sum() - 1) > 1e-6:
            problems.append(f"event_mix must be 3 shares (view, click, purchase) summing to 1, "
                            f"got {self.event_mix}")
        if problems:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(problems))

    @property
    def expected_events(self) -> int:
        return int(round(self.n_users * self.events_per_user))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["event_mix"] = list(self.event_mix)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SyntheticConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SyntheticConfig field(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        if "event_mix" in d:
            d["event_mix"] = tuple(float(x) for x in d["event_mix"])
        return cls(**d)


@dataclass
class SyntheticData:
    """Generated events and catalogue with the truth that produced them.

    ``event_interest[r]`` is the category index of the interest that drove row ``r`` of
    ``interactions.frame`` (also its ``interest`` column, which survives re-sorting; the
    ``session`` column numbers each user's sessions from 0). ``user_interests`` has one row per
    user, session and interest the user holds: ``user, session, timestamp (session start),
    interest, category, weight``, weights summing to 1 per session (0 while an interest has not
    appeared yet or has faded). The catalogue adds ``role`` ("main"/"accessory") and
    ``release_time`` (unix seconds; no event uses an item before it).
    """

    interactions: Interactions
    catalog: Catalog
    event_interest: np.ndarray  # (E,) int32 category index
    user_interests: pd.DataFrame
    categories: list[str]
    config: SyntheticConfig

    def to_dataset(self, name: str = "synthetic") -> Dataset:
        """A Dataset over these events and catalogue; item index i is item ``i{i:05d}``."""
        return Dataset.from_interactions(name, self.interactions, self.catalog,
                                         source="synthetic", categories=list(self.categories),
                                         config=self.config.to_dict())

    def save(self, directory: str | Path) -> Path:
        """Write events.csv, items.csv, truth_events.csv, truth_interests.csv and config.json.

        events.csv (user,item,timestamp,event) and items.csv (item,title,description,categories
        joined by '|',brand,role,release_time) are what the generic CSV readers take.
        truth_events.csv is row-aligned with events.csv.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        f = self.interactions.frame
        events = pd.DataFrame({"user": f["user"], "item": f["item"],
                               "timestamp": f["timestamp"].to_numpy().astype(np.int64),
                               "event": f["event"]})
        _write_csv(events, out / "events.csv")
        c = self.catalog.frame
        items = pd.DataFrame({"item": c.index, "title": c["title"].to_numpy(),
                              "description": c["description"].to_numpy(),
                              "categories": ["|".join(x) for x in c["categories"]],
                              "brand": c["brand"].to_numpy(), "role": c["role"].to_numpy(),
                              "release_time": c["release_time"].to_numpy()})
        _write_csv(items, out / "items.csv")
        names = np.asarray(self.categories, dtype=object)
        truth = pd.DataFrame({"user": events["user"], "timestamp": events["timestamp"],
                              "session": f["session"], "interest": f["interest"],
                              "category": names[f["interest"].to_numpy()]})
        _write_csv(truth, out / "truth_events.csv")
        _write_csv(self.user_interests, out / "truth_interests.csv")
        (out / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        return out


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV through Arrow: several times faster than ``DataFrame.to_csv`` at millions of rows."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), path)


def generate(config: SyntheticConfig | None = None, **overrides) -> SyntheticData:
    """Generate a shop deterministically from ``config.seed``; keyword overrides replace fields.

    ``generate(n_users=100, seed=3)`` is ``generate(SyntheticConfig(n_users=100, seed=3))``.
    The catalogue depends only on the seed and the catalogue fields, so changing user counts
    keeps the same items.
    """
    cfg = config if config is not None else SyntheticConfig()
    if overrides:
        known = {f.name for f in dataclasses.fields(SyntheticConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown SyntheticConfig field(s) {unknown}; known: {sorted(known)}")
        cfg = dataclasses.replace(cfg, **overrides)
    rng_items, rng_users, rng_events = (np.random.default_rng(s) for s in
                                        np.random.SeedSequence(cfg.seed).spawn(3))
    items = _make_items(cfg, rng_items)
    users = _make_users(cfg, rng_users)
    data = _make_events(cfg, items, users, rng_events)
    log.debug("synthetic data: %d users, %d items, %d events", cfg.n_users, cfg.n_items,
              len(data.interactions))
    return data


# --- catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Items:
    category: np.ndarray  # (I,) int32
    accessory: np.ndarray  # (I,) bool
    popularity: np.ndarray  # (I,) float64, Zipf weight by rank within category
    release: np.ndarray  # (I,) int64 unix seconds
    catalog: Catalog


def _make_items(cfg: SyntheticConfig, rng: np.random.Generator) -> _Items:
    n, C = cfg.n_items, cfg.n_categories
    # Category sizes vary around n/C; at least two items (a main and an accessory) each.
    sizes = 2 + rng.multinomial(n - 2 * C, rng.dirichlet(np.full(C, 4.0)))
    category = rng.permutation(np.repeat(np.arange(C, dtype=np.int32), sizes))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def rank_within_category() -> np.ndarray:  # a random order 0..size-1 inside each category
        order = np.lexsort((rng.random(n), category))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - starts[category[order]]
        return rank

    pop_rank = rank_within_category()
    role_rank = rank_within_category()
    n_acc = np.clip(np.rint(sizes * cfg.accessory_share), 1, sizes - 1)
    accessory = role_rank >= (sizes - n_acc)[category]
    popularity = (pop_rank + 1.0) ** -cfg.zipf_exponent
    # New items: any but the first main and the first accessory of each category, which stay
    # available from the start so every category can always be sampled.
    anchor = (role_rank == 0) | (role_rank == (sizes - n_acc)[category])
    candidates = np.flatnonzero(~anchor)
    n_new = min(int(round(cfg.new_item_fraction * n)), len(candidates))
    new = np.zeros(n, dtype=bool)
    new[rng.choice(candidates, size=n_new, replace=False)] = True
    span = int(cfg.span_days * 86400)
    release = np.where(new, cfg.start_time + rng.integers(0, span, n),
                       cfg.start_time - rng.integers(0, 2 * 365 * 86400, n)).astype(np.int64)
    titles, descriptions, brands = _item_text(category, accessory, rng)
    names = np.array([cat.name for cat in CATEGORIES[:C]], dtype=object)
    ids = _ids("i", n, 5)
    frame = pd.DataFrame({"title": titles, "description": descriptions,
                          "categories": [[x] for x in names[category]], "brand": brands,
                          "role": np.asarray(ROLES, dtype=object)[accessory.astype(np.int8)],
                          "release_time": release},
                         index=pd.Index(ids, name="item"))
    return _Items(category, accessory, popularity, release, Catalog(frame))


def _item_text(category: np.ndarray, accessory: np.ndarray, rng: np.random.Generator):
    """Titles like "Stridex Cushioned Trail Shoes 3" and two-sentence descriptions."""
    n = len(category)
    titles = np.empty(n, dtype=object)
    descriptions = np.empty(n, dtype=object)
    brands = np.empty(n, dtype=object)
    for c in range(int(category.max()) + 1):
        cat = CATEGORIES[c]
        for is_acc in (False, True):
            idx = np.flatnonzero((category == c) & (accessory == is_acc))
            m = len(idx)
            if m == 0:
                continue
            nouns = cat.accessories if is_acc else cat.products
            brand = _pick(cat.brands, m, rng)
            adj = _pick(cat.adjectives, m, rng)
            noun = _pick(nouns, m, rng)
            generic = np.where(rng.random(m) < 0.3, _pick(_GENERIC, m, rng) + " ", "")
            model = np.where(rng.random(m) < (0.1 if is_acc else 0.4),
                             " " + rng.integers(2, 10, m).astype(str).astype(object), "")
            titles[idx] = brand + " " + generic + _cap(adj) + " " + _cap(noun) + model
            p1 = rng.integers(0, len(cat.phrases), m)
            p2 = (p1 + rng.integers(1, len(cat.phrases), m)) % len(cat.phrases)
            phrases = np.asarray(cat.phrases, dtype=object)
            head = _cap(adj) + " " + noun + " from " + brand
            if is_acc:
                mate = _pick(cat.products, m, rng)
                descriptions[idx] = head + ", made to go with your " + mate + ". " + phrases[p1]
            else:
                descriptions[idx] = head + ". " + phrases[p1] + " " + phrases[p2]
            brands[idx] = brand
    return titles, descriptions, brands


def _pick(words: tuple[str, ...], m: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(words, dtype=object)[rng.integers(0, len(words), m)]


def _cap(words: np.ndarray) -> np.ndarray:
    """Capitalise each word's first letter ("chef's knife" -> "Chef's Knife", "GPS" stays)."""
    table = {w: " ".join(p[:1].upper() + p[1:] for p in w.split(" ")) for w in set(words)}
    return np.asarray([table[w] for w in words], dtype=object)


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    width = max(width, len(str(n - 1)))
    return np.asarray([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=object)


class _GroupSampler:
    """Draw an item from a group (category) in proportion to item weights, for many groups at once.

    All groups share one sorted array: the cumulative share of group g runs from g to g + 1,
    so one ``searchsorted`` of ``g + u`` draws from group g.
    """

    def __init__(self, groups: np.ndarray, weights: np.ndarray, keep: np.ndarray,
                 n_groups: int) -> None:
        idx = np.flatnonzero(keep)
        order = idx[np.argsort(groups[idx], kind="stable")]
        g = groups[order].astype(np.int64)
        counts = np.bincount(g, minlength=n_groups)
        if (counts == 0).any():
            raise ValueError("every group needs at least one item to sample from")
        ends = np.cumsum(counts)
        cw = np.cumsum(weights[order].astype(np.float64))
        before = np.concatenate([[0.0], cw])[ends - counts]
        total = cw[ends - 1] - before
        cdf = g + (cw - before[g]) / total[g]
        cdf[ends - 1] = np.arange(1, n_groups + 1)
        self.items, self.cdf, self.ends = order.astype(np.int32), cdf, ends

    def sample(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(len(groups))
        pos = np.searchsorted(self.cdf, groups + u, side="right")
        return self.items[np.minimum(pos, self.ends[groups] - 1)]


def _sample_released(samplers: tuple[_GroupSampler, _GroupSampler], groups: np.ndarray,
                     times: np.ndarray, release: np.ndarray, rng: np.random.Generator,
                     tries: int = 8) -> np.ndarray:
    """Items drawn by popularity among those already released at ``times`` (rejection sampling).

    After ``tries`` rejections the draw comes from the items released before the log started.
    """
    sampler, old_only = samplers
    out = sampler.sample(groups, rng)
    bad = np.flatnonzero(release[out] > times)
    for _ in range(tries):
        if bad.size == 0:
            return out
        redo = sampler.sample(groups[bad], rng)
        out[bad] = redo
        bad = bad[release[redo] > times[bad]]
    if bad.size:
        out[bad] = old_only.sample(groups[bad], rng)
    return out


# --- users and interests --------------------------------------------------------------------


@dataclass(frozen=True)
class _Users:
    n_events: np.ndarray  # (U,) int64
    categories: np.ndarray  # (U, K) int32, distinct categories; slot 0 is the core interest
    n_interests: np.ndarray  # (U,) int64 in 1..K
    base: np.ndarray  # (U, K) float32 base weight
    slope: np.ndarray  # (U, K) float32 log-weight change over the whole history
    birth: np.ndarray  # (U, K) float32 phase where the interest starts fading in (-10: at start)
    death: np.ndarray  # (U, K) float32 phase where it has faded out (10: never)


def _make_users(cfg: SyntheticConfig, rng: np.random.Generator) -> _Users:
    U, K, C = cfg.n_users, cfg.max_interests, cfg.n_categories
    shape = cfg.events_per_user_shape
    activity = rng.gamma(shape, cfg.events_per_user / shape, U)
    n_events = np.maximum(rng.poisson(activity), cfg.min_events_per_user).astype(np.int64)
    # Distinct categories per user, favouring popular ones (Gumbel top-k sampling).
    keys = np.log(rng.dirichlet(np.full(C, 2.0)) + 1e-12) + rng.gumbel(size=(U, C))
    categories = np.argsort(-keys, axis=1)[:, :K].astype(np.int32)
    n_interests = rng.integers(1, K + 1, U)
    base = rng.gamma(2.0, 1.0, (U, K)).astype(np.float32)
    slope = rng.normal(0.0, cfg.weight_drift, (U, K)).astype(np.float32)
    appears = rng.random((U, K)) < cfg.interest_appear_prob
    fades = rng.random((U, K)) < cfg.interest_fade_prob
    appears[:, 0] = fades[:, 0] = False  # the core interest is there from start to end
    birth = np.where(appears, rng.uniform(0.1, 0.8, (U, K)), -10.0)
    full = np.maximum(birth, 0.0) + cfg.interest_ramp
    room = np.clip(1.0 - full - cfg.interest_ramp, 0.0, None)
    death = np.where(fades, full + cfg.interest_ramp + rng.random((U, K)) * room, 10.0)
    return _Users(n_events, categories, n_interests, base, slope,
                  birth.astype(np.float32), death.astype(np.float32))


def _interest_weights(cfg: SyntheticConfig, users: _Users, sess_user: np.ndarray,
                      phase: np.ndarray) -> np.ndarray:
    """(S, K) float32 weights of each user's interest slots at each session, rows summing to 1."""
    p = phase[:, None].astype(np.float32)
    ramp = np.float32(cfg.interest_ramp)
    w = users.base[sess_user] * np.exp(users.slope[sess_user] * p)
    w *= np.clip((p - users.birth[sess_user]) / ramp, 0, 1)
    w *= np.clip((users.death[sess_user] - p) / ramp, 0, 1)
    w *= np.arange(cfg.max_interests) < users.n_interests[sess_user][:, None]
    w /= w.sum(axis=1, keepdims=True)  # the core slot is always > 0
    return w


# --- events ---------------------------------------------------------------------------------


def _make_events(cfg: SyntheticConfig, items: _Items, users: _Users,
                 rng: np.random.Generator) -> SyntheticData:
    U, C = cfg.n_users, cfg.n_categories
    offsets = np.concatenate([[0], np.cumsum(users.n_events)])
    E = int(offsets[-1])
    first = offsets[:-1]
    user = np.repeat(np.arange(U, dtype=np.int32), users.n_events)

    # Sessions: each event starts a new one with probability 1/session_length.
    new_session = rng.random(E) < 1.0 / cfg.session_length
    new_session[first] = True
    session = np.cumsum(new_session, dtype=np.int64) - 1  # global session index
    sess_first = np.flatnonzero(new_session)
    S = len(sess_first)
    sess_user = user[sess_first]
    sess_per_user = np.bincount(sess_user, minlength=U)
    sess_rank = (np.arange(S) - np.repeat(np.cumsum(sess_per_user) - sess_per_user,
                                          sess_per_user)).astype(np.int32)
    phase = sess_rank / np.maximum(sess_per_user[sess_user] - 1, 1)

    # Time: seconds to minutes within a session, hours to days between, users join at random.
    gaps = np.maximum(1, np.rint(rng.lognormal(np.log(cfg.event_gap_seconds), 1.0, E)))
    gaps = gaps.astype(np.int64)
    gaps[sess_first] = np.rint(3600 * (1 + rng.exponential(cfg.session_gap_hours, S)))
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    join = cfg.start_time + rng.integers(0, int(cfg.span_days * 86400), U)
    time = join[user] + (elapsed - elapsed[first][user])  # int64, strictly increasing per user

    # Each session follows one interest, drawn by the user's weights at that point in time.
    weights = _interest_weights(cfg, users, sess_user, phase)
    cw = np.cumsum(weights, axis=1)
    r = rng.random(S, dtype=np.float32) * cw[:, -1]
    last_held = weights.shape[1] - 1 - np.argmax(weights[:, ::-1] > 0, axis=1)
    slot = np.minimum((r[:, None] >= cw).sum(axis=1), last_held)  # guards float rounding
    sess_interest = users.categories[sess_user, slot]
    interest = sess_interest[session]

    # Items: Zipf popularity within the interest's category, among released items.
    old = items.release <= cfg.start_time
    every = np.ones(cfg.n_items, dtype=bool)
    all_items = (_GroupSampler(items.category, items.popularity, every, C),
                 _GroupSampler(items.category, items.popularity, old, C))
    item = _sample_released(all_items, interest, time, items.release, rng)
    noise = (rng.random(E) < cfg.noise_rate) if C > 1 else np.zeros(E, dtype=bool)
    other = ((interest[noise] + rng.integers(1, max(C, 2), noise.sum())) % C).astype(np.int32)
    item[noise] = _sample_released(all_items, other, time[noise], items.release, rng)
    kind = np.searchsorted(np.cumsum(cfg.event_mix)[:-1], rng.random(E), side="right")
    kind = kind.astype(np.int8)

    # Within-category order: after a main-product purchase the next event in the session buys
    # an accessory of the same category. A converted event is no longer a main product, so the
    # rule is a recurrence along the session; iterate to its fixed point (chains are short).
    trigger = (kind == 2) & ~items.accessory[item] & ~noise
    follows = np.zeros(E, dtype=bool)
    follows[1:] = ~new_session[1:] & (rng.random(E - 1) < cfg.accessory_prob)
    convert = np.zeros(E, dtype=bool)
    while True:
        nxt = np.zeros(E, dtype=bool)
        nxt[1:] = follows[1:] & trigger[:-1] & ~convert[:-1]
        if np.array_equal(nxt, convert):
            break
        convert = nxt
    acc_items = (_GroupSampler(items.category, items.popularity, items.accessory, C),
                 _GroupSampler(items.category, items.popularity, items.accessory & old, C))
    item[convert] = _sample_released(acc_items, interest[convert], time[convert],
                                     items.release, rng)
    kind[convert] = 2

    user_ids = _ids("u", U, 4)
    item_ids = items.catalog.frame.index.to_numpy()
    frame = pd.DataFrame({
        "user": _take_strings(user_ids, user),
        "item": _take_strings(item_ids, item),
        "timestamp": time.astype(np.float64),
        "event": _take_strings(np.asarray(EVENT_TYPES, dtype=object), kind),
        "interest": interest,
        "session": sess_rank[session],
    })
    frame.attrs["has_time"] = True
    names = [cat.name for cat in CATEGORIES[:C]]
    return SyntheticData(
        interactions=Interactions(frame),
        catalog=items.catalog,
        event_interest=interest,
        user_interests=_truth_frame(users, weights, sess_user, sess_rank,
                                    time[sess_first], user_ids, names),
        categories=names,
        config=cfg,
    )


def _take_strings(ids: np.ndarray, idx: np.ndarray):
    """``ids[idx]`` as the string column pandas would build, without a Python object per row."""
    dtype = pd.Series(ids[:1]).dtype  # "str" (Arrow-backed) in pandas 3, object before
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa  # present whenever pandas stores strings in Arrow

        return pd.array(pa.array(ids, type=pa.large_string()).take(pa.array(idx)), dtype=dtype)
    return ids[idx]


def _truth_frame(users: _Users, weights: np.ndarray, sess_user: np.ndarray,
                 sess_rank: np.ndarray, sess_time: np.ndarray, user_ids: np.ndarray,
                 names: list[str]) -> pd.DataFrame:
    """Tidy interest weights: one row per session and interest the user holds."""
    held = np.arange(weights.shape[1]) < users.n_interests[sess_user][:, None]
    s, k = np.nonzero(held)  # session-major, so rows stay ordered by user, session, slot
    u = sess_user[s]
    interest = users.categories[u, k]
    return pd.DataFrame({
        "user": _take_strings(user_ids, u),
        "session": sess_rank[s],
        "timestamp": sess_time[s].astype(np.float64),
        "interest": interest,
        "category": _take_strings(np.asarray(names, dtype=object), interest),
        "weight": weights[s, k],
    })
