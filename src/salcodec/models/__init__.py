"""Model families, shipped weights and their registry (registry.py)."""

DEFAULT_MODEL = "default-v4"  # the id `compress` uses unless told otherwise
