"""Shared helpers that are not trading-specific (tiny purpose-built test envs)."""
