"""User-facing errors: one line, no traceback, non-zero exit (see cli.main)."""


class UserError(Exception):
    """A mistake in the user's input (a missing file, a bad value, a malformed row).

    The message is printed on one line as ``berts: error: <message>`` and the
    command exits with status 2. Name the file and line where there is one.
    """


def where(path, line=None) -> str:
    """Format a location as ``path:line`` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)
