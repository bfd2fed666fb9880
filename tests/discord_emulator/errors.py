"""The error answers Discord's HTTP API gives, as one exception type."""

from typing import Any


class DiscordApiError(Exception):
    """A failed call: the HTTP status and the JSON error body Discord would answer with.

    `code` is Discord's JSON error code (10008 Unknown Message, 50035 Invalid Form Body, ...);
    `errors` the per-field details of a 50035.
    """

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.retry_after = retry_after

    @classmethod
    def invalid_form_body(cls, field: str, problem: str) -> "DiscordApiError":
        """Discord's 400 for a body that breaks a rule, with the field named as Discord does."""
        errors = {field: {"_errors": [{"code": "BASE_TYPE_INVALID", "message": problem}]}}
        return cls(400, 50035, "Invalid Form Body", errors=errors)

    @classmethod
    def unknown(cls, what: str, code: int) -> "DiscordApiError":
        """A 404 for something that does not exist: 'Unknown Message' (10008), 'Unknown Channel' (10003)..."""
        return cls(404, code, f"Unknown {what}")

    @classmethod
    def rate_limited(cls, retry_after: float, *, is_global: bool = False) -> "DiscordApiError":
        """Discord's 429 answer."""
        error = cls(429, 0, "You are being rate limited.", retry_after=retry_after)
        error.is_global = is_global
        return error

    is_global = False

    def payload(self) -> dict[str, Any]:
        """The JSON body Discord sends with this error."""
        if self.status == 429:
            return {"message": self.message, "retry_after": self.retry_after, "global": self.is_global}
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body
