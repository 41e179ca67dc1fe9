"""The one exception type that reaches users as a plain one-line message."""


class TexnetError(Exception):
    """A problem with the user's input or environment, explained in one line.

    The CLI prints these without a traceback; anything else is a bug.
    """
