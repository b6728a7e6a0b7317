"""Reading, validating, splitting and fetching reaction data sets."""

from yieldtune.data.table import DataSpec, ReactionTable

__all__ = ["DataSpec", "ReactionTable"]
