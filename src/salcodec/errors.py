"""The one exception type users see: a bad file, a bad argument, a missing model."""


class SalcodecError(Exception):
    """A user-facing failure with a one-line message (CLI exit code 2).

    Messages may quote what they refuse (a path, a name from a file); line breaks in it are
    replaced so that the message stays one line whatever the input held.
    """

    def __init__(self, message: str = ""):
        super().__init__(" ".join(str(message).splitlines()))
