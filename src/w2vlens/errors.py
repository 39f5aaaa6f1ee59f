"""The one error type that reaches users as a single clear line instead of a traceback."""


class W2VLensError(Exception):
    """Bad input or configuration: the message names the file or value and the problem."""
