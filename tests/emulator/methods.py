"""The Bot API methods the emulator implements: each takes the state and the decoded parameters.

Every function runs with the state's lock held and either returns the `result` Telegram would send
or raises BotApiError with Telegram's wording. getUpdates waits, so the server drives it, using
`begin_get_updates` here for its parameters.
"""

import copy
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .errors import BotApiError
from .files import GET_FILE_LIMIT_BYTES, UploadedFile
from .formatting import format_text
from .markup import parse_reply_markup
from .media import file_bytes, reuse_file, store_document, store_photo
from .photos import check_sendable_photo, photo_renditions
from .spec import load_spec
from .state import StoredMessage, TelegramState, Webhook

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_COMMANDS = 100
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_MEDIA_KINDS = ("animation", "audio", "document", "photo", "video", "voice")

Handler = Callable[[TelegramState, dict[str, Any]], Any]
HANDLERS: dict[str, Handler] = {}


def _handles(name: str) -> Callable[[Handler], Handler]:
    """Register a function as the implementation of the Bot API method `name`."""

    def register(handler: Handler) -> Handler:
        known = load_spec().method(name)
        if known is None or known.name != name:
            raise ValueError(f"{name} is not a Bot API {load_spec().version} method name")
        HANDLERS[name] = handler
        return handler

    return register


# Polling and bot setup


def begin_get_updates(state: TelegramState, params: dict[str, Any]) -> int:
    """Confirm updates below `offset`, remember allowed_updates, and return the batch size."""
    if state.webhook is not None:
        raise BotApiError(409, WEBHOOK_CONFLICT)
    if "offset" in params:
        state.confirm_updates(params["offset"])
    if "allowed_updates" in params:
        # An empty list means "the default types"; the choice persists for later calls.
        state.allowed_updates = frozenset(params["allowed_updates"]) or None
    return min(max(params.get("limit", 100), 1), 100)


@_handles("getMe")
def get_me(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    return dict(state.bot_user)


@_handles("setWebhook")
def set_webhook(state: TelegramState, params: dict[str, Any]) -> bool:
    url = params["url"]
    parts = urlsplit(url)
    # Telegram posts to https only; the emulator also posts to a local test server over http.
    if parts.scheme != "https" and not (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
    ):
        raise BotApiError.bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.get("secret_token")
    if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
        raise BotApiError.bad_request("bad webhook: Wrong secret token")
    max_connections = params.get("max_connections", 40)
    if not 1 <= max_connections <= 100:
        raise BotApiError.bad_request("bad webhook: Wrong max_connections")
    if "allowed_updates" in params:
        state.allowed_updates = frozenset(params["allowed_updates"]) or None
    if params.get("drop_pending_updates"):
        state.drop_pending_updates()
    state.webhook = Webhook(url=url, secret_token=secret, max_connections=max_connections)
    state.on_new_update()  # what is already waiting goes out now
    return True


@_handles("deleteWebhook")
def delete_webhook(state: TelegramState, params: dict[str, Any]) -> bool:
    state.webhook = None
    if params.get("drop_pending_updates"):
        state.drop_pending_updates()
    return True


@_handles("getWebhookInfo")
def get_webhook_info(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    webhook = state.webhook
    info: dict[str, Any] = {
        "url": "" if webhook is None else webhook.url,
        "has_custom_certificate": False,
        "pending_update_count": state.pending_update_count,
    }
    if webhook is not None:
        info["max_connections"] = webhook.max_connections
        if state.allowed_updates is not None:
            info["allowed_updates"] = sorted(state.allowed_updates)
        if webhook.last_error is not None:
            info["last_error_message"] = webhook.last_error
    return info


@_handles("close")
def close(state: TelegramState, params: dict[str, Any]) -> bool:
    return True


@_handles("setMyCommands")
def set_my_commands(state: TelegramState, params: dict[str, Any]) -> bool:
    commands = params["commands"]
    if len(commands) > MAX_COMMANDS:
        raise BotApiError.bad_request("BOT_COMMANDS_TOO_MUCH")
    for command in commands:
        if not isinstance(command, dict) or not _COMMAND.fullmatch(str(command.get("command", ""))):
            raise BotApiError.bad_request("BOT_COMMAND_INVALID")
        if not isinstance(command.get("description"), str) or not 1 <= len(command["description"]) <= 256:
            raise BotApiError.bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    state.commands[_commands_key(state, params)] = [
        {"command": command["command"], "description": command["description"]} for command in commands
    ]
    return True


@_handles("getMyCommands")
def get_my_commands(state: TelegramState, params: dict[str, Any]) -> list[dict[str, str]]:
    return copy.deepcopy(state.commands.get(_commands_key(state, params), []))


@_handles("deleteMyCommands")
def delete_my_commands(state: TelegramState, params: dict[str, Any]) -> bool:
    state.commands.pop(_commands_key(state, params), None)
    return True


@_handles("setChatMenuButton")
def set_chat_menu_button(state: TelegramState, params: dict[str, Any]) -> bool:
    button = params.get("menu_button") or {"type": "default"}
    if button.get("type") == "web_app":
        url = button.get("web_app", {}).get("url", "")
        if not str(url).startswith("https://"):
            raise BotApiError.bad_request("WEBAPP_URL_INVALID: only https addresses can be opened")
        if not 1 <= len(button.get("text", "")) <= 64:
            raise BotApiError.bad_request("BUTTON_TEXT_INVALID")
    elif button.get("type") not in ("commands", "default"):
        raise BotApiError.bad_request("can't parse menu button")
    state.menu_buttons[str(params.get("chat_id", "default"))] = button
    return True


def _commands_key(state: TelegramState, params: dict[str, Any]) -> str:
    """Commands are stored per scope and language, like Telegram's command lists."""
    scope = params.get("scope", {"type": "default"})
    scope_types = {
        _snake_case(name.removeprefix("BotCommandScope")) for name in state.spec.subtypes("BotCommandScope")
    }
    if scope.get("type") not in scope_types:
        raise BotApiError.bad_request(f"unsupported BotCommandScope type {scope.get('type')!r}")
    details = ",".join(f"{key}={scope[key]}" for key in sorted(scope) if key != "type")
    return f"{scope['type']}[{details}]/{params.get('language_code', '')}"


def _snake_case(camel_case: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel_case).lower()


# Sending


@_handles("sendMessage")
def send_message(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    chat = state.chat(params["chat_id"])
    return _send(state, chat["id"], params, _text_content(params))


@_handles("sendPhoto")
def send_photo(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    chat = state.chat(params["chat_id"])
    photo = params["photo"]
    if isinstance(photo, UploadedFile):
        check_sendable_photo(photo.data)
        sizes, sent_bytes = store_photo(state, photo_renditions(photo.data)), photo.data
    else:
        sizes = reuse_file(state, photo, "photo")
        sent_bytes = file_bytes(state, sizes)
    content: dict[str, Any] = {"photo": sizes, **_caption_content(params)}
    if params.get("has_spoiler"):
        content["has_media_spoiler"] = True
    return _send(state, chat["id"], params, content, sent_bytes=sent_bytes)


@_handles("sendDocument")
def send_document(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    chat = state.chat(params["chat_id"])
    upload = params["document"]
    if isinstance(upload, UploadedFile):
        if len(upload.data) > MAX_UPLOAD_BYTES:
            raise BotApiError(413, "Request Entity Too Large")
        document = store_document(state, upload.data, file_name=upload.file_name, mime_type=upload.mime_type)
        sent_bytes = upload.data
    else:
        document = reuse_file(state, upload, "document")
        sent_bytes = file_bytes(state, document)
    content = {"document": document, **_caption_content(params)}
    return _send(state, chat["id"], params, content, sent_bytes=sent_bytes)


@_handles("sendChatAction")
def send_chat_action(state: TelegramState, params: dict[str, Any]) -> bool:
    state.chat(params["chat_id"])
    if params["action"] not in CHAT_ACTIONS:
        raise BotApiError.bad_request("wrong parameter action in request")
    return True


def _text_content(params: dict[str, Any]) -> dict[str, Any]:
    formatted = format_text(params["text"], params.get("parse_mode"), params.get("entities"))
    if not formatted.text:
        raise BotApiError.bad_request("message text is empty")
    if len(formatted.text) > MAX_TEXT_LENGTH:
        raise BotApiError.bad_request("message is too long")
    content: dict[str, Any] = {"text": formatted.text}
    if formatted.entities:
        content["entities"] = formatted.entities
    return content


def _caption_content(params: dict[str, Any]) -> dict[str, Any]:
    """caption, caption_entities and show_caption_above_media, for media messages."""
    formatted = format_text(
        params.get("caption", ""), params.get("parse_mode"), params.get("caption_entities")
    )
    if len(formatted.text) > MAX_CAPTION_LENGTH:
        raise BotApiError.bad_request("message caption is too long")
    content: dict[str, Any] = {}
    if formatted.text:
        content["caption"] = formatted.text
    if formatted.entities:
        content["caption_entities"] = formatted.entities
    if formatted.text and params.get("show_caption_above_media"):
        content["show_caption_above_media"] = True
    return content


def _send(
    state: TelegramState,
    chat_id: int,
    params: dict[str, Any],
    content: dict[str, Any],
    *,
    sent_bytes: bytes | None = None,
) -> dict[str, Any]:
    """The part every send method shares: reply, markup, then store the bot's new message."""
    content = dict(content)
    replied = _replied_message(state, chat_id, params)
    if replied is not None:
        content["reply_to_message"] = replied
    keyboard = parse_reply_markup(state.spec, params.get("reply_markup"), inline_only=False)
    if keyboard is not None:
        content["reply_markup"] = keyboard
    if params.get("protect_content"):
        content["has_protected_content"] = True
    message = state.add_message(chat_id, content, sender=_bot_sender(state))
    if sent_bytes is not None:
        state.uploads.setdefault(chat_id, []).append(sent_bytes)
    return copy.deepcopy(message)


def _replied_message(state: TelegramState, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
    """The message a new one answers, from reply_parameters or the older reply_to_message_id."""
    reply = params.get("reply_parameters")
    if reply is None and "reply_to_message_id" in params:
        reply = {
            "message_id": params["reply_to_message_id"],
            "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
        }
    if reply is None:
        return None
    if not isinstance(reply.get("message_id"), int):
        raise BotApiError.bad_request("can't parse reply parameters: message_id must be an Integer")
    if reply.get("chat_id", chat_id) != chat_id:
        raise BotApiError(501, "Not Implemented: the emulator supports replies within the same chat only")
    replied = state.stored(chat_id, reply["message_id"])
    if replied is None:
        if reply.get("allow_sending_without_reply"):
            return None
        raise BotApiError.bad_request("message to be replied not found")
    # Telegram nests one level only: the replied message comes without its own reply_to_message.
    return {key: value for key, value in copy.deepcopy(replied.message).items() if key != "reply_to_message"}


def _bot_sender(state: TelegramState) -> dict[str, Any]:
    """The short User object messages carry in `from` for the bot."""
    return {key: state.bot_user[key] for key in ("id", "is_bot", "first_name", "username")}


# Editing and deleting


@_handles("editMessageText")
def edit_message_text(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    stored = _message_to_edit(state, params)
    if "text" not in stored.message:
        raise BotApiError.bad_request("there is no text in the message to edit")
    content = _text_content(params)
    keyboard = parse_reply_markup(state.spec, params.get("reply_markup"), inline_only=True)
    changes = {"text": content["text"], "entities": content.get("entities"), "reply_markup": keyboard}
    return _apply_edit(stored, changes)


@_handles("editMessageCaption")
def edit_message_caption(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    stored = _message_to_edit(state, params)
    if not any(kind in stored.message for kind in _MEDIA_KINDS):
        raise BotApiError.bad_request("there is no caption in the message to edit")
    content = _caption_content(params)
    keyboard = parse_reply_markup(state.spec, params.get("reply_markup"), inline_only=True)
    changes = {
        "caption": content.get("caption"),
        "caption_entities": content.get("caption_entities"),
        "show_caption_above_media": content.get("show_caption_above_media"),
        "reply_markup": keyboard,
    }
    return _apply_edit(stored, changes)


@_handles("editMessageReplyMarkup")
def edit_message_reply_markup(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    stored = _message_to_edit(state, params)
    keyboard = parse_reply_markup(state.spec, params.get("reply_markup"), inline_only=True)
    return _apply_edit(stored, {"reply_markup": keyboard})


@_handles("deleteMessage")
def delete_message(state: TelegramState, params: dict[str, Any]) -> bool:
    chat = state.chat(params["chat_id"])
    stored = state.stored(chat["id"], params["message_id"])
    if stored is None:
        raise BotApiError.bad_request("message to delete not found")
    if not stored.from_bot and chat["type"] != "private":
        # In groups a bot needs admin rights to delete other people's messages; it has none here.
        raise BotApiError.bad_request("message can't be deleted")
    stored.deleted = True
    return True


def _message_to_edit(state: TelegramState, params: dict[str, Any]) -> StoredMessage:
    if "inline_message_id" in params:
        # The emulator has no inline mode, so no inline message can exist.
        raise BotApiError.bad_request("MESSAGE_ID_INVALID")
    if "chat_id" not in params or "message_id" not in params:
        raise BotApiError.bad_request("message identifier is not specified")
    chat = state.chat(params["chat_id"])
    stored = state.stored(chat["id"], params["message_id"])
    if stored is None:
        raise BotApiError.bad_request("message to edit not found")
    if not stored.from_bot:
        raise BotApiError.bad_request("message can't be edited")
    return stored


def _apply_edit(stored: StoredMessage, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply changes (None removes a field), refusing no-op edits like Telegram does."""
    current = stored.message
    if all(current.get(key) == value for key, value in changes.items()):
        raise BotApiError.bad_request(NOT_MODIFIED)
    edited = {key: value for key, value in current.items() if key not in changes}
    edited.update({key: value for key, value in changes.items() if value is not None})
    # Changing only the keyboard does not mark a message as edited; changing what it says does.
    if any(current.get(key) != value for key, value in changes.items() if key != "reply_markup"):
        edited["edit_date"] = int(time.time())
    stored.message = edited
    return copy.deepcopy(edited)


# Buttons, reactions, files


@_handles("answerCallbackQuery")
def answer_callback_query(state: TelegramState, params: dict[str, Any]) -> bool:
    record = state.callback_queries.get(params["callback_query_id"])
    if record is None or record.answered:
        raise BotApiError.bad_request("query is too old and response timeout expired or query ID is invalid")
    if len(params.get("text", "")) > MAX_CALLBACK_ANSWER_LENGTH:
        raise BotApiError.bad_request("MESSAGE_TOO_LONG")
    record.answered = True
    return True


@_handles("setMessageReaction")
def set_message_reaction(state: TelegramState, params: dict[str, Any]) -> bool:
    chat = state.chat(params["chat_id"])
    if state.stored(chat["id"], params["message_id"]) is None:
        raise BotApiError.bad_request("MESSAGE_ID_INVALID")
    reactions = params.get("reaction", [])
    if len(reactions) > 1:
        raise BotApiError.bad_request("REACTIONS_TOO_MANY")
    for reaction in reactions:
        # Bots may use the standard emoji reactions; custom emoji and paid ones need more than a test has.
        if not isinstance(reaction, dict) or reaction.get("type") != "emoji":
            raise BotApiError.bad_request("REACTION_INVALID")
        if reaction.get("emoji") not in state.spec.reaction_emoji:
            raise BotApiError.bad_request("REACTION_INVALID")
    return True


@_handles("getFile")
def get_file(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    stored = state.files.by_id(params["file_id"])
    if stored is None:
        raise BotApiError.bad_request("invalid file_id")
    if len(stored.data) > GET_FILE_LIMIT_BYTES:
        raise BotApiError.bad_request("file is too big")
    return stored.as_file()
