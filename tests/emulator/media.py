"""File objects (PhotoSize lists, Document, Sticker, Animation) built and remembered as Telegram does."""

import copy
import mimetypes
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from .errors import BotApiError
from .photos import (
    ImageProcessingError,
    JpegRendition,
    animation_gif,
    encode_jpeg,
    open_image,
    sticker_webp,
    upright_rgb,
)
from .state import TelegramState

DOCUMENT_THUMBNAIL_SIDE = 320
_GENERIC_MIME_TYPE = "application/octet-stream"


def store_photo(state: TelegramState, renditions: Sequence[JpegRendition]) -> list[dict[str, Any]]:
    """Store the JPEG sizes of a photo (from `photo_renditions`) and return its PhotoSize list."""
    sizes = []
    for rendition in renditions:
        stored = state.files.add(rendition.data, folder="photos", extension="jpg")
        sizes.append({**stored.identity(), "width": rendition.width, "height": rendition.height})
    for size in sizes:
        state.file_objects[size["file_id"]] = ("photo", sizes)
    return copy.deepcopy(sizes)


def store_document(
    state: TelegramState, data: bytes, *, file_name: str, mime_type: str | None
) -> dict[str, Any]:
    """Store a file sent as a document: its bytes, name and type stay exactly as sent."""
    mime_type = _document_mime_type(file_name, mime_type)
    extension = PurePosixPath(file_name).suffix.lstrip(".") or "bin"
    stored = state.files.add(data, folder="documents", extension=extension)
    document: dict[str, Any] = {"file_name": file_name, "mime_type": mime_type, **stored.identity()}
    thumbnail = _image_thumbnail(state, data) if mime_type.startswith("image/") else None
    if thumbnail is not None:
        document["thumbnail"] = thumbnail
    state.file_objects[stored.file_id] = ("document", document)
    return copy.deepcopy(document)


def store_sticker(state: TelegramState) -> dict[str, Any]:
    """Store a static WEBP sticker, as a user sends from a sticker set."""
    stored = state.files.add(sticker_webp(), folder="stickers", extension="webp")
    sticker = {
        **stored.identity(),
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
        "set_name": "EmulatorStickers",
    }
    state.file_objects[stored.file_id] = ("sticker", sticker)
    return copy.deepcopy(sticker)


def store_animation(state: TelegramState) -> dict[str, Any]:
    """Store a small animated GIF and return the message content Telegram gives it.

    Telegram delivers an animation twice, as `animation` and (for old clients) as `document`.
    """
    width, height = 240, 160
    stored = state.files.add(animation_gif(width, height), folder="animations", extension="gif")
    document = {**stored.identity(), "file_name": "animation.gif", "mime_type": "image/gif"}
    animation = {**document, "width": width, "height": height, "duration": 1}
    state.file_objects[stored.file_id] = ("animation", animation)
    return copy.deepcopy({"animation": animation, "document": document})


def reuse_file(state: TelegramState, file_id: str, kind: str) -> Any:
    """The file object behind a file_id the bot sends again, checked to be of the right kind."""
    if file_id.startswith(("http://", "https://")):
        raise BotApiError.bad_request("failed to get HTTP URL content")
    known = state.file_objects.get(file_id)
    if known is None:
        raise BotApiError.bad_request("wrong file identifier/HTTP URL specified")
    known_kind, file_object = known
    if known_kind != kind:
        raise BotApiError.bad_request("type of file mismatch")
    return copy.deepcopy(file_object)


def file_bytes(state: TelegramState, file_object: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    """The bytes of a file object; for a photo, those of its largest size."""
    file_id = file_object[-1]["file_id"] if isinstance(file_object, list) else file_object["file_id"]
    stored = state.files.by_id(file_id)
    if stored is None:
        raise ValueError(f"file {file_id} is not stored")
    return stored.data


def _document_mime_type(file_name: str, declared: str | None) -> str:
    """The declared type unless it is the generic one, then a guess from the name, as Telegram does."""
    if declared and declared != _GENERIC_MIME_TYPE:
        return declared
    return mimetypes.guess_type(file_name, strict=False)[0] or _GENERIC_MIME_TYPE


def _image_thumbnail(state: TelegramState, data: bytes) -> dict[str, Any] | None:
    """A JPEG thumbnail (PhotoSize) of an image document, or None when the bytes do not decode."""
    try:
        image = upright_rgb(open_image(data))
    except ImageProcessingError:
        return None
    image.thumbnail((DOCUMENT_THUMBNAIL_SIDE, DOCUMENT_THUMBNAIL_SIDE))
    stored = state.files.add(encode_jpeg(image), folder="thumbnails", extension="jpg")
    return {**stored.identity(), "width": image.width, "height": image.height}
