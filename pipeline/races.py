"""One retry rule for a create race lost to another process starting at the same moment.

Several commands may create the same row at once (a fresh Optuna database's tables, an MLflow
experiment, its tags, a dataset row): the loser's error says the row exists, and by the next
try the winner's row is there. The tracking and search packages both retry through this one
function, each with its own test of what a lost race looks like (standard library only).
"""

from __future__ import annotations

import time


def retry_lost_race(make, lost, *, pause: float, tries: int = 3):
    """`make()`, again after `pause`, `pause + 1`, ... seconds while it raises an exception
    that `lost(exc)` recognizes as a create race lost to another process starting at the same
    moment (the winner's objects are there by the next try); the last failure is raised."""
    for attempt in range(tries):
        try:
            return make()
        except Exception as exc:
            if attempt + 1 == tries or not lost(exc):
                raise
            time.sleep(pause + attempt)
