"""The root of every error whose message is safe to show to the person who caused it."""


class ApplicationError(Exception):
    """A refusal the user can read: ``str(e)`` is the whole message.

    Services raise subclasses of this for bad input and broken rules; interfaces (cogs,
    views, API routes, management commands) catch it and show the message as it is.
    Anything else is a bug and is logged with its traceback. ``http_status`` is the API's
    answer to it: 400 here, more specific in subclasses (404 not found, 409 taken).
    """

    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
