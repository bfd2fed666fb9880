"""The bot's words and buttons, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

from mnist_engine.recognize import MAX_DIGITS, Recognition

UNSURE_BELOW = 0.80  # below this confidence the reply names the runner-up


@dataclass(frozen=True)
class Button:
    """An inline button: the label a user sees and the data it sends back (≤ 64 bytes)."""

    label: str
    data: str


@dataclass(frozen=True)
class Reply:
    """A message to send (or to edit into place), with optional rows of buttons."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)


HELP_TEXT = (
    "Send me a photo of digits written on paper and I'll tell you what I read and how sure I am. "
    'A single digit or a whole number ("2026") both work.\n\n'
    "For a good photo:\n"
    "• dark pen or marker on plain, light paper (lined paper is fine);\n"
    "• fill most of the picture with the digits, held flat and straight;\n"
    "• even light, without your phone's shadow across the digits;\n"
    "• leave a little space between digits.\n\n"
    "Under each answer, tap ✅ if I was right or ❌ to correct me: I learn from your corrections."
)

ADMIN_HELP_TEXT = (
    "Admin commands:\n"
    "/train [architecture] [epochs] — train a new model now (e.g. /train small-cnn 3)\n"
    "/cancel — stop the run in progress\n"
    "/model — the serving model and its metrics\n"
    "/stats — usage, accuracy as users judged it, recent runs, with a chart"
)

RETAKE_TIPS = "Try again with the digits large in the frame, dark ink on light paper, and even light."

NO_DIGIT_TEXT = "I couldn't find any digit in this picture. " + RETAKE_TIPS
NOT_AN_IMAGE_TEXT = "That file isn't an image I can read. Please send a photo (JPEG, PNG, WebP, …)."
STICKER_TEXT = "Nice sticker! I read handwritten digits though: send me a photo of digits on paper."
ANIMATION_TEXT = "I can't read digits from animations or videos. Please send a still photo."
TEXT_WITHOUT_PHOTO = "Send me a photo of handwritten digits and I'll read them. /help has tips."
NOT_ADMIN_TEXT = "Sorry, only the bot's administrators can use that command."
DOWNLOAD_FAILED_TEXT = "I couldn't download that picture from Telegram. Please send it again."
INTERNAL_ERROR_TEXT = (
    "Something went wrong on my side while reading that picture. Please try again in a moment."
)
STALE_BUTTON_TEXT = "That answer is no longer in my records."


def file_too_large_text(size_bytes: int, limit_bytes: int) -> str:
    """Refuse a file over the download limit."""
    return (
        f"That file is {size_bytes / 1e6:.1f} MB; I can read images up to {limit_bytes / 1e6:.0f} MB. "
        "Send it as a photo instead (Telegram compresses photos)."
    )


def rate_limited_text(limit_per_minute: int, retry_after_seconds: float) -> str:
    """Ask a user to slow down."""
    return (
        f"You're sending photos faster than I can look at them ({limit_per_minute} a minute). "
        f"Please wait {max(1, round(retry_after_seconds))} s and send the next one."
    )


def warming_up_text(progress: float | None, eta_seconds: float | None) -> str:
    """Tell a user the first model is still training."""
    detail = ""
    if progress is not None:
        detail = f" ({progress:.0%} done"
        detail += f", about {format_duration(eta_seconds)} left)" if eta_seconds else ")"
    return (
        f"I'm still warming up: I'm training my first model{detail}. "
        "Please send your photo again in a few minutes."
    )


def image_error_text(message: str) -> str:
    """Explain why an image could not be read."""
    return f"{message} {RETAKE_TIPS}"


def reading_reply(recognition: Recognition, prediction_id: int) -> Reply:
    """What the bot read, how sure it is, and the verdict buttons."""
    return Reply(text=reading_text(recognition), buttons=verdict_buttons(prediction_id))


def reading_text(recognition: Recognition) -> str:
    """Describe a reading; name the runner-up where the model is unsure."""
    digits = recognition.digits
    if len(digits) == 1:
        digit = digits[0]
        text = f"I read: {digit.digit} ({digit.confidence:.0%} sure)."
        if digit.confidence < UNSURE_BELOW:
            text += f" It might also be {digit.runner_up} ({digit.runner_up_confidence:.0%})."
        return text
    text = f"I read the number {recognition.text} ({recognition.confidence:.0%} sure)."
    unsure = [(position, digit) for position, digit in enumerate(digits) if digit.confidence < UNSURE_BELOW]
    if unsure:
        notes = ", ".join(
            f"digit {position + 1} could be {digit.digit} ({digit.confidence:.0%}) or "
            f"{digit.runner_up} ({digit.runner_up_confidence:.0%})"
            for position, digit in unsure
        )
        text += f" Least sure: {notes}."
    return text


def verdict_buttons(prediction_id: int) -> list[list[Button]]:
    """Right / Wrong under a reading."""
    return [
        [Button("✅ Right", f"ok:{prediction_id}"), Button("❌ Wrong — correct it", f"no:{prediction_id}")]
    ]


def correction_pad(prediction_id: int, digits_read: str, typed: str) -> Reply:
    """A digit pad to enter the right answer; a single digit is saved with one tap."""
    single = len(digits_read.replace(" ", "")) == 1

    def digit_button(digit: str) -> Button:
        if single:
            return Button(digit, f"sv:{prediction_id}:{digit}")
        return Button(digit, f"fx:{prediction_id}:{typed}{digit}")

    rows = [[digit_button(str(digit)) for digit in range(start, start + 3)] for start in (1, 4, 7)]
    if single:
        rows.append([digit_button("0")])
        prompt = "Which digit is it? Tap it, or type it."
    else:
        rows.append(
            [
                Button("⌫", f"fx:{prediction_id}:{typed[:-1]}"),
                digit_button("0"),
                Button("✔ Save", f"sv:{prediction_id}:{typed}"),
            ]
        )
        prompt = f"What is the right number? Tap the digits, or type it.\nSo far: {typed or '…'}"
    return Reply(text=f"I read {digits_read}. {prompt}", buttons=rows)


def verdict_recorded_text(reading: str, correct: bool, corrected: str | None) -> str:
    """The answer after its verdict is stored (the buttons are then removed)."""
    if correct:
        return f"{reading}\n\n✅ Thanks, recorded as right."
    return f"{reading}\n\n✏️ Corrected to {corrected}. Thanks, I'll learn from it."


def parse_correction(text: str, max_digits: int = MAX_DIGITS) -> str | None:
    """Return the digits a user typed as a correction ("20 26" → "2026"), or None if it isn't one."""
    compact = "".join(text.split())
    if not compact.isascii() or not compact.isdigit() or not 1 <= len(compact) <= max_digits:
        return None
    return compact


def format_duration(seconds: float | None) -> str:
    """'45 s', '3 min', '1 h 5 min'."""
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
