"""What Telegram's servers remember for one bot: chats, messages, files, pending updates."""

import copy
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import BotApiError
from .files import FileStore
from .spec import BotApiSpec

# Update types getUpdates delivers when the bot never chose (https://core.telegram.org/bots/api#getupdates).
_NOT_DELIVERED_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_SUPERGROUP_IDS_BELOW = -1_000_000_000_000


@dataclass
class StoredMessage:
    """A message in a chat, as it is now; deleted messages stay stored but invisible."""

    message: dict[str, Any]
    from_bot: bool
    deleted: bool = False


@dataclass
class CallbackQueryRecord:
    """A button press and whether the bot answered it (Telegram allows one answer)."""

    query: dict[str, Any]
    answered: bool = False


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request the bot made and the HTTP status the emulator answered with."""

    method: str
    params: dict[str, Any]
    at: float
    status: int
    error: str | None = None


@dataclass
class Webhook:
    """Where updates go once the bot set a webhook, and how they are delivered."""

    url: str
    secret_token: str | None
    max_connections: int
    last_error: str | None = None
    # Updates being POSTed right now: not handed out again until that delivery fails.
    in_flight: set[int] = field(default_factory=set)


@dataclass
class TelegramState:
    """The Telegram side of the conversation; every use goes through `lock`."""

    spec: BotApiSpec
    bot_user: dict[str, Any]
    lock: threading.RLock = field(default_factory=threading.RLock)
    files: FileStore = field(default_factory=FileStore)
    calls: list[ApiCall] = field(default_factory=list)
    # Called (with the lock held) whenever an update is queued, to wake long-polling getUpdates.
    on_new_update: Callable[[], None] = lambda: None
    allowed_updates: frozenset[str] | None = None
    # setWebhook: updates are POSTed there instead of waiting for getUpdates.
    webhook: Webhook | None = None
    commands: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    # setChatMenuButton: per chat id, or "default" for every private chat.
    menu_buttons: dict[str, dict[str, Any]] = field(default_factory=dict)
    callback_queries: dict[str, CallbackQueryRecord] = field(default_factory=dict)
    # Every file object Telegram handed out, by file_id: what kind it is and its object (for re-sending).
    file_objects: dict[str, tuple[str, Any]] = field(default_factory=dict)
    uploads: dict[int, list[bytes]] = field(default_factory=dict)
    failures: dict[str, deque[BotApiError]] = field(default_factory=dict)
    _users: dict[int, dict[str, Any]] = field(default_factory=dict)
    _chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    _messages: dict[int, dict[int, StoredMessage]] = field(default_factory=dict)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    # Real update ids are large numbers that only grow; starting high keeps tests from assuming 1.
    _update_ids: itertools.count = field(default_factory=lambda: itertools.count(700_000_001))
    _query_ids: itertools.count = field(default_factory=lambda: itertools.count(4_000_000_000_001))

    # Users and chats

    def user(self, user_id: int, first_name: str | None = None) -> dict[str, Any]:
        """The User object of a person talking to the bot; `first_name` renames them."""
        if user_id <= 0:
            raise ValueError(f"user ids are positive, got {user_id}")
        known = self._users.setdefault(
            user_id, {"id": user_id, "is_bot": False, "first_name": "Ada", "language_code": "en"}
        )
        if first_name is not None:
            known["first_name"] = first_name
        return dict(known)

    def open_chat(self, user: dict[str, Any], chat_id: int | None) -> dict[str, Any]:
        """The chat a user writes in: their private chat by default, or a group with a negative id."""
        chat_id = user["id"] if chat_id is None else chat_id
        if chat_id > 0 and chat_id != user["id"]:
            raise ValueError(
                f"chat {chat_id} is positive, so it is a private chat; it can only be user {chat_id}'s"
            )
        if chat_id > 0:
            chat = {"id": chat_id, "first_name": user["first_name"], "type": "private"}
        elif chat_id < _SUPERGROUP_IDS_BELOW:
            chat = {"id": chat_id, "title": f"Group {chat_id}", "type": "supergroup"}
        else:
            chat = {"id": chat_id, "title": f"Group {chat_id}", "type": "group"}
        if chat["type"] == "private" or chat_id not in self._chats:
            self._chats[chat_id] = chat  # a private chat is named after its user, who may be renamed
        return dict(self._chats[chat_id])

    def chat(self, chat_id: int | str) -> dict[str, Any]:
        """A chat the bot may write to: one where somebody already talked to it."""
        if not isinstance(chat_id, int) or chat_id not in self._chats:
            raise BotApiError.bad_request("chat not found")
        return dict(self._chats[chat_id])

    # Messages

    def add_message(self, chat_id: int, content: dict[str, Any], *, sender: dict[str, Any]) -> dict[str, Any]:
        """Store a new message in a chat with the next message_id; return the stored dict."""
        messages = self._messages.setdefault(chat_id, {})
        message_id = max(messages, default=0) + 1
        message = {
            "message_id": message_id,
            "from": sender,
            "chat": self.chat(chat_id),
            "date": int(time.time()),
            **content,
        }
        messages[message_id] = StoredMessage(message, from_bot=sender["id"] == self.bot_user["id"])
        return message

    def stored(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """The message if it exists and was not deleted."""
        stored = self._messages.get(chat_id, {}).get(message_id)
        return None if stored is None or stored.deleted else stored

    def visible_messages(self, chat_id: int) -> list[StoredMessage]:
        """The chat's messages that were not deleted, oldest first."""
        stored = self._messages.get(chat_id, {})
        return [stored[message_id] for message_id in sorted(stored) if not stored[message_id].deleted]

    # Updates

    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates and wake the bot's long poll."""
        update = {"update_id": next(self._update_ids), kind: copy.deepcopy(payload)}
        self._updates.append(update)
        self.on_new_update()
        return update

    def confirm_updates(self, offset: int) -> None:
        """Forget updates below `offset`; a negative offset keeps only the last -offset updates."""
        if offset < 0:
            self._updates = self._updates[offset:]
        else:
            self._updates = [update for update in self._updates if update["update_id"] >= offset]

    def pending_updates(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` unconfirmed updates of the allowed types, dropping the others as Telegram does."""
        allowed = self.allowed_updates
        self._updates = [update for update in self._updates if _delivers(update, allowed)]
        return copy.deepcopy(self._updates[:limit])

    def updates_to_post(self) -> list[dict[str, Any]]:
        """With a webhook: the next updates to POST, oldest first, as many as its connections allow."""
        webhook = self.webhook
        if webhook is None:
            return []
        allowed = self.allowed_updates
        self._updates = [update for update in self._updates if _delivers(update, allowed)]
        free = webhook.max_connections - len(webhook.in_flight)
        waiting = [update for update in self._updates if update["update_id"] not in webhook.in_flight]
        chosen = waiting[: max(free, 0)]
        webhook.in_flight.update(update["update_id"] for update in chosen)
        return copy.deepcopy(chosen)

    def update_posted(self, update_id: int, error: str | None) -> None:
        """A webhook delivery ended: the update is done on success, and waits for another try on failure."""
        webhook = self.webhook
        if webhook is not None:
            webhook.in_flight.discard(update_id)
            webhook.last_error = error
        if error is None:
            self._updates = [update for update in self._updates if update["update_id"] != update_id]

    def drop_pending_updates(self) -> None:
        """Forget every queued update."""
        self._updates.clear()

    @property
    def pending_update_count(self) -> int:
        """How many updates wait for the bot."""
        return len(self._updates)

    def take_failure(self, method: str) -> BotApiError | None:
        """The next injected error for `method`, if a test queued one."""
        queued = self.failures.get(method)
        return queued.popleft() if queued else None

    def next_callback_query_id(self) -> str:
        """A fresh callback query id (a numeric string, like Telegram's)."""
        return str(next(self._query_ids))


def _delivers(update: dict[str, Any], allowed: frozenset[str] | None) -> bool:
    kind = next(key for key in update if key != "update_id")
    return kind not in _NOT_DELIVERED_BY_DEFAULT if allowed is None else kind in allowed
