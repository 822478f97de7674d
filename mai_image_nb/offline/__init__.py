"""Offline simulator (work in progress)."""
