"""Message text as Telegram stores it: parse_mode markup turned into plain text plus entities.

Telegram parses HTML, MarkdownV2 and legacy Markdown on its side, rejects malformed markup with
"Bad Request: can't parse entities: ...", trims surrounding whitespace and measures entities in
UTF-16 code units. Doing the same here lets tests read the text a user would see and catches the
classic MarkdownV2 bug of an unescaped "." or "!".
"""

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from .errors import BotApiError

# A /command at the start of the text or after whitespace, optionally addressed as /command@bot_name.
_BOT_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",  # only as <span class="tg-spoiler">
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}

_MARKDOWN_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MARKDOWN_V2_TOGGLES = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}
_LEGACY_MARKDOWN_TOGGLES = {"*": "bold", "_": "italic"}


@dataclass
class FormattedText:
    """Plain text plus the entities that style it."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit of entity offsets and lengths."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entities Telegram marks in a user's text."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_length(text[: match.start()]),
            "length": utf16_length(match[0]),
        }
        for match in _BOT_COMMAND.finditer(text)
    ]


def format_text(text: str, parse_mode: str | None, entities: list[Any] | None) -> FormattedText:
    """Apply explicit entities or parse_mode to `text` and trim it, as Telegram does before storing it."""
    if entities is not None:
        formatted = FormattedText(text, _checked_entities(entities))
    elif not parse_mode:
        formatted = FormattedText(text)
    elif parse_mode.lower() == "html":
        formatted = _parse_html(text)
    elif parse_mode.lower() == "markdownv2":
        formatted = _MarkdownParser(text, legacy=False).parse()
    elif parse_mode.lower() == "markdown":
        formatted = _MarkdownParser(text, legacy=True).parse()
    else:
        raise BotApiError.bad_request(f"unsupported parse_mode {parse_mode!r}")
    return _trimmed(formatted)


def _entities_error(detail: str) -> BotApiError:
    return BotApiError.bad_request(f"can't parse entities: {detail}")


def _checked_entities(entities: list[Any]) -> list[dict[str, Any]]:
    for entity in entities:
        if not (
            isinstance(entity, dict)
            and isinstance(entity.get("type"), str)
            and isinstance(entity.get("offset"), int)
            and isinstance(entity.get("length"), int)
        ):
            raise _entities_error(f"an entity needs type, offset and length, got {entity!r}")
    return [dict(entity) for entity in entities]


def _trimmed(formatted: FormattedText) -> FormattedText:
    """Strip surrounding whitespace, shifting and clipping entities to match."""
    text = formatted.text.lstrip()
    shift = utf16_length(formatted.text) - utf16_length(text)
    text = text.rstrip()
    total = utf16_length(text)
    entities = []
    for entity in formatted.entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, total)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return FormattedText(text, entities)


class _TextBuilder:
    """Collects output text and entities, tracking the UTF-16 offset."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.offset += utf16_length(text)

    def close_entity(self, entity_type: str, start: int, end: int | None = None, **extra: Any) -> None:
        """Record an entity from `start` to `end` (default: here); empty entities are dropped."""
        end = self.offset if end is None else end
        if end > start:
            self.entities.append({"type": entity_type, "offset": start, "length": end - start, **extra})

    def result(self) -> FormattedText:
        return FormattedText("".join(self.parts), self.entities)


@dataclass
class _OpenTag:
    tag: str
    entity_type: str | None
    start: int
    extra: dict[str, Any]


class _HtmlToEntities(HTMLParser):
    """Telegram's HTML subset: known tags become entities, anything else is an error."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.out = _TextBuilder()
        self.open_tags: list[_OpenTag] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        entity_type = _HTML_TAGS.get(tag)
        if entity_type is None or (tag == "span" and attributes.get("class") != "tg-spoiler"):
            raise _entities_error(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')
        extra: dict[str, Any] = {}
        if tag == "a":
            extra["url"] = attributes.get("href") or ""
        elif tag == "tg-emoji":
            extra["custom_emoji_id"] = attributes.get("emoji-id") or ""
        elif tag == "blockquote" and "expandable" in attributes:
            entity_type = "expandable_blockquote"
        elif tag == "code" and self.open_tags and self.open_tags[-1].tag == "pre":
            # <pre><code class="language-x"> is one pre entity with a language, not two entities.
            language = (attributes.get("class") or "").removeprefix("language-")
            if language:
                self.open_tags[-1].extra["language"] = language
            entity_type = None
        self.open_tags.append(_OpenTag(tag, entity_type, self.out.offset, extra))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise _entities_error(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')

    def handle_endtag(self, tag: str) -> None:
        if not self.open_tags or self.open_tags[-1].tag != tag:
            expected = f'"</{self.open_tags[-1].tag}>"' if self.open_tags else "no end tag"
            offset = self._byte_offset()
            raise _entities_error(
                f'Unmatched end tag at byte offset {offset}, expected {expected}, found "</{tag}>"'
            )
        opened = self.open_tags.pop()
        if opened.entity_type is not None:
            self.out.close_entity(opened.entity_type, opened.start, **opened.extra)

    def handle_data(self, data: str) -> None:
        self.out.add(data)

    def finish(self) -> FormattedText:
        self.close()
        if self.open_tags:
            raise _entities_error(
                f'Can\'t find end tag corresponding to start tag "{self.open_tags[-1].tag}"'
            )
        return self.out.result()

    def _byte_offset(self) -> int:
        """Where the tag being handled starts, in UTF-8 bytes, as Telegram reports it."""
        line, column = self.getpos()
        char_index = sum(len(text) + 1 for text in self.source.split("\n")[: line - 1]) + column
        return len(self.source[:char_index].encode())


def _parse_html(source: str) -> FormattedText:
    parser = _HtmlToEntities(source)
    parser.feed(source)
    return parser.finish()


@dataclass
class _OpenMarker:
    marker: str
    entity_type: str
    start: int
    position: int


class _MarkdownParser:
    """MarkdownV2, or with `legacy` the older Markdown, read one character at a time."""

    def __init__(self, source: str, *, legacy: bool) -> None:
        self.source = source
        self.legacy = legacy
        self.toggles = _LEGACY_MARKDOWN_TOGGLES if legacy else _MARKDOWN_V2_TOGGLES
        self.out = _TextBuilder()
        self.open_markers: list[_OpenMarker] = []
        self.position = 0
        self.quote_start: int | None = None
        self.quote_end = 0

    def parse(self) -> FormattedText:
        while self.position < len(self.source):
            self._step()
        if self.open_markers:
            raise self._unclosed(self.open_markers[-1])
        if self.quote_start is not None:
            self.out.close_entity("blockquote", self.quote_start)
        return self.out.result()

    def _step(self) -> None:
        source, index = self.source, self.position
        char = source[index]
        at_line_start = index == 0 or source[index - 1] == "\n"
        if not self.legacy and at_line_start:
            self._line_start(char)
            if char == ">":
                self.position += 1
                return
        if char == "\\" and index + 1 < len(source) and self._escapable(source[index + 1]):
            self.out.add(source[index + 1])
            self.position += 2
        elif source.startswith("```", index):
            self._code_block()
        elif char == "`":
            self._inline_code()
        elif char == "[" or (not self.legacy and source.startswith("![", index)):
            self._open_link()
        elif char == "]" and self.open_markers and self.open_markers[-1].marker in ("[", "!["):
            self._close_link()
        elif (marker := self._toggle_at(index)) is not None:
            self._toggle(marker)
        elif not self.legacy and char in _MARKDOWN_V2_RESERVED:
            raise _entities_error(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            if char == "\n" and self.quote_start is not None:
                self.quote_end = self.out.offset
            self.out.add(char)
            self.position += 1

    def _escapable(self, char: str) -> bool:
        if self.legacy:
            return char in "_*`["
        return 0 < ord(char) < 127

    def _line_start(self, char: str) -> None:
        """Lines starting with ">" form a blockquote; the first other line ends it."""
        if char == ">" and self.quote_start is None:
            self.quote_start = self.out.offset
        elif char != ">" and self.quote_start is not None:
            self.out.close_entity("blockquote", self.quote_start, self.quote_end)
            self.quote_start = None

    def _toggle_at(self, index: int) -> str | None:
        """The toggle marker starting at `index`, longest first ("__" before "_")."""
        for marker in sorted(self.toggles, key=len, reverse=True):
            if self.source.startswith(marker, index):
                return marker
        return None

    def _toggle(self, marker: str) -> None:
        open_markers = [opened.marker for opened in self.open_markers]
        if open_markers and open_markers[-1] == marker:
            opened = self.open_markers.pop()
            self.out.close_entity(opened.entity_type, opened.start)
        elif marker in open_markers or (self.legacy and open_markers):
            raise self._unclosed(self.open_markers[-1])
        else:
            self.open_markers.append(
                _OpenMarker(marker, self.toggles[marker], self.out.offset, self.position)
            )
        self.position += len(marker)

    def _open_link(self) -> None:
        marker = "![" if self.source.startswith("![", self.position) else "["
        self.open_markers.append(_OpenMarker(marker, "text_link", self.out.offset, self.position))
        self.position += len(marker)

    def _close_link(self) -> None:
        opened = self.open_markers.pop()
        if not self.source.startswith("(", self.position + 1):
            raise self._unclosed(opened)
        url, self.position = self._read_until(")", self.position + 2, opened)
        if opened.marker == "![":
            self.out.close_entity("custom_emoji", opened.start, custom_emoji_id=url.rpartition("id=")[2])
        else:
            self.out.close_entity("text_link", opened.start, url=url)

    def _inline_code(self) -> None:
        opened = _OpenMarker("`", "code", self.out.offset, self.position)
        code, self.position = self._read_until("`", self.position + 1, opened)
        self.out.add(code)
        self.out.close_entity("code", opened.start)

    def _code_block(self) -> None:
        opened = _OpenMarker("```", "pre", self.out.offset, self.position)
        code, self.position = self._read_until("```", self.position + 3, opened)
        first_line, newline, rest = code.partition("\n")
        extra = {}
        if newline and first_line and not any(char.isspace() for char in first_line):
            extra["language"], code = first_line, rest
        self.out.add(code)
        self.out.close_entity("pre", opened.start, **extra)

    def _read_until(self, end: str, index: int, opened: _OpenMarker) -> tuple[str, int]:
        """Literal text up to an unescaped `end`, and the index just after it."""
        chars = []
        while index < len(self.source):
            if not self.legacy and self.source[index] == "\\" and index + 1 < len(self.source):
                chars.append(self.source[index + 1])
                index += 2
            elif self.source.startswith(end, index):
                return "".join(chars), index + len(end)
            else:
                chars.append(self.source[index])
                index += 1
        raise self._unclosed(opened)

    def _unclosed(self, opened: _OpenMarker) -> BotApiError:
        byte_offset = len(self.source[: opened.position].encode())
        if self.legacy:
            return _entities_error(f"Can't find end of the entity starting at byte offset {byte_offset}")
        name = opened.entity_type.replace("_", " ").title().replace(" ", "")
        return _entities_error(f"Can't find end of {name} entity at byte offset {byte_offset}")
