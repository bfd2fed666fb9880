"""The Bot API emulator, driven by PTB's real `Bot` (and once by a real `Application`) over HTTP."""

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from emulator import BotApiEmulator
from emulator.errors import BotApiError
from emulator.formatting import format_text
from emulator.spec import SPEC_PATH, load_spec
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, ContextTypes, MessageHandler, filters

TOKEN = "123456:TEST-token"
USER = 1001
PROJECT_ROOT = Path(__file__).resolve().parent.parent
OFFICIAL_SPEC = PROJECT_ROOT.parent / "shared" / "telegram" / "bot-api-9.2.json"


@pytest.fixture
def emulator() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(token=TOKEN) as running:
        yield running


@pytest.fixture
async def bot(emulator: BotApiEmulator) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=emulator.base_url, base_file_url=emulator.base_file_url) as ptb_bot:
        yield ptb_bot


def jpeg_with_exif_rotation(width: int, height: int) -> bytes:
    """A landscape JPEG whose left half is black, tagged "rotate 90° clockwise to display" (orientation 6)."""
    image = Image.new("RGB", (width, height), "white")
    image.paste((0, 0, 0), (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "gray").save(buffer, format="PNG")
    return buffer.getvalue()


def raw_post(emulator: BotApiEmulator, method: str, data: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{emulator.base_url}{TOKEN}/{method}", data=data)


# Which object type each nested field holds, for checking whole updates against the spec.
NESTED_TYPES = {
    "from": "User",
    "chat": "Chat",
    "message": "Message",
    "reply_to_message": "Message",
    "callback_query": "CallbackQuery",
    "photo": "PhotoSize",
    "thumbnail": "PhotoSize",
    "document": "Document",
    "sticker": "Sticker",
    "animation": "Animation",
    "entities": "MessageEntity",
    "caption_entities": "MessageEntity",
    "reply_markup": "InlineKeyboardMarkup",
    "inline_keyboard": "InlineKeyboardButton",
}


def spec_violations(type_name: str, obj: dict, path: str = "") -> list[str]:
    """Unknown or missing fields anywhere in `obj`, according to the Bot API 9.2 spec."""
    path = path or type_name
    violations = [f"{path}: {problem}" for problem in load_spec().shape_errors(type_name, obj)]
    for key, value in obj.items():
        if key not in NESTED_TYPES:
            continue
        items = value if isinstance(value, list) else [value]
        if key == "inline_keyboard":
            items = [button for row in value for button in row]
        for index, item in enumerate(items):
            violations += spec_violations(NESTED_TYPES[key], item, f"{path}.{key}[{index}]")
    return violations


# Identity, sending and editing


async def test_get_me_answers_with_the_bot_user(bot: Bot, emulator: BotApiEmulator) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "mnist_digit_test_bot")
    assert spec_violations("User", emulator.bot_user) == []


async def test_send_and_edit_text_keeps_the_message_as_it_is_now(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_text(USER, "/start")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Right", callback_data="right")]])
    sent = await bot.send_message(USER, "It is a 7", reply_markup=keyboard)
    assert sent.message_id == 2  # the user's /start was message 1 of this private chat

    edited = await bot.edit_message_text("It is a 1", chat_id=USER, message_id=sent.message_id)

    assert edited.text == "It is a 1" and edited.edit_date is not None
    [stored] = emulator.messages(USER)
    assert stored["text"] == "It is a 1"
    assert "reply_markup" not in stored, (
        "editing text without reply_markup removes the keyboard, as on Telegram"
    )


async def test_editing_to_identical_content_is_a_bad_request(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_text(USER, "hi")
    sent = await bot.send_message(USER, "Training: epoch 1/5")
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Training: epoch 1/5", chat_id=USER, message_id=sent.message_id)
    assert [call.status for call in emulator.calls if call.method == "editMessageText"] == [400]


async def test_text_limits_are_enforced(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_text(USER, "hi")
    await bot.send_message(USER, "x" * 4096)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER, "   ")
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
        await bot.send_message(USER, "pick", reply_markup=too_long)


async def test_parse_mode_is_applied_and_bad_markdown_rejected(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_text(USER, "hi")
    html = await bot.send_message(USER, "It is a <b>7</b> &amp; sure", parse_mode=ParseMode.HTML)
    assert html.text == "It is a 7 & sure"
    assert [(e.type, e.offset, e.length) for e in html.entities] == [("bold", 8, 1)]
    with pytest.raises(BadRequest, match=r"(?i)character '\.' is reserved"):
        await bot.send_message(USER, "*Accuracy* 98.5%", parse_mode=ParseMode.MARKDOWN_V2)


@pytest.mark.parametrize(
    ("text", "parse_mode", "expected_text", "expected_entities"),
    [
        ("😀 *7* \\(sure\\)\\!", "MarkdownV2", "😀 7 (sure)!", [("bold", 3, 1)]),
        (
            "__u__ ||s|| [docs](https://x.org/a\\)b)",
            "MarkdownV2",
            "u s docs",
            [("underline", 0, 1), ("spoiler", 2, 1), ("text_link", 4, 4)],
        ),
        ("```python\nprint(7)```", "MarkdownV2", "print(7)", [("pre", 0, 8)]),
        ("*bold* _it_ 1.5!", "Markdown", "bold it 1.5!", [("bold", 0, 4), ("italic", 5, 2)]),
        ('<pre><code class="language-py">x = 1</code></pre>', "HTML", "x = 1", [("pre", 0, 5)]),
    ],
)
def test_parse_modes_become_plain_text_and_entities(
    text: str, parse_mode: str, expected_text: str, expected_entities: list[tuple[str, int, int]]
) -> None:
    formatted = format_text(text, parse_mode, None)
    assert formatted.text == expected_text
    assert [(e["type"], e["offset"], e["length"]) for e in formatted.entities] == expected_entities


@pytest.mark.parametrize(
    ("text", "parse_mode", "error"),
    [
        ("*unclosed", "MarkdownV2", "Can't find end of Bold entity at byte offset 0"),
        ("1-2", "MarkdownV2", "Character '-' is reserved"),
        ("é<br/>", "HTML", 'Unsupported start tag "br" at byte offset 2'),
        ("<b>x</i>", "HTML", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("_open", "Markdown", "Can't find end of the entity starting at byte offset 0"),
    ],
)
def test_malformed_markup_is_rejected_like_telegram(text: str, parse_mode: str, error: str) -> None:
    with pytest.raises(BotApiError) as raised:
        format_text(text, parse_mode, None)
    assert raised.value.description.startswith(f"Bad Request: can't parse entities: {error}")


async def test_writing_to_a_chat_nobody_opened_is_chat_not_found(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "hello?")


# Calls that break the Bot API


async def test_unknown_parameter_is_rejected_by_name(emulator: BotApiEmulator) -> None:
    emulator.send_text(USER, "hi")
    response = await asyncio.to_thread(raw_post, emulator, "sendMessage", {"chat_id": str(USER), "txt": "hi"})
    assert response.status_code == 400
    assert response.json()["ok"] is False and "'txt'" in response.json()["description"]
    assert emulator.calls[-1].status == 400
    # Parameters Telegram still accepts although the 9.2 documentation dropped them are fine.
    legacy = {"chat_id": str(USER), "text": "hi", "reply_to_message_id": "1"}
    response = await asyncio.to_thread(raw_post, emulator, "sendMessage", legacy)
    assert response.json()["result"]["reply_to_message"]["text"] == "hi"


async def test_missing_required_parameter_is_rejected_by_name(emulator: BotApiEmulator) -> None:
    response = await asyncio.to_thread(raw_post, emulator, "sendMessage", {"text": "hi"})
    assert response.status_code == 400
    assert "'chat_id'" in response.json()["description"]


async def test_unknown_method_is_404_and_unimplemented_method_is_loud(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    response = await asyncio.to_thread(raw_post, emulator, "sendTelepathy", {})
    assert (response.status_code, response.json()["description"]) == (404, "Not Found")

    with pytest.raises(NetworkError, match="does not implement sendPoll"):
        await bot.send_poll(USER, "Which digit?", ["1", "7"])
    assert emulator.calls[-1].status == 501


async def test_wrong_token_is_unauthorized(emulator: BotApiEmulator) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("999:other-token", base_url=emulator.base_url):
            pass


# PTB 22 warns about its own RetryAfter.retry_after type change whenever it builds the exception.
@pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")
async def test_injected_flood_control_surfaces_as_retry_after(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_text(USER, "hi")
    emulator.fail_next("sendMessage", retry_after=3)
    with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
        await bot.send_message(USER, "first")
    await bot.send_message(USER, "second")  # only the next call fails
    assert [call.status for call in emulator.calls if call.method == "sendMessage"] == [429, 200]


# Updates, photos and files


async def test_long_poll_returns_a_photo_as_telegram_sizes_it(bot: Bot, emulator: BotApiEmulator) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await emulator.wait_for(lambda: emulator.is_polling)
    emulator.send_photo(USER, jpeg_with_exif_rotation(1600, 1200), caption="mine")
    updates = await asyncio.wait_for(poll, timeout=10)  # far below the 30 s poll: the photo woke it

    [update] = updates
    photo = update.message.photo
    assert [(size.width, size.height) for size in photo] == [(68, 90), (240, 320), (600, 800), (960, 1280)]
    assert update.message.caption == "mine"

    file = await bot.get_file(photo[-1].file_id)
    data = bytes(await file.download_as_bytearray())
    assert len(data) == photo[-1].file_size == file.file_size
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size) == ("JPEG", (960, 1280))
    assert dict(image.getexif()) == {} and b"Exif" not in data
    # The black left half of the stored landscape is on top once the EXIF rotation is applied.
    gray = image.convert("L")
    assert gray.getpixel((480, 100)) < 60 and gray.getpixel((480, 1180)) > 200


async def test_small_photo_keeps_its_size_and_confirmed_updates_are_gone(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    emulator.send_photo(USER, png_bytes(28, 28))
    [update] = await bot.get_updates(timeout=0)
    assert [(size.width, size.height) for size in update.message.photo] == [(28, 28)]
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()


async def test_document_keeps_its_bytes_name_and_type(bot: Bot, emulator: BotApiEmulator) -> None:
    original = jpeg_with_exif_rotation(40, 30)
    emulator.send_document(USER, original, file_name="digit.jpg", mime_type="image/jpeg")
    [update] = await bot.get_updates()
    document = update.message.document
    assert (document.file_name, document.mime_type, document.file_size) == (
        "digit.jpg",
        "image/jpeg",
        len(original),
    )
    file = await bot.get_file(document.file_id)
    assert bytes(await file.download_as_bytearray()) == original  # PTB sends the token's colon as %3A
    relative_path = file.file_path.removeprefix(f"{emulator.base_file_url}{TOKEN}/")
    raw_colon_url = f"{emulator.base_file_url}{TOKEN}/{relative_path}"
    assert (await asyncio.to_thread(httpx.get, raw_colon_url)).content == original


async def test_get_file_refuses_files_over_20_mb(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_document(
        USER, b"\0" * (20 * 1024 * 1024 + 1), file_name="big.bin", mime_type="application/zip"
    )
    [update] = await bot.get_updates()
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await bot.get_file(update.message.document.file_id)


async def test_stickers_and_animations_arrive_with_their_objects(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_sticker(USER)
    emulator.send_animation(USER)
    sticker_update, animation_update = await bot.get_updates()
    assert sticker_update.message.sticker.width == 512
    assert animation_update.message.animation.file_id == animation_update.message.document.file_id


async def test_bot_photo_upload_is_stored_and_resent_by_file_id(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_text(USER, "/stats")
    plot = png_bytes(900, 600)
    sent = await bot.send_photo(USER, plot, caption="Accuracy per epoch")
    assert sent.photo[-1].width == 900 and sent.caption == "Accuracy per epoch"
    again = await bot.send_photo(USER, sent.photo[-1].file_id)
    assert again.photo == sent.photo
    assert emulator.uploaded_files(USER)[0] == plot
    with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(USER, b"not an image")


async def test_commands_are_marked_and_stored_per_scope(bot: Bot, emulator: BotApiEmulator) -> None:
    message = emulator.send_text(USER, "/train now")
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    await bot.set_my_commands([("train", "Retrain the model"), ("stats", "Show statistics")])
    assert [command.command for command in await bot.get_my_commands()] == ["train", "stats"]
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([("Train!", "bad")])


# Buttons


async def test_button_press_arrives_as_a_callback_query(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_text(USER, "hi")
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Right", callback_data="ok:5"),
                InlineKeyboardButton("Wrong", callback_data="no:5"),
            ]
        ]
    )
    sent = await bot.send_message(USER, "It is a 5", reply_markup=keyboard)
    await bot.get_updates(offset=-1)  # confirm the user's "hi"

    emulator.press_button(USER, sent.to_dict(), "no:5")
    [update] = await bot.get_updates(offset=-1)

    query = update.callback_query
    assert (query.data, query.from_user.id, query.message.message_id) == ("no:5", USER, sent.message_id)
    assert await query.answer("Noted")
    with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
        await query.answer("twice")
    await bot.edit_message_reply_markup(USER, sent.message_id)  # remove the buttons
    with pytest.raises(ValueError, match="no button"):
        emulator.press_button(USER, sent.to_dict(), "ok:5")


async def test_other_bot_side_methods(bot: Bot, emulator: BotApiEmulator) -> None:
    user_message = emulator.send_text(USER, "7?")
    assert await bot.send_chat_action(USER, "typing")
    with pytest.raises(BadRequest, match=r"(?i)wrong parameter action"):
        await bot.send_chat_action(USER, "thinking")
    assert await bot.set_message_reaction(USER, user_message["message_id"], "👍")
    with pytest.raises(BadRequest, match=r"(?i)REACTION_INVALID"):
        await bot.set_message_reaction(USER, user_message["message_id"], "🦖")
    report = await bot.send_document(USER, b"digit,count\n7,3\n", filename="report.csv")
    assert (report.document.file_name, report.document.mime_type) == ("report.csv", "text/csv")
    assert emulator.uploaded_files(USER) == [b"digit,count\n7,3\n"]
    assert await bot.delete_message(USER, report.message_id)
    assert emulator.messages(USER) == []
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("", 1)
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates(timeout=0) == ()


async def test_everything_the_emulator_emits_matches_the_spec(bot: Bot, emulator: BotApiEmulator) -> None:
    emulator.send_text(USER, "/start please")
    emulator.send_photo(USER, jpeg_with_exif_rotation(300, 200), caption="/predict")
    emulator.send_document(USER, png_bytes(), file_name="digit.png", mime_type="image/png")
    emulator.send_sticker(USER)
    emulator.send_animation(USER)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Right", callback_data="ok")]])
    reply = await bot.send_message(
        USER, "It is a <b>3</b>", parse_mode=ParseMode.HTML, reply_markup=keyboard, reply_to_message_id=2
    )
    emulator.press_button(USER, reply.to_dict(), "ok")
    await bot.send_photo(USER, png_bytes(500, 400), caption="<i>plot</i>", parse_mode=ParseMode.HTML)

    response = await asyncio.to_thread(raw_post, emulator, "getUpdates", {})
    updates = response.json()["result"]
    assert len(updates) == 6
    assert [spec_violations("Update", update) for update in updates] == [[]] * 6
    assert [spec_violations("Message", message) for message in emulator.messages(USER)] == [[], []]
    file = (await bot.get_file(updates[1]["message"]["photo"][0]["file_id"])).to_dict()
    assert spec_violations("File", file) == []


# Polling


async def test_second_concurrent_poll_ends_the_first_with_conflict(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await emulator.wait_for(lambda: emulator.is_polling)
    async with Bot(TOKEN, base_url=emulator.base_url) as other_instance:
        second = asyncio.create_task(other_instance.get_updates(timeout=0))
        with pytest.raises(Conflict):
            await asyncio.wait_for(first, timeout=10)
        assert await second == ()


async def test_a_real_application_polls_replies_and_stops_cleanly(emulator: BotApiEmulator) -> None:
    async def echo_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        largest = update.message.photo[-1]
        await update.message.reply_text(f"{largest.width}x{largest.height}", do_quote=True)

    application = (
        Application.builder()
        .token(TOKEN)
        .base_url(emulator.base_url)
        .base_file_url(emulator.base_file_url)
        .build()
    )
    application.add_handler(MessageHandler(filters.PHOTO, echo_photo))
    async with application:
        await application.start()
        await application.updater.start_polling(poll_interval=0, timeout=5)
        sent = emulator.send_photo(USER, png_bytes(64, 48))
        replies = await emulator.wait_for(lambda: emulator.messages(USER))
        await application.updater.stop()
        await application.stop()

    assert replies[0]["text"] == "64x48"
    assert replies[0]["reply_to_message"]["message_id"] == sent["message_id"]
    assert [call for call in emulator.calls if call.status != 200] == []


async def test_wait_for_times_out_with_the_last_calls(bot: Bot, emulator: BotApiEmulator) -> None:
    await bot.get_me()
    with pytest.raises(TimeoutError, match="getMe -> 200"):
        await emulator.wait_for(lambda: emulator.messages(USER), timeout=0.1)


# The committed spec subset


def test_committed_spec_subset_matches_the_official_file(tmp_path: Path) -> None:
    if not OFFICIAL_SPEC.exists():
        pytest.skip(f"official Bot API description not present at {OFFICIAL_SPEC}")
    out = tmp_path / "subset.json"
    script = PROJECT_ROOT / "scripts" / "extract_bot_api.py"
    subprocess.run(
        [sys.executable, script, "--spec", OFFICIAL_SPEC, "--out", out], check=True, capture_output=True
    )
    assert out.read_text(encoding="utf-8") == SPEC_PATH.read_text(encoding="utf-8")
    assert json.loads(out.read_text(encoding="utf-8"))["version"] == "Bot API 9.2"
