"""BotApiEmulator: Telegram's Bot API for one bot, on 127.0.0.1, with what users do and what the bot did."""

import asyncio
import copy
import hashlib
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self, TypeVar

from .errors import BotApiError
from .formatting import command_entities
from .markup import callback_data_values
from .media import store_animation, store_document, store_photo, store_sticker
from .photos import photo_renditions
from .server import CONFLICT, TOKEN_PATTERN, BotApiServer
from .spec import load_spec
from .state import ApiCall, CallbackQueryRecord, TelegramState

T = TypeVar("T")

MAX_USER_TEXT_LENGTH = 4096
MAX_USER_CAPTION_LENGTH = 1024
_POLL_INTERVAL_S = 0.02
_CALLS_SHOWN_ON_TIMEOUT = 10
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    403: "Forbidden: bot was blocked by the user",
    409: CONFLICT,
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class BotApiEmulator:
    """A local stand-in for Telegram's Bot API servers that a real PTB `Application` talks to over HTTP.

    Point the bot at it with `ApplicationBuilder().base_url(emulator.base_url)
    .base_file_url(emulator.base_file_url)`. Users act through `send_*` and `press_button`; what the
    bot did is in `calls`, `messages` and `uploaded_files`. Every method is thread-safe.
    """

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        bot_username: str = "mnist_digit_test_bot",
        bot_first_name: str = "MNIST Digit Bot",
    ) -> None:
        if not TOKEN_PATTERN.fullmatch(token):
            raise ValueError(f"{token!r} is not a well-formed bot token (digits, a colon, then letters)")
        bot_user = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.token = token
        self._state = TelegramState(spec=load_spec(), bot_user=bot_user)
        self._server = BotApiServer(self._state, token)

    # Lifecycle

    def start(self) -> None:
        """Start serving on a free port of 127.0.0.1."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving; pending long polls end first."""
        self._server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The Bot API URL to hand to PTB; the token follows it."""
        return f"http://127.0.0.1:{self._port()}/bot"

    @property
    def base_file_url(self) -> str:
        """The file download URL to hand to PTB."""
        return f"http://127.0.0.1:{self._port()}/file/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        """The User object getMe answers with."""
        return dict(self._state.bot_user)

    def _port(self) -> int:
        if self._server.port is None:
            raise RuntimeError("the emulator is not running; call start() or use it as a context manager")
        return self._server.port

    # What users do

    def send_text(
        self, user_id: int, text: str, *, chat_id: int | None = None, first_name: str = "Ada"
    ) -> dict:
        """A user sends text; /commands get bot_command entities. Returns the Message."""
        if not text.strip():
            raise ValueError("Telegram clients do not send empty messages")
        if len(text) > MAX_USER_TEXT_LENGTH:
            raise ValueError(
                f"a message holds at most {MAX_USER_TEXT_LENGTH} characters; clients split longer text"
            )
        content: dict[str, Any] = {"text": text}
        entities = command_entities(text)
        if entities:
            content["entities"] = entities
        return self._user_message(user_id, chat_id, first_name, lambda: content)

    def send_photo(
        self, user_id: int, image_bytes: bytes, *, chat_id: int | None = None, caption: str | None = None
    ) -> dict:
        """A user sends a photo: Telegram keeps JPEG sizes up to 1280 px, upright and without EXIF."""
        caption_content = self._caption(caption)
        renditions = photo_renditions(image_bytes)  # the slow part, done before taking the lock
        return self._user_message(
            user_id,
            chat_id,
            None,
            lambda: {"photo": store_photo(self._state, renditions), **caption_content},
        )

    def send_document(
        self, user_id: int, data: bytes, *, file_name: str, mime_type: str, chat_id: int | None = None
    ) -> dict:
        """A user sends a file as a document: its bytes, name, type and any EXIF stay untouched."""
        return self._user_message(
            user_id,
            chat_id,
            None,
            lambda: {"document": store_document(self._state, data, file_name=file_name, mime_type=mime_type)},
        )

    def send_sticker(self, user_id: int, *, chat_id: int | None = None) -> dict:
        """A user sends a static sticker."""
        return self._user_message(user_id, chat_id, None, lambda: {"sticker": store_sticker(self._state)})

    def send_animation(self, user_id: int, *, chat_id: int | None = None) -> dict:
        """A user sends a GIF; like Telegram, the message carries it as both animation and document."""
        return self._user_message(user_id, chat_id, None, lambda: store_animation(self._state))

    def press_button(
        self,
        user_id: int,
        message: dict,
        callback_data: str,
        *,
        chat_id: int | None = None,
        inaccessible: bool = False,
    ) -> dict:
        """A user presses an inline button of a bot message as it is now. Returns the CallbackQuery.

        With `inaccessible`, the query carries an InaccessibleMessage (date 0), as Telegram sends for
        a message the bot can no longer see (older than 48 hours, or deleted).
        """
        chat_id = message["chat"]["id"] if chat_id is None else chat_id
        message_id = message["message_id"]
        with self._state.lock:
            stored = self._state.stored(chat_id, message_id)
            if stored is None:
                raise ValueError(
                    f"message {message_id} in chat {chat_id} does not exist (deleted or never sent)"
                )
            if stored.message["chat"]["type"] == "private" and chat_id != user_id:
                raise ValueError(f"user {user_id} can't press buttons in user {chat_id}'s private chat")
            buttons = callback_data_values(stored.message.get("reply_markup"))
            if callback_data not in buttons:
                raise ValueError(
                    f"message {message_id} has no button with callback_data {callback_data!r} now; "
                    f"its buttons: {buttons}"
                )
            shown = copy.deepcopy(stored.message)
            if inaccessible:
                shown = {"chat": shown["chat"], "message_id": shown["message_id"], "date": 0}
            query = {
                "id": self._state.next_callback_query_id(),
                "from": self._state.user(user_id),
                "message": shown,
                "chat_instance": _chat_instance(self._state.bot_user["id"], chat_id),
                "data": callback_data,
            }
            self._state.callback_queries[query["id"]] = CallbackQueryRecord(query)
            self._state.push_update("callback_query", query)
            return copy.deepcopy(query)

    def _user_message(
        self,
        user_id: int,
        chat_id: int | None,
        first_name: str | None,
        make_content: Callable[[], dict[str, Any]],
    ) -> dict:
        """Store a user's message (content is built under the lock) and queue its update."""
        with self._state.lock:
            user = self._state.user(user_id, first_name)
            chat = self._state.open_chat(user, chat_id)
            message = self._state.add_message(chat["id"], make_content(), sender=user)
            self._state.push_update("message", message)
            return copy.deepcopy(message)

    @staticmethod
    def _caption(caption: str | None) -> dict[str, Any]:
        if caption is None:
            return {}
        if len(caption) > MAX_USER_CAPTION_LENGTH:
            raise ValueError(f"a caption holds at most {MAX_USER_CAPTION_LENGTH} characters")
        content: dict[str, Any] = {"caption": caption}
        entities = command_entities(caption)
        if entities:
            content["caption_entities"] = entities
        return content

    # What the bot did

    @property
    def webhook_url(self) -> str | None:
        """Where updates are POSTed, once the bot set a webhook."""
        with self._state.lock:
            return None if self._state.webhook is None else self._state.webhook.url

    @property
    def is_polling(self) -> bool:
        """Whether the bot has a getUpdates call waiting on the server right now."""
        return self._server.polls_in_progress > 0

    @property
    def calls(self) -> list[ApiCall]:
        """Every answered Bot API call so far, rejected ones included, oldest first (a snapshot).

        A long poll the bot abandons (when it stops polling) got no answer and is not listed.
        """
        with self._state.lock:
            return list(self._state.calls)

    def messages(self, chat_id: int) -> list[dict]:
        """The bot's messages in a chat as they are now (after edits, without deleted ones), oldest first."""
        with self._state.lock:
            return [copy.deepcopy(s.message) for s in self._state.visible_messages(chat_id) if s.from_bot]

    def message(self, chat_id: int, message_id: int) -> dict:
        """Any message in a chat as it is now, the bot's or a user's."""
        with self._state.lock:
            stored = self._state.stored(chat_id, message_id)
            if stored is None:
                raise KeyError(f"chat {chat_id} has no message {message_id} (deleted or never sent)")
            return copy.deepcopy(stored.message)

    def uploaded_files(self, chat_id: int) -> list[bytes]:
        """The bytes of every photo and document the bot sent to a chat, oldest first."""
        with self._state.lock:
            return list(self._state.uploads.get(chat_id, []))

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Poll `predicate` until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_message(predicate, timeout))
            await asyncio.sleep(_POLL_INTERVAL_S)
        return result

    def wait_for_sync(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """`wait_for` for synchronous test code."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_message(predicate, timeout))
            time.sleep(_POLL_INTERVAL_S)
        return result

    def _timeout_message(self, predicate: Callable[[], Any], timeout: float) -> str:
        recent = self.calls[-_CALLS_SHOWN_ON_TIMEOUT:]
        lines = [
            f"  {call.method} -> {call.status} {call.error or ''} {_brief(call.params)}" for call in recent
        ]
        name = getattr(predicate, "__qualname__", repr(predicate))
        return f"{name} stayed falsy for {timeout}s; the bot's last Bot API calls:\n" + (
            "\n".join(lines) or "  (none)"
        )

    # Fault injection

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        retry_after: int | None = 1,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` valid calls of `method` fail; `retry_after` is sent with 429 only."""
        known = self._state.spec.method(method)
        if known is None:
            raise ValueError(f"the Bot API has no method {method!r}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        if error_code == 429:
            error = BotApiError(
                429, description or f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
            )
        else:
            default = _DEFAULT_DESCRIPTIONS.get(error_code) or HTTPStatus(error_code).phrase
            error = BotApiError(error_code, description or default)
        with self._state.lock:
            self._state.failures.setdefault(known.name, deque()).extend([error] * times)


def _chat_instance(bot_id: int, chat_id: int) -> str:
    """A stable signed 64-bit number per bot and chat, shaped like Telegram's chat_instance."""
    digest = hashlib.sha256(f"{bot_id}:{chat_id}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big", signed=True))


def _brief(params: dict[str, Any], limit: int = 200) -> str:
    text = repr(params)
    return text if len(text) <= limit else text[: limit - 3] + "..."
