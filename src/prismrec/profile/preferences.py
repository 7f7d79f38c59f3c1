"""A user's stored steering of their own recommendations: interests muted or boosted.

One record per (user, interest id): ``steer`` is ``"mute"`` (every item of that interest is
left out of the user's composed list) or ``"boost"`` (its share of the list is raised); see
``prismrec.explain.interests.steer``. Interest ids are ``Interest.component``: the model's
interest-head components, which keep their meaning as the user's events arrive. Both store
backends keep them (``set_preference`` / ``preferences``), and ``forget`` erases them with
the rest of the user.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from prismrec.errors import DataError

STEERS = ("mute", "boost")
MAX_INTEREST = 1_000_000  # interest ids are head components: small non-negative integers


@dataclass(frozen=True, slots=True)
class Preference:
    """One stored preference: the interest id, "mute" or "boost", and when it was set."""

    interest: int
    steer: str
    updated_at: float

    def to_dict(self) -> dict:
        return {"interest": self.interest, "mute": self.steer == "mute",
                "boost": self.steer == "boost", "updated_at": self.updated_at}


def check_preference(interest: object, steer: object) -> tuple[int, str | None]:
    """(interest, steer) checked: an integer id in [0, MAX_INTEREST) and "mute", "boost" or
    None (None clears the preference)."""
    if isinstance(interest, bool) or not isinstance(interest, numbers.Integral) \
            or not 0 <= interest < MAX_INTEREST:
        raise DataError(f"interest must be an interest id (an integer >= 0, see the user's "
                        f"profile), got {interest!r}")
    if steer is not None and steer not in STEERS:
        raise DataError(f"steer must be one of {STEERS} or None (to clear), got {steer!r}")
    return int(interest), steer
