"""The error answers Telegram's Bot API gives, as one exception type."""

from typing import Any


class BotApiError(Exception):
    """A failed Bot API call: the HTTP status and the `description` Telegram would answer with."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    @classmethod
    def bad_request(cls, detail: str) -> "BotApiError":
        """A 400 answer, worded like Telegram's: "Bad Request: <detail>"."""
        return cls(400, f"Bad Request: {detail}")

    @classmethod
    def too_many_requests(cls, retry_after: int) -> "BotApiError":
        """Telegram's flood-control answer, which PTB turns into `RetryAfter`."""
        return cls(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram sends with this error."""
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body
