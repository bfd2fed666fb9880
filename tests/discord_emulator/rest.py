"""The REST routes: each takes the state (locked), the path parameters and the request, and answers.

Bodies have already passed the OpenAPI schema check; these functions add Discord's own rules that
the schema does not carry (a bot's 2,000-character messages, five buttons a row, unique custom ids,
the three seconds to acknowledge an interaction, one response per interaction...).
"""

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import payloads
from .errors import DiscordApiError
from .state import DM, DiscordState, Interaction, StoredFile, StoredMessage

MAX_CONTENT = 2000  # a bot's message, whatever the schema's maxLength says for people with Nitro
MAX_EMBED_TOTAL = 6000
MAX_EMBED_DESCRIPTION = 4096
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # a bot's upload limit outside boosted servers
MAX_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
MAX_CUSTOM_ID = 100
MAX_LABEL = 80
INTERACTION_ACK_SECONDS = 3.0
INTERACTION_TOKEN_SECONDS = 15 * 60

# Interaction callback types.
PONG, MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, MODAL = 1, 4, 5, 6, 7, 9


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request."""

    name: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Request:
    """What a route handler gets."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any
    files: dict[str, UploadedFile]


Handler = Callable[[DiscordState, Request], Any]
HANDLERS: dict[str, Handler] = {}


def route(key: str) -> Callable[[Handler], Handler]:
    """Register a handler for a route of the spec subset."""

    def register(handler: Handler) -> Handler:
        HANDLERS[key] = handler
        return handler

    return register


# Identity


@route("GET /gateway/bot")
def get_gateway_bot(state: DiscordState, request: Request) -> Any:
    """Where the gateway is: this emulator's own WebSocket."""
    return {
        "url": state.base_url.replace("http://", "ws://") + "/gateway",
        "shards": 1,
        "session_start_limit": {
            "total": 1000,
            "remaining": 999,
            "reset_after": 86_400_000,
            "max_concurrency": 1,
        },
    }


@route("GET /users/@me")
def get_me(state: DiscordState, request: Request) -> Any:
    """The bot's own user, with the fields only its owner sees."""
    return {**state.bot_user, "mfa_enabled": False, "locale": "en-US", "verified": True}


@route("GET /oauth2/applications/@me")
def get_application(state: DiscordState, request: Request) -> Any:
    """The bot's application."""
    owner = state.user(1)
    return {
        "id": state.bot_user["id"],
        "name": state.bot_user["username"],
        "icon": None,
        "description": "",
        "type": None,
        "bot": state.bot_user,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": state.application_flags,
        "flags_new": str(state.application_flags),
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "owner": owner,
        "approximate_guild_count": 1,
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "team": None,
        "eligible_oauth2_scopes": [],
    }


@route("POST /users/@me/channels")
def open_dm(state: DiscordState, request: Request) -> Any:
    """Open (or find) the DM channel with a person."""
    recipient = int(request.body["recipient_id"])
    if recipient not in state.users:
        raise DiscordApiError.unknown("User", 10013)
    return payloads.channel(state, state.dm_channel(recipient))


# Slash commands


@route("PUT /applications/{application_id}/commands")
def overwrite_global_commands(state: DiscordState, request: Request) -> Any:
    """Replace the global commands."""
    return _overwrite_commands(state, request, None)


@route("PUT /applications/{application_id}/guilds/{guild_id}/commands")
def overwrite_guild_commands(state: DiscordState, request: Request) -> Any:
    """Replace one server's commands."""
    guild_id = int(request.params["guild_id"])
    if str(guild_id) != state.guild["id"]:
        raise DiscordApiError(403, 50001, "Missing Access")
    return _overwrite_commands(state, request, guild_id)


def _overwrite_commands(state: DiscordState, request: Request, guild_id: int | None) -> Any:
    _own_application(state, request.params["application_id"])
    names = [command["name"] for command in request.body]
    if len(names) != len(set(names)):
        raise DiscordApiError.invalid_form_body("name", "Application command names must be unique")
    commands = []
    for command in request.body:
        stored = {
            "id": str(state.snowflake()),
            "application_id": state.bot_user["id"],
            "version": str(state.snowflake()),
            "default_member_permissions": _permissions(command.get("default_member_permissions")),
            "type": command.get("type", 1),
            "name": command["name"],
            "description": command.get("description") or "",
            "options": command.get("options") or [],
            "nsfw": bool(command.get("nsfw")),
            "contexts": command.get("contexts"),
            "integration_types": command.get("integration_types") or [0],
        }
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        commands.append(stored)
    state.commands[guild_id] = commands
    return copy.deepcopy(commands)


def _permissions(value: Any) -> str | None:
    """A permission bit set as Discord answers it: a string of the integer (the bot may send a number)."""
    return None if value is None else str(value)


# Messages


@route("POST /channels/{channel_id}/messages")
def create_message(state: DiscordState, request: Request) -> Any:
    """Send a message to a channel (a reply when it carries a message_reference)."""
    channel = state.channel(int(request.params["channel_id"]))
    content = _message_content(state, channel.id, request.body, request.files)
    message = payloads.message(state, channel.id, state.bot_user, **content)
    reference = request.body.get("message_reference")
    if reference:
        referenced = state.stored(channel.id, int(reference["message_id"]))
        if referenced is None:
            if reference.get("fail_if_not_exists", True):
                raise DiscordApiError.invalid_form_body("message_reference", "Unknown message")
        else:
            message["type"] = payloads.REPLY_MESSAGE
            message["message_reference"] = {
                "type": 0,
                "channel_id": str(channel.id),
                "message_id": referenced.message["id"],
                **({"guild_id": state.guild["id"]} if channel.type != DM else {}),
            }
            message["referenced_message"] = copy.deepcopy(referenced.message)
    _publish(state, state.add_message(message, from_bot=True), "MESSAGE_CREATE")
    return copy.deepcopy(message)


@route("GET /channels/{channel_id}/messages/{message_id}")
def get_message(state: DiscordState, request: Request) -> Any:
    """One message of a channel."""
    return copy.deepcopy(_message(state, request).message)


@route("PATCH /channels/{channel_id}/messages/{message_id}")
def edit_message(state: DiscordState, request: Request) -> Any:
    """Edit one of the bot's messages."""
    stored = _message(state, request)
    if not stored.from_bot:
        raise DiscordApiError(403, 50005, "Cannot edit a message authored by another user")
    return _edit(state, stored, request)


@route("POST /channels/{channel_id}/typing")
def trigger_typing(state: DiscordState, request: Request) -> Any:
    """Show "typing…" (nothing to keep)."""
    state.channel(int(request.params["channel_id"]))
    return None


# Interactions


@route("POST /interactions/{interaction_id}/{interaction_token}/callback")
def interaction_callback(state: DiscordState, request: Request) -> Any:
    """The bot's one response to an interaction, within three seconds."""
    interaction = state.interactions.get(request.params["interaction_token"])
    if interaction is None or str(interaction.id) != request.params["interaction_id"]:
        raise DiscordApiError.unknown("interaction", 10062)
    if time.monotonic() - interaction.created > INTERACTION_ACK_SECONDS:
        raise DiscordApiError.unknown("interaction", 10062)  # what Discord answers a late response
    if interaction.response_type is not None:
        raise DiscordApiError(400, 40060, "Interaction has already been acknowledged.")
    callback_type = request.body["type"]
    data = request.body.get("data") or {}
    shown: dict[str, Any] | None = None  # the message the response created or updated
    if callback_type in (MESSAGE, DEFERRED_MESSAGE):
        shown = _respond_with_message(state, interaction, callback_type, data, request.files)
    elif callback_type in (DEFERRED_UPDATE, UPDATE):
        if interaction.message_id is None:
            raise DiscordApiError(400, 40043, "Interaction callback type is not valid for this interaction")
        if callback_type == UPDATE:
            stored = _component_message(state, interaction)
            _apply_edit(state, stored, data, request.files)
            stored.edits += 1
            _publish(state, stored, "MESSAGE_UPDATE")
            shown = stored.message
    elif callback_type == MODAL:
        if interaction.type == 5:
            raise DiscordApiError(400, 40043, "A modal cannot answer a modal submission")
        _check_modal(data)
        interaction.modal = copy.deepcopy(data)
    elif callback_type != PONG:
        raise DiscordApiError.invalid_form_body(
            "type", f"Interaction callback type {callback_type} is not supported"
        )
    interaction.response_type = callback_type
    interaction.response_at = time.monotonic()
    if request.query.get("with_response") not in ("1", "true", "True"):
        return None
    answer: dict[str, Any] = {"interaction": {"id": str(interaction.id), "type": interaction.type}}
    if shown is not None:
        answer["interaction"].update(
            response_message_id=shown["id"],
            response_message_loading=callback_type == DEFERRED_MESSAGE,
            response_message_ephemeral=bool(shown["flags"] & payloads.EPHEMERAL),
        )
        if callback_type != DEFERRED_MESSAGE:  # a "thinking…" message is not a resource yet
            answer["resource"] = {"type": callback_type, "message": copy.deepcopy(shown)}
    return answer


def _respond_with_message(
    state: DiscordState,
    interaction: Interaction,
    callback_type: int,
    data: dict[str, Any],
    files: dict[str, UploadedFile],
) -> dict[str, Any]:
    """The response message: the bot's answer, or "thinking…" until a follow-up fills it."""
    if callback_type == DEFERRED_MESSAGE:
        flags = (data.get("flags") or 0) & payloads.EPHEMERAL
        message = payloads.message(
            state, interaction.channel_id, state.bot_user, flags=flags | payloads.LOADING
        )
    else:
        content = _message_content(state, interaction.channel_id, data, files)
        message = payloads.message(state, interaction.channel_id, state.bot_user, **content)
    message["type"] = payloads.COMMAND_MESSAGE if interaction.type == 2 else payloads.DEFAULT_MESSAGE
    message["application_id"] = state.bot_user["id"]
    message["webhook_id"] = state.bot_user["id"]
    message["interaction_metadata"] = _interaction_metadata(state, interaction)
    stored = state.add_message(message, from_bot=True, loading=callback_type == DEFERRED_MESSAGE)
    interaction.original_message_id = int(message["id"])
    if callback_type == MESSAGE:
        _publish(state, stored, "MESSAGE_CREATE")
    return message


@route("POST /webhooks/{webhook_id}/{webhook_token}")
def followup(state: DiscordState, request: Request) -> Any:
    """A follow-up message; the first after a deferred response fills the "thinking…" message."""
    interaction = _answered_interaction(state, request)
    original = _original_or_none(state, interaction)
    if original is not None and original.loading:
        _apply_edit(state, original, request.body, request.files, keep_flags=payloads.EPHEMERAL)
        original.loading = False
        _publish(state, original, "MESSAGE_CREATE")
        stored = original
    else:
        content = _message_content(state, interaction.channel_id, request.body, request.files)
        message = payloads.message(state, interaction.channel_id, state.bot_user, **content)
        message["webhook_id"] = state.bot_user["id"]
        message["application_id"] = state.bot_user["id"]
        stored = state.add_message(message, from_bot=True)
        _publish(state, stored, "MESSAGE_CREATE")
    interaction.followups.append(int(stored.message["id"]))
    return copy.deepcopy(stored.message) if request.query.get("wait") in ("1", "true", "True") else None


@route("GET /webhooks/{webhook_id}/{webhook_token}/messages/@original")
def get_original(state: DiscordState, request: Request) -> Any:
    """The interaction's original response."""
    interaction = _answered_interaction(state, request)
    return copy.deepcopy(_original(state, interaction).message)


@route("PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original")
def edit_original(state: DiscordState, request: Request) -> Any:
    """Edit the interaction's original response (for a button: the message the button is under)."""
    interaction = _answered_interaction(state, request)
    stored = _original(state, interaction)
    answer = _edit(state, stored, request)
    stored.loading = False
    return answer


@route("PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
def edit_followup(state: DiscordState, request: Request) -> Any:
    """Edit a follow-up message of the interaction."""
    interaction = _answered_interaction(state, request)
    message_id = int(request.params["message_id"])
    if message_id not in interaction.followups and message_id != interaction.original_message_id:
        raise DiscordApiError.unknown("Message", 10008)
    stored = state.find_message(message_id)
    if stored is None:
        raise DiscordApiError.unknown("Message", 10008)
    return _edit(state, stored, request)


# Shared rules


def _own_application(state: DiscordState, application_id: str) -> None:
    if application_id != state.bot_user["id"]:
        raise DiscordApiError(403, 50001, "Missing Access")


def _message(state: DiscordState, request: Request) -> StoredMessage:
    channel = state.channel(int(request.params["channel_id"]))
    stored = state.stored(channel.id, int(request.params["message_id"]))
    if stored is None:
        raise DiscordApiError.unknown("Message", 10008)
    return stored


def _answered_interaction(state: DiscordState, request: Request) -> Interaction:
    interaction = state.interactions.get(request.params["webhook_token"])
    if interaction is None or request.params["webhook_id"] != state.bot_user["id"]:
        raise DiscordApiError.unknown("Webhook", 10015)
    if time.monotonic() - interaction.created > INTERACTION_TOKEN_SECONDS:
        raise DiscordApiError(401, 50027, "Invalid Webhook Token")
    if interaction.response_type is None:
        raise DiscordApiError.unknown("Webhook", 10015)  # nothing to follow up before a response
    return interaction


def _original_or_none(state: DiscordState, interaction: Interaction) -> StoredMessage | None:
    """The interaction's original response; for a button's deferred update, the button's message."""
    message_id = interaction.original_message_id
    if message_id is None and interaction.response_type in (DEFERRED_UPDATE, UPDATE):
        message_id = interaction.message_id
    return None if message_id is None else state.find_message(message_id)


def _original(state: DiscordState, interaction: Interaction) -> StoredMessage:
    stored = _original_or_none(state, interaction)
    if stored is None:
        raise DiscordApiError.unknown("Message", 10008)
    return stored


def _component_message(state: DiscordState, interaction: Interaction) -> StoredMessage:
    stored = None if interaction.message_id is None else state.find_message(interaction.message_id)
    if stored is None:
        raise DiscordApiError.unknown("Message", 10008)
    return stored


def _interaction_metadata(state: DiscordState, interaction: Interaction) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "id": str(interaction.id),
        "type": interaction.type,
        "user": state.user(interaction.user_id),
        "authorizing_integration_owners": {"0": state.guild["id"]},
    }
    if interaction.type == 3:
        metadata["interacted_message_id"] = str(interaction.message_id)
    opener = state.interactions.get(interaction.opener_token or "")
    if interaction.type == 5 and opener is not None:
        metadata["triggering_interaction_metadata"] = _interaction_metadata(state, opener)
    return metadata


def _edit(state: DiscordState, stored: StoredMessage, request: Request) -> Any:
    _apply_edit(state, stored, request.body, request.files)
    stored.edits += 1
    _publish(state, stored, "MESSAGE_UPDATE")
    return copy.deepcopy(stored.message)


def _apply_edit(
    state: DiscordState,
    stored: StoredMessage,
    body: dict[str, Any],
    files: dict[str, UploadedFile],
    keep_flags: int = 0,
) -> None:
    """Replace the parts of a message an edit names; kept attachments are listed by id."""
    message = stored.message
    channel_id = int(message["channel_id"])
    existing = {attachment["id"]: attachment for attachment in message["attachments"]}
    content = _message_content(state, channel_id, body, files, existing=existing, allow_empty=True)
    for name in ("content", "embeds", "components"):
        if name in body:
            message[name] = content[name]
    if "attachments" in body or files:
        message["attachments"] = content["attachments"]
    if "flags" in body and body["flags"] is not None:
        message["flags"] = (message["flags"] & keep_flags) | body["flags"]
    message["flags"] &= ~payloads.LOADING
    if not (message["content"] or message["embeds"] or message["components"] or message["attachments"]):
        raise DiscordApiError(400, 50006, "Cannot send an empty message")
    if not stored.loading:
        message["edited_timestamp"] = state.now()


def _message_content(
    state: DiscordState,
    channel_id: int,
    body: dict[str, Any],
    files: dict[str, UploadedFile],
    *,
    existing: dict[str, dict[str, Any]] | None = None,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Check a message body against Discord's rules and turn it into the message's parts."""
    content = body.get("content") or ""
    if len(content) > MAX_CONTENT:
        raise DiscordApiError.invalid_form_body("content", f"Must be {MAX_CONTENT} or fewer in length.")
    attachments = _attachments(state, channel_id, body, files, existing or {})
    embeds = [_embed(embed, attachments) for embed in body.get("embeds") or []]
    if (
        sum(len(embed.get("title", "")) + len(embed.get("description", "")) for embed in embeds)
        > MAX_EMBED_TOTAL
    ):
        raise DiscordApiError.invalid_form_body("embeds", "Embed size exceeds maximum size of 6000")
    components = body.get("components") or []
    _check_components(components)
    if not allow_empty and not (content or embeds or components or attachments):
        raise DiscordApiError(400, 50006, "Cannot send an empty message")
    return {
        "content": content,
        "attachments": attachments,
        "embeds": embeds,
        "components": payloads.numbered_components(components),
        "flags": (body.get("flags") or 0) & payloads.EPHEMERAL,
    }


def _attachments(
    state: DiscordState,
    channel_id: int,
    body: dict[str, Any],
    files: dict[str, UploadedFile],
    existing: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Uploaded files (files[n] named by body.attachments[].id = n) and kept attachments (by id)."""
    described = {str(item["id"]): item for item in body.get("attachments") or []}
    result = [existing[key] for key in described if key in existing]
    for part in files.values():
        index = part.name.removeprefix("files[").removesuffix("]")
        if len(part.data) > MAX_UPLOAD_BYTES:
            raise DiscordApiError(413, 40005, "Request entity too large")
        filename = described.get(index, {}).get("filename") or part.filename
        file_id = state.snowflake()
        url = f"{state.base_url}/attachments/{channel_id}/{file_id}/{filename}"
        stored = StoredFile(file_id, channel_id, filename, part.content_type, part.data, url)
        state.files[file_id] = stored
        result.append(payloads.attachment(stored))
    unknown = [key for key in described if key not in existing and f"files[{key}]" not in files]
    if unknown:
        raise DiscordApiError.invalid_form_body("attachments", f"Unknown attachment ids {unknown}")
    return result


def _embed(embed: dict[str, Any], attachments: list[dict[str, Any]]) -> dict[str, Any]:
    """An embed as Discord answers it: typed, its attachment:// pictures resolved."""
    if len(embed.get("description") or "") > MAX_EMBED_DESCRIPTION:
        raise DiscordApiError.invalid_form_body("embeds.0.description", "Must be 4096 or fewer in length.")
    answered = {key: value for key, value in embed.items() if value is not None}
    answered["type"] = "rich"
    for part in ("image", "thumbnail"):
        picture = answered.get(part)
        if picture and str(picture.get("url", "")).startswith("attachment://"):
            name = picture["url"].removeprefix("attachment://")
            match = next((item for item in attachments if item["filename"] == name), None)
            if match is None:
                raise DiscordApiError.invalid_form_body(f"embeds.0.{part}.url", f"No attachment named {name}")
            answered[part] = {
                "url": match["url"],
                "proxy_url": match["proxy_url"],
                **{key: match[key] for key in ("width", "height", "content_type") if key in match},
            }
    return answered


def _check_components(rows: list[dict[str, Any]]) -> None:
    """Discord's layout rules for classic components: rows of ≤5 buttons or one select."""
    if len(rows) > MAX_ROWS:
        raise DiscordApiError.invalid_form_body("components", f"Must be {MAX_ROWS} or fewer in length.")
    seen: set[str] = set()
    for row_index, row in enumerate(rows):
        if row.get("type") != 1:
            raise DiscordApiError.invalid_form_body(
                f"components.{row_index}", "Top-level components must be action rows"
            )
        items = row.get("components") or []
        selects = [item for item in items if item.get("type") in (3, 5, 6, 7, 8)]
        if not items or len(items) > MAX_BUTTONS_PER_ROW or (selects and len(items) > 1):
            raise DiscordApiError.invalid_form_body(
                f"components.{row_index}.components", "An action row holds 1 to 5 buttons or one select"
            )
        for item in items:
            custom_id = item.get("custom_id")
            if item.get("type") == 2 and item.get("style") == 5:
                if custom_id or not item.get("url"):
                    raise DiscordApiError.invalid_form_body(
                        "components", "A link button has a url and no custom_id"
                    )
                continue
            if not custom_id or len(custom_id) > MAX_CUSTOM_ID:
                raise DiscordApiError.invalid_form_body(
                    "custom_id", f"Must be 1 to {MAX_CUSTOM_ID} characters"
                )
            if custom_id in seen:
                raise DiscordApiError.invalid_form_body(
                    "custom_id", "Component custom id cannot be duplicated"
                )
            seen.add(custom_id)
            if len(item.get("label") or "") > MAX_LABEL:
                raise DiscordApiError.invalid_form_body("label", f"Must be {MAX_LABEL} or fewer in length.")


def _check_modal(data: dict[str, Any]) -> None:
    if not data.get("custom_id") or len(data["custom_id"]) > MAX_CUSTOM_ID:
        raise DiscordApiError.invalid_form_body("data.custom_id", f"Must be 1 to {MAX_CUSTOM_ID} characters")
    if not data.get("title") or len(data["title"]) > 45:
        raise DiscordApiError.invalid_form_body("data.title", "Must be 1 to 45 characters")
    if not data.get("components"):
        raise DiscordApiError.invalid_form_body("data.components", "A modal needs at least one input")


def _publish(state: DiscordState, stored: StoredMessage, event: str) -> None:
    """Tell the gateway about a bot message, as Discord does (ephemeral and loading ones excepted)."""
    message = stored.message
    if message["flags"] & (payloads.EPHEMERAL | payloads.LOADING):
        return
    data = copy.deepcopy(message)
    channel = state.channels.get(int(message["channel_id"]))
    if channel is not None and channel.type != DM:
        data["guild_id"] = state.guild["id"]
        data["member"] = payloads.member(state, int(state.bot_user["id"]), with_user=False)
    state.dispatch(event, data)
