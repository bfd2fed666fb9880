"""Discord's objects as the emulator sends them: users, members, channels, the server, messages."""

import copy
import io
from typing import Any

from PIL import Image

from .state import DM, Channel, DiscordState, StoredFile

# Message flags and types (Discord's numbers).
EPHEMERAL = 1 << 6
LOADING = 1 << 7
DEFAULT_MESSAGE = 0
REPLY_MESSAGE = 19
COMMAND_MESSAGE = 20
# Every permission bit a member with the Administrator permission is shown to have.
ALL_PERMISSIONS = str((1 << 50) - 1)
MEMBER_PERMISSIONS = str(
    (1 << 10) | (1 << 11) | (1 << 15) | (1 << 16) | (1 << 31)
)  # view, send, files, history


def role(role_id: int, name: str, position: int, permissions: str) -> dict[str, Any]:
    """A server role."""
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": permissions,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def member(state: DiscordState, user_id: int, *, with_user: bool = True) -> dict[str, Any]:
    """A server member (in MESSAGE_CREATE the user is beside it, so it comes without)."""
    payload: dict[str, Any] = {
        "nick": None,
        "avatar": None,
        "roles": [str(role_id) for role_id in state.member_roles.get(user_id, [])],
        "joined_at": "2025-01-01T00:00:00+00:00",
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
    }
    if with_user:
        payload["user"] = state.user(user_id)
    return payload


def channel(state: DiscordState, stored: Channel) -> dict[str, Any]:
    """A channel object: a DM with its recipient, or a server text channel."""
    if stored.type == DM:
        recipient = state.user(stored.recipient_id or 0)
        return {
            "id": str(stored.id),
            "type": DM,
            "last_message_id": None,
            "flags": 0,
            "recipients": [recipient],
        }
    return {
        "id": str(stored.id),
        "type": stored.type,
        "guild_id": state.guild["id"],
        "name": stored.name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def guild_create(state: DiscordState) -> dict[str, Any]:
    """The GUILD_CREATE event of the one server the bot is in."""
    guild = copy.deepcopy(state.guild)
    server_channels = [stored for stored in state.channels.values() if stored.type != DM]
    return {
        **guild,
        "unavailable": False,
        "joined_at": "2025-01-01T00:00:00+00:00",
        "large": False,
        "member_count": len(state.member_roles) + 1,
        "members": [member(state, int(state.bot_user["id"]))],
        "channels": [channel(state, stored) for stored in server_channels],
        "threads": [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def attachment(stored: StoredFile) -> dict[str, Any]:
    """An attachment object; images get their size in pixels, as Discord adds it."""
    payload: dict[str, Any] = {
        "id": str(stored.id),
        "filename": stored.filename,
        "size": len(stored.data),
        "url": stored.url,
        "proxy_url": stored.url,
    }
    if stored.content_type:
        payload["content_type"] = stored.content_type
    size = image_size(stored.data)
    if size is not None:
        payload["width"], payload["height"] = size
    return payload


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of an image Discord can read, else None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def message(
    state: DiscordState,
    channel_id: int,
    author: dict[str, Any],
    *,
    content: str = "",
    attachments: list[dict[str, Any]] | None = None,
    embeds: list[dict[str, Any]] | None = None,
    components: list[dict[str, Any]] | None = None,
    flags: int = 0,
    message_type: int = DEFAULT_MESSAGE,
    mentions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A message object as the REST API answers with it (MessageResponse)."""
    return {
        "id": str(state.snowflake()),
        "channel_id": str(channel_id),
        "author": author,
        "type": message_type,
        "content": content,
        "mentions": mentions or [],
        "mention_roles": [],
        "mention_everyone": False,
        "attachments": attachments or [],
        "embeds": embeds or [],
        "components": components or [],
        "timestamp": state.now(),
        "edited_timestamp": None,
        "flags": flags,
        "pinned": False,
        "tts": False,
    }


def numbered_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord answers them: each with a numeric `id` when the bot gave none."""
    numbered = copy.deepcopy(components)
    counter = 0
    used = {item["id"] for item in _walk(numbered) if "id" in item}

    for item in _walk(numbered):
        if "id" not in item:
            counter += 1
            while counter in used:
                counter += 1
            item["id"] = counter
    return numbered


def _walk(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in components:
        found.append(item)
        found += _walk(item.get("components", []))
        if "component" in item:
            found += _walk([item["component"]])
    return found


def component_custom_ids(components: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every interactive component of a message by custom_id."""
    return {item["custom_id"]: item for item in _walk(components) if "custom_id" in item}
