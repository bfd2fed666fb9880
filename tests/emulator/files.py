"""The files Telegram stores for a bot: what users sent and what the bot uploaded."""

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

# getFile refuses files above this size (https://core.telegram.org/bots/api#getfile).
GET_FILE_LIMIT_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart Bot API request, as the bot uploaded it."""

    file_name: str
    mime_type: str
    data: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"UploadedFile({self.file_name!r}, {self.mime_type!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class StoredFile:
    """One file on Telegram's side, reachable by file_id and downloadable by file_path."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes = field(repr=False)

    def identity(self) -> dict[str, Any]:
        """The fields every file object (PhotoSize, Document, Sticker...) starts with."""
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id, "file_size": len(self.data)}

    def as_file(self) -> dict[str, Any]:
        """The File object getFile answers with."""
        return {**self.identity(), "file_path": self.file_path}


class FileStore:
    """Files by file_id and by file_path; the caller holds the emulator's lock."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._numbers = itertools.count(1)

    def add(self, data: bytes, *, folder: str, extension: str) -> StoredFile:
        """Store bytes under fresh identifiers, like Telegram does for every upload."""
        number = next(self._numbers)
        stored = StoredFile(
            # Real identifiers are opaque base64url strings; a random part keeps tests from relying on them.
            file_id=f"BQACAgIAAx{number:06d}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AgAD{number:06d}{secrets.token_urlsafe(6)}",
            file_path=f"{folder}/file_{number}.{extension}",
            data=data,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def by_id(self, file_id: str) -> StoredFile | None:
        """The file with this file_id, if Telegram has it."""
        return self._by_id.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        """The file at this download path, if Telegram has it."""
        return self._by_path.get(file_path)
