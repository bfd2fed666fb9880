"""Request bodies read with a ceiling: a body over the limit is refused before it is read into memory."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    """The body is over the limit; `size` is its declared length when the client declared one."""

    def __init__(self, size: int | None) -> None:
        super().__init__(f"request body over the limit ({size} bytes declared)")
        self.size = size


def declared_length(request: Request) -> int | None:
    """The Content-Length the client declared, or None (absent or not a number)."""
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


async def read_body_within(request: Request, limit: int) -> bytes:
    """The whole body, if it is at most `limit` bytes; raise BodyTooLarge as soon as it is not.

    A declared Content-Length over the limit is refused before a byte is read; a body without
    one (chunked), or longer than it declared, is cut off at the first chunk past the limit.
    """
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge(declared)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(declared)
        chunks.append(chunk)
    return b"".join(chunks)
