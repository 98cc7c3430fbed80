"""Prefect flows. `search_and_learn` is the full recipe."""
