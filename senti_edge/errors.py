"""The one exception users see.

Library code raises `SentiEdgeError` for anything a user can fix (bad input, missing model,
wrong option). Its message is shown as is, on one line, by the CLI, so it names the bad value
and says what to do next. Programming errors stay built-in exceptions.
"""


class SentiEdgeError(Exception):
    """A failure the user can act on; `str(err)` is the whole message."""
