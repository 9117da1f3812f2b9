"""Runs: starting them (one active run per learner), driving each to its `done`, storing every
event, and fanning them out to every browser that follows, on any web process (see manager)."""

from app.runs.manager import RunManager
from app.runs.store import RateLimited
from app.runs.writer import FLUSH_EVERY_S

__all__ = ["FLUSH_EVERY_S", "RateLimited", "RunManager"]
