"""Every word the product says to a person, in one place, keyed, so that a language can be added.

    say("no_digit")                                   # a fixed text
    say("rate_limited", limit=20, seconds=30)         # a template, filled with str.format

A second language is one more entry in TEXTS with the same keys (a test checks that every
language has every key); `say(..., language="de")` picks it.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LANGUAGE = "en"

_RETAKE_TIPS = "Try again with the digits large in the frame, dark ink on light paper, and even light."

ENGLISH: dict[str, str] = {
    # --- People sending pictures ----------------------------------------------------------------
    "help": (
        "Send me a photo of digits written on paper and I'll tell you what I read and how sure I am. "
        'A single digit or a whole number ("2026") both work.\n\n'
        "For a good photo:\n"
        "• dark pen or marker on plain, light paper (lined paper is fine);\n"
        "• fill most of the picture with the digits, held flat and straight;\n"
        "• even light, without your phone's shadow across the digits;\n"
        "• leave a little space between digits.\n\n"
        "Under each answer, tap ✅ if I was right or ❌ to correct me: I learn from your corrections."
    ),
    "admin_help": (
        "Admin commands:\n"
        "/train [architecture] [epochs] — train a new model now (e.g. /train small-cnn 3)\n"
        "/cancel — stop the run in progress\n"
        "/model — the serving model and its metrics\n"
        "/stats — usage, accuracy as users judged it, recent runs, with a chart"
    ),
    "no_digit": "I couldn't find any digit in this picture. " + _RETAKE_TIPS,
    "not_an_image": "That file isn't an image I can read. Please send a photo (JPEG, PNG, WebP, …).",
    "sticker": "Nice sticker! I read handwritten digits though: send me a photo of digits on paper.",
    "animation": "I can't read digits from animations or videos. Please send a still photo.",
    "text_without_photo": "Send me a photo of handwritten digits and I'll read them. /help has tips.",
    "download_failed": "I couldn't download that picture. Please send it again.",
    "internal_error": "Something went wrong on my side while reading that picture. Please try again in a moment.",
    "reader_crashed": (
        "That picture made my reader crash, so I couldn't read it. If it is an ordinary photo, please "
        "send it again as a smaller photo."
    ),
    "file_too_large": "That file is {size_mb:.1f} MB; I can read images up to {limit_mb:.0f} MB.",
    "file_too_large_send_as_photo": "Send it as a photo instead (Telegram compresses photos).",
    "rate_limited": (
        "You're sending pictures faster than I can look at them ({limit} a minute). "
        "Please wait {seconds} s and send the next one."
    ),
    "warming_up": "I'm still warming up: I'm training my first model{detail}. Please send your picture again in a few minutes.",
    "warming_up_detail": " ({progress:.0%} done)",
    "warming_up_detail_eta": " ({progress:.0%} done, about {eta} left)",
    "no_model": (
        "I have no model to read digits with yet. An administrator needs to train one with /train; "
        "please try again later."
    ),
    "model_broken": (
        "My model can't be loaded right now, so I can't read pictures. The administrators have been "
        "told; please try again later."
    ),
    # Why a picture could not be read (the kinds of mnist_engine.photo.ImageError).
    "image.empty": "This file is empty, so there is no image to read. " + _RETAKE_TIPS,
    "image.not_an_image": (
        "This file is not an image I can read. Send a photo, or a JPEG, PNG, WebP, GIF, BMP or TIFF file."
    ),
    "image.damaged": "This file is not an image I can read (a damaged {format}). " + _RETAKE_TIPS,
    "image.truncated": "This file is not an image I can read (a truncated {format}). " + _RETAKE_TIPS,
    "image.too_large": "This image is too large for me to read safely. Send an ordinary photo instead.",
    "image.too_many_pixels": (
        "This image is too large ({megapixels:.0f} megapixels); send one of at most {limit:.0f} megapixels, "
        "such as an ordinary photo."
    ),
    "image.too_many_digits": (
        "I found {found} shapes that could be digits; I read at most {limit} at a time. "
        "Send a photo of just the number, cropped close."
    ),
    # --- Answers -----------------------------------------------------------------------------------
    "reading.digit": "I read: {digit} ({confidence:.0%} sure).",
    "reading.digit_runner_up": " It might also be {runner_up} ({runner_up_confidence:.0%}).",
    "reading.number": "I read the number {number} ({confidence:.0%} sure).",
    "reading.least_sure": " Least sure: {notes}.",
    "reading.unsure_digit": "digit {position} could be {digit} ({confidence:.0%}) or {runner_up} ({runner_up_confidence:.0%})",
    "reading.was": "I read {digits}.",
    "button.right": "✅ Right",
    "button.wrong": "❌ Wrong — correct it",
    "button.this_reading": "✅ {digits}",
    "button.neither": "❌ Neither — correct it",
    "button.erase": "⌫",
    "button.save": "✔ Save",
    "pad.single": "I read {digits}. Which digit is it? Tap it, or type it.",
    "pad.number": "I read {digits}. What is the right number? Tap the digits, or type it.\nSo far: {typed}",
    "pad.full": "That is as many digits as I read at a time: save it, or ⌫ to change it.",
    "pad.nothing_typed": "…",
    "pad.opened": "Tap the digits or type the number",
    "verdict.right": "{reading}\n\n✅ Thanks, recorded as right.",
    "verdict.corrected": "{reading}\n\n✏️ Corrected to {digits}. Thanks, I'll learn from it.",
    "verdict.thanks": "Recorded, thank you!",
    "verdict.thanks_for_correction": "Thanks! Recorded {digits} as the right answer.",
    "verdict.not_yours": "Only the person who sent the picture can judge its answer.",
    "verdict.stale": "That answer is no longer in my records.",
    # --- Admins --------------------------------------------------------------------------------------
    "admin.not_admin": "Sorry, only the bot's administrators can use that command.",
    "admin.epochs_range": "Epochs must be between 1 and 200.",
    "admin.unknown_architecture": (
        "Unknown architecture {name!r}. Choose one of: {choices}. Usage: /train [architecture] [epochs]"
    ),
    "admin.run_started": "Started training run #{run_id} ({architecture}). Progress goes to the admin chat.",
    "admin.run_busy": "A run is already in progress: #{run_id}, {progress:.0%} done (epoch {epoch}/{total_epochs}). /cancel stops it.",
    "admin.run_busy_elsewhere": "A run is already in progress (#{run_id}, started by {requested_by}). /cancel stops it where it runs.",
    "admin.cancel_stopping": "Stopping the run at its next batch…",
    "admin.cancel_none": "No training run is in progress.",
    "admin.scheduled_skipped_few": (
        "⏭ Scheduled retraining skipped: {count} new labelled samples since the last run "
        "(RETRAIN_MIN_NEW_SAMPLES is {minimum})."
    ),
    "admin.scheduled_skipped_busy": "⏭ Scheduled retraining skipped: run #{run_id} is in progress.",
    "admin.model_broken": "⚠️ The serving model can't be loaded: {error}",
    "admin.queue_unreachable": "the training queue (Redis) cannot be reached: {error}",
    "admin.run_unavailable": "❌ The run could not be started: {error}",
    # Progress of a run, one message edited in place.
    "progress.header": "🏋️ Training run #{run_id} ({architecture}, {trigger}{who})",
    "progress.by": " by {name}",
    "progress.epoch": "Epoch {epoch}/{total_epochs} · elapsed {elapsed}",
    "progress.eta": " · ETA {eta}",
    "progress.metrics": "loss {loss:.4f} · accuracy {accuracy:.2%}",
    "progress.val_accuracy": " · val accuracy {val_accuracy:.2%}",
    "progress.learning_rate": "learning rate {learning_rate:.2g}",
    "progress.note": "epoch {epoch}: {message}",
    "progress.lr_reduced": "Learning rate reduced to {learning_rate:.2g}",
    "progress.early_stopped": "Early stopping after epoch {epoch}: validation accuracy stopped improving",
    "progress.cancelled": "Training cancelled; keeping the best epoch so far",
    "summary.header": "Training run #{run_id} ({architecture}, {trigger})",
    "summary.failed": "❌ {header} failed after {elapsed}.\n{error}",
    "summary.cancelled": "⏹ {header} was cancelled at epoch {epoch}/{total_epochs}. The serving model is unchanged.",
    "summary.finished": "✅ {header} finished: {epochs} epochs in {elapsed}.",
    "summary.scores": "Test accuracy {test_accuracy:.2%} · loss {test_loss:.4f} · best val accuracy {best_val_accuracy:.2%}",
    "summary.user_samples": "Learned from {count} user samples.",
    "summary.user_samples_holdout": "Learned from {count} user samples; {accuracy:.2%} right on the held-out ones.",
    "summary.serving_compared": ("The serving model, on the same data: MNIST {test_accuracy:.2%}{users}."),
    "summary.serving_users": ", users' digits {users_accuracy:.2%}",
    "summary.promoted": "🚀 Promoted: {reason}. Version {version}.",
    "summary.not_promoted": "🛑 Not promoted: {reason}. Version {version}.",
    "summary.process_failed": "the training process exited with code {code}",
    "summary.interrupted": "the service stopped before the training process could start",
    # /model and /stats
    "model.none": "No model is serving yet.",
    "model.serving": "Serving model {version} ({architecture}, {parameters:,} parameters)",
    "model.scores": "Test accuracy {test_accuracy:.2%} · test loss {test_loss:.4f} · best val accuracy {best_val_accuracy:.2%}",
    "model.trained": "Trained {epochs} epochs in {minutes:.1f} min on {images:,} MNIST images{extra}",
    "model.extra": " + {count} user samples",
    "model.created": "Created {created_at}",
    "model.holdout": "Held-out user samples: {accuracy:.2%} right",
    "stats.model": "📊 Model: {serving}",
    "stats.model_none": "none yet",
    "stats.model_version": "{version} (test accuracy {test_accuracy:.2%})",
    "stats.predictions": "Predictions: {today} today · {week} in 7 days · {total} in total",
    "stats.users": "Users: {count}",
    "stats.judged": "Accuracy as users judged it: {judged}",
    "stats.judged_value": "{accuracy:.1%} right ({right} of {verdicts} verdicts)",
    "stats.judged_none": "no verdicts yet",
    "stats.samples": "Labelled samples for retraining: {count}",
    "stats.last_runs": "\nLast runs:",
    "stats.run": "#{run_id} {when} {architecture} ({trigger}) — {status}",
    "stats.run_test": ", test {accuracy:.2%}",
    "stats.run_users": ", users {accuracy:.2%} (serving: {serving})",
    "stats.run_promoted": ", promoted",
    "stats.run_not_promoted": ", not promoted",
    "stats.run_error": ": {error}",
    "chart.runs_title": "Test accuracy of runs",
    "chart.no_runs": "no finished runs yet",
    "chart.promoted": "promoted",
    "chart.curves_title": "Run #{run_id}: accuracy per epoch",
    "chart.epoch": "epoch",
    "chart.training": "training",
    "chart.validation": "validation",
    "chart.no_epochs": "no epochs recorded yet",
    "chart.last_run": "Last run",
    "chart.confusion_title": "Users' corrections (true × read)",
    # Durations
    "duration.unknown": "?",
    "duration.seconds": "{seconds} s",
    "duration.minutes": "{minutes} min",
    "duration.hours": "{hours} h {minutes} min",
    # --- Web ---------------------------------------------------------------------------------------
    "web.title": "Digit reader",
    "web.tagline": "Send a photo of handwritten digits, or draw one, and I'll read it.",
    "web.tab_photo": "📷 Photo",
    "web.tab_draw": "✏️ Draw",
    "web.drop_here": "Drop a photo here, paste one (Ctrl+V), or",
    "web.choose_file": "choose a file",
    "web.take_photo": "📷 Take a photo",
    "web.photo_tips": "Dark ink on light paper, digits large in the frame, even light.",
    "web.draw_hint": "Draw a digit or a number with your mouse, finger or pen.",
    "web.read_drawing": "Read it",
    "web.clear": "Clear",
    "web.reading": "Reading…",
    "web.your_picture": "Your picture, with what I read",
    "web.sure": "{confidence:.0%} sure",
    "web.type_number": "or type the number",
    "web.pad_title": "What is the right answer? Tap the digits or type them, then save.",
    "web.pad_single": "Which digit is it?",
    "web.nothing_typed": "Type or tap at least one digit.",
    "web.not_digits": "Only digits, please (up to {limit}).",
    "web.network_error": "I couldn't reach the server. Check your connection and try again.",
    "web.server_error": "Something went wrong on my side. Please try again in a moment.",
    "web.file_over_limit": "That file is larger than {limit_mb:.0f} MB, the most I can read. Send a smaller photo.",
    "web.rate_limited_again": "Still too fast: please wait a little before the next picture.",
    "web.session_expired": "This page is out of date. Reload it and try again.",
    "web.bad_request": "That request is not one I understand: {detail}",
    "web.admin_link": "Admin",
    "web.footer": "Your pictures and corrections are stored to improve the model.",
    # Telegram's Web App (the canvas opened from the bot's Draw button)
    "web.telegram.button": "✏️ Draw",
    "web.telegram.start_hint": "No paper at hand? Tap ✏️ Draw to write a digit on the screen.",
    "web.telegram.send": "Send to the chat",
    "web.telegram.sent": "Sent: the answer is in your chat.",
    "web.telegram.open_in_telegram": "Open this page from the bot's ✏️ Draw button in Telegram.",
    "web.telegram.not_verified": "Telegram could not confirm who you are. Close this and open Draw again.",
    "web.telegram.unavailable": "The Telegram bot is not running, so I can't answer in the chat right now.",
    # The admin dashboard
    "web.admin.title": "Digit reader · admin",
    "web.admin.sign_in": "Sign in",
    "web.admin.sign_in_hint": "The admin token is ADMIN_TOKEN from the settings, or the one the service printed in its log at start.",
    "web.admin.token": "Admin token",
    "web.admin.wrong_token": "That token is not right.",
    "web.admin.too_many_attempts": "Too many attempts. Wait a minute and try again.",
    "web.admin.form_expired": "This sign-in form expired. Try again.",
    "web.admin.sign_out": "Sign out",
    "web.admin.not_signed_in": "Sign in first.",
    "web.admin.csrf_missing": "This request lacks its security token. Reload the page.",
    "web.admin.csrf_replayed": "This request was already made once (or its token is unknown). Reload the page.",
    "web.admin.cross_site": "Refused: this request came from another site.",
    "web.admin.training": "Training",
    "web.admin.architecture": "Architecture",
    "web.admin.epochs": "Epochs",
    "web.admin.epochs_default": "default",
    "web.admin.start": "Start a run",
    "web.admin.run_started": "Started training run #{run_id} ({architecture}); its progress follows below.",
    "web.admin.cancel": "Cancel the run",
    "web.admin.idle": "No run in progress.",
    "web.admin.accuracy_chart": "Accuracy",
    "web.admin.loss_chart": "Loss",
    "web.admin.train_accuracy": "training accuracy",
    "web.admin.val_accuracy": "validation accuracy",
    "web.admin.train_loss": "training loss",
    "web.admin.val_loss": "validation loss",
    "web.admin.mark_lr_reduced": "LR ↓ {learning_rate:.2g}",
    "web.admin.mark_early_stopped": "early stop",
    "web.admin.mark_cancelled": "cancelled",
    "web.admin.notes": "Notes for admins",
    "web.admin.runs": "Runs",
    "web.admin.run_column": "Run",
    "web.admin.when_column": "Started",
    "web.admin.trigger_column": "Trigger",
    "web.admin.status_column": "Status",
    "web.admin.test_column": "Test accuracy",
    "web.admin.promoted_column": "Promoted",
    "web.admin.yes": "yes",
    "web.admin.no": "no",
    "web.admin.run_details": "Run #{run_id}",
    "web.admin.pick_run": "Pick a run to see its curves and confusion matrix.",
    "web.admin.confusion": "MNIST test confusion (true × read)",
    "web.admin.no_confusion": "This run stored no model, so there is no confusion matrix.",
    "web.admin.models": "Models",
    "web.admin.serving": "Serving: {version}",
    "web.admin.serving_none": "No model is serving yet.",
    "web.admin.serving_broken": "The serving model can't be loaded: {error}",
    "web.admin.version_column": "Version",
    "web.admin.created_column": "Created",
    "web.admin.architecture_column": "Architecture",
    "web.admin.serve": "Serve this",
    "web.admin.roll_back": "Roll back to this",
    "web.admin.serving_now": "serving",
    "web.admin.changes": "Changes by hand",
    "web.admin.change_line": "{when}: {kind} {version} (was {previous}) by {who}",
    "web.admin.promoted_by_hand": "Now serving {version} (was {previous}).",
    "web.admin.no_such_version": "There is no stored model version {version!r}.",
    "web.admin.already_serving": "{version} is already serving.",
    "web.admin.usage": "Usage",
    "web.admin.usage_chart": "Answers per day",
    "web.admin.accuracy_over_time": "Users' verdicts: share right per day",
    "web.admin.answers": "answers",
    "web.admin.verdicts": "verdicts",
    "web.admin.right_share": "right",
    "web.admin.users_confusion": "Users' corrections (true × read)",
    # --- Discord ---------------------------------------------------------------------------------------
    "discord.help_where": (
        "In a server, attach the picture to a message that mentions me, or use /read. "
        "In a direct message, just send it."
    ),
    "discord.not_an_image": "{name} isn't an image I can read. Please attach a photo (JPEG, PNG, WebP, …).",
    "discord.video": "I can't read digits from videos. Please attach a still photo.",
    "discord.slow_down": "Please slow down a little before sending the next picture.",
    "discord.button.type": "⌨ Type the number",
    "discord.modal.title": "The right number",
    "discord.modal.label": "What is written in the picture?",
    "discord.modal.description": "I read {digits}. Digits only, up to {limit}.",
    "discord.modal.not_digits": "{typed!r} isn't a number of 1 to {limit} digits; press ⌨ and try again.",
    "discord.command.read": "Read the digits in a picture",
    "discord.command.read.image": "A photo of digits written on paper",
    "discord.command.help": "What this bot does and how to take a good photo",
    "discord.command.train": "Admins: train a new model now",
    "discord.command.train.architecture": "The model architecture (default: the configured one)",
    "discord.command.train.epochs": "How many epochs (1 to 200; default: the architecture's own)",
    "discord.command.cancel": "Admins: stop the training run",
    "discord.command.model": "Admins: the serving model",
    "discord.command.stats": "Admins: usage and accuracy",
}

TEXTS: dict[str, dict[str, str]] = {"en": ENGLISH}


def say(key: str, /, *, language: str = DEFAULT_LANGUAGE, **values: Any) -> str:
    """The text under `key` in `language`, filled with `values`."""
    template = TEXTS.get(language, ENGLISH).get(key) or ENGLISH[key]
    return template.format(**values) if values else template


def format_duration(seconds: float | None) -> str:
    """'45 s', '3 min', '1 h 5 min'."""
    if seconds is None:
        return say("duration.unknown")
    seconds = max(0, round(seconds))
    if seconds < 60:
        return say("duration.seconds", seconds=seconds)
    minutes = round(seconds / 60)
    if minutes < 60:
        return say("duration.minutes", minutes=minutes)
    return say("duration.hours", hours=minutes // 60, minutes=minutes % 60)
