"""The one exception type for problems a user can fix.

The CLI prints its message on one line and exits with status 2; the app shows it with ``st.error``.
Messages say what is wrong *and* what to do about it.
"""


class BatError(Exception):
    """A problem with the user's input or settings, explained in words they can act on."""
