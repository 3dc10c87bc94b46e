"""How long a failed send waits before its next try: one rule for the message worker and
the campaign runner alike."""

from __future__ import annotations

__all__ = ["backoff"]


def backoff(job_try: int, *, base: float, maximum: float) -> float:
    """Seconds to wait before try ``job_try + 1``: base, 2x, 4x ... capped at ``maximum``."""
    return float(min(maximum, base * (2 ** max(0, job_try - 1))))
