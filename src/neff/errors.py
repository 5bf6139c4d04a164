"""The one exception type neff raises for bad input: its message is one sentence naming the fix."""


class NeffError(ValueError):
    """Bad input or an unusable state, explained in one sentence that names the fix."""
