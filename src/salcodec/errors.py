"""The one exception type users see: a bad file, a bad argument, a missing model."""


class SalcodecError(Exception):
    """A user-facing failure with a one-line message (CLI exit code 2)."""
