"""Model families, shipped weights and their registry (registry.py)."""

DEFAULT_MODEL = "default-v3"  # the id `compress` uses unless told otherwise
