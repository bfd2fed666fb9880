"""Reduce the official Bot API description to what the test emulator validates against.

The official file (`../shared/telegram/bot-api-9.2.json`) is large and lives outside the repository.
This script keeps only method names with their parameters' names, types and required flags, the
fields of the objects the emulator builds or parses, and the allowed reaction emoji, and writes them
to `tests/emulator/bot_api_9_2_methods.json`, which is committed so the tests never need the original.

Usage:
    python scripts/extract_bot_api.py [--spec PATH] [--out PATH]
"""

import argparse
import json
import re
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "telegram" / "bot-api-9.2.json"
DEFAULT_OUT = REPO_ROOT / "tests" / "emulator" / "bot_api_9_2_methods.json"

# Objects the emulator builds (in its answers and updates) or checks (in the bot's parameters).
TYPES_USED = (
    "Animation",
    "BotCommand",
    "BotCommandScope",
    "CallbackQuery",
    "Chat",
    "Document",
    "File",
    "InlineKeyboardButton",
    "InlineKeyboardMarkup",
    "Message",
    "MessageEntity",
    "PhotoSize",
    "ReactionTypeEmoji",
    "Sticker",
    "Update",
    "User",
    "WebhookInfo",
)


def reduce_fields(fields: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Keep each field's types and required flag, keyed by its name."""
    return {field["name"]: {"types": field["types"], "required": field["required"]} for field in fields}


def reaction_emoji(spec: dict[str, Any]) -> list[str]:
    """List the emoji that ReactionTypeEmoji allows; the spec gives them only in a description."""
    emoji_field = next(f for f in spec["types"]["ReactionTypeEmoji"]["fields"] if f["name"] == "emoji")
    return re.findall(r'"([^"]+)"', emoji_field["description"])


def reduce_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Reduce the official Bot API description to the emulator's subset."""
    missing = [name for name in TYPES_USED if name not in spec["types"]]
    if missing:
        raise ValueError(f"the spec has no types named {missing}")
    return {
        "version": spec["version"],
        "methods": {
            name: {"params": reduce_fields(method.get("fields", [])), "returns": method["returns"]}
            for name, method in sorted(spec["methods"].items())
        },
        "types": {
            name: {
                "fields": reduce_fields(spec["types"][name].get("fields", [])),
                "subtypes": spec["types"][name].get("subtypes", []),
            }
            for name in TYPES_USED
        },
        "reaction_emoji": reaction_emoji(spec),
    }


def render(subset: dict[str, Any]) -> str:
    """Serialise the subset with one method or type per line, so the file stays small and diffs cleanly."""

    def one_per_line(entries: dict[str, Any]) -> str:
        lines = [
            f"  {json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}"
            for name, value in entries.items()
        ]
        return "{\n" + ",\n".join(lines) + "\n }"

    return (
        "{\n"
        f' "version": {json.dumps(subset["version"])},\n'
        f' "methods": {one_per_line(subset["methods"])},\n'
        f' "types": {one_per_line(subset["types"])},\n'
        f' "reaction_emoji": {json.dumps(subset["reaction_emoji"], ensure_ascii=False)}\n'
        "}\n"
    )


def main() -> None:
    """Read the official spec and write the subset."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="official bot-api-9.2.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the subset")
    args = parser.parse_args()
    subset = reduce_spec(json.loads(args.spec.read_text(encoding="utf-8")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(subset), encoding="utf-8")
    print(f"wrote {len(subset['methods'])} methods and {len(subset['types'])} types to {args.out}")


if __name__ == "__main__":
    main()
