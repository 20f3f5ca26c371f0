"""The one exception type the CLI turns into a clean one-line error (no traceback)."""


class RnemBenchError(Exception):
    """A user-facing problem: bad input, missing or foreign data, invalid submission.

    The message must be one line that names the problem (and the field or path at fault).
    """
