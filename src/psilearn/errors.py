"""psilearn's exception for bad input (the lowest layer: every package may raise it)."""


class DataError(ValueError):
    """Bad input data: the message names the file, the frame and the key where possible."""
