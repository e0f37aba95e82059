"""The one exception type fairjax raises for bad user input.

The command line catches `FairjaxError` and prints its message without a traceback
(unless `--debug`); anything else is a bug and surfaces as one.
"""


class FairjaxError(ValueError):
    """Invalid user input: the message names the argument or column, the bad value and
    what would be accepted."""


class FairjaxWarning(UserWarning):
    """Something in the user's input that is allowed but probably unintended (an
    identifier-like column, a model folder that cannot be verified); the command line
    prints it as one line."""
