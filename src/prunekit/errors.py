"""Errors that prunekit reports to its users as one clear line (the CLI prints no traceback)."""


class PrunekitError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class UnknownNameError(PrunekitError, KeyError):
    """A name that no registry knows; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def first_line(err: BaseException, limit: int | None = 200) -> str:
    """The first line of ``err``'s message (its type's name when it has none), at most ``limit`` characters (None:
    all of it): what a one-line error quotes of a library's error."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]
