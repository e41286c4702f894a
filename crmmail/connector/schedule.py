"""When a box syncs next: every 15-30 minutes, jittered, and backing off after failures.

Pure arithmetic on a given ``now`` and a given random source, so a seeded ``random.Random``
makes the schedule reproducible in tests.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

FIRST_RETRY = 60.0  # seconds after the first transient failure
MAX_RETRY = 3600.0


@dataclass(frozen=True)
class Schedule:
    """The interval bounds (seconds) and the random source of the jitter."""

    interval_min: float
    interval_max: float
    rng: random.Random

    def after_success(self, now: datetime) -> datetime:
        """Somewhere in [min, max] from now, so boxes do not all poll at once."""
        return now + timedelta(seconds=self.rng.uniform(self.interval_min, self.interval_max))

    def after_failure(self, now: datetime, failures: int) -> datetime:
        """Doubling from a minute up to an hour, with ±20 % jitter.

        >>> from datetime import UTC
        >>> s = Schedule(900, 1800, random.Random(1))
        >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
        >>> [round((s.after_failure(t0, n) - t0).total_seconds()) for n in (1, 2, 3, 9)]
        [51, 137, 265, 3247]
        """
        base = min(FIRST_RETRY * 2 ** max(failures - 1, 0), MAX_RETRY)
        return now + timedelta(seconds=base * self.rng.uniform(0.8, 1.2))

    def after_permanent_failure(self, now: datetime) -> datetime:
        """Something the user must fix: look again at the slow end of the interval."""
        return now + timedelta(seconds=self.interval_max)

    def first_sync(self, now: datetime) -> datetime:
        """A new box imports at once."""
        return now
