"""Metrics comparing learned scale spaces with real data."""
