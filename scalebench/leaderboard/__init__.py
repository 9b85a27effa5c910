"""Leaderboard: schema validation, store, ranking and rendering of submitted results."""
