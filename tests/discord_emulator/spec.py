"""Discord's HTTP API v10 as far as the emulator uses it: routes, and JSON Schema checks of bodies.

The committed subset (`discord_api_v10_routes.json`, made by `scripts/extract_discord_api.py` from
Discord's own OpenAPI description) names every route the emulator serves with its query
parameters, its request body's schema and its success response's schema. Each call the bot makes
is checked against it, and so is each answer the emulator gives, so neither side can drift from
Discord's shapes unnoticed.
"""

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).with_name("discord_api_v10_routes.json")
_BASE_URI = "urn:discord-api-v10"
# Fields discord.py sends that Discord takes although the OpenAPI preview leaves them out: `nsfw`
# is in the documentation of commands; `tts` on an edit is ignored.
_ACCEPTED_EXTRA_FIELDS = {
    "PUT /applications/{application_id}/commands": {"nsfw"},
    "PUT /applications/{application_id}/guilds/{guild_id}/commands": {"nsfw"},
    "PATCH /channels/{channel_id}/messages/{message_id}": {"tts"},
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original": {"tts"},
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": {"tts"},
}


@dataclass(frozen=True)
class RouteSpec:
    """One route: "POST /channels/{channel_id}/messages" and its schemas."""

    key: str
    method: str
    template: str
    pattern: re.Pattern[str]
    query: frozenset[str]
    request: dict[str, Any] | None
    status: int
    response: dict[str, Any] | None


class DiscordApiSpec:
    """The committed subset of Discord's OpenAPI description, with the checks the emulator runs."""

    def __init__(self, subset: dict[str, Any]) -> None:
        self.version: str = subset["version"]
        self.routes = [_route(key, route) for key, route in subset["routes"].items()]
        self._schemas: dict[str, Any] = subset["components"]["schemas"]
        self._strict = _registry(subset)
        # Discord reads a snowflake sent as a JSON number as well as a string (discord.py sends
        # numbers); its answers always carry strings, which the strict registry checks.
        lenient = copy.deepcopy(subset)
        snowflake = lenient["components"]["schemas"]["SnowflakeType"]
        lenient["components"]["schemas"]["SnowflakeType"] = {
            "anyOf": [snowflake, {"type": "integer", "minimum": 0}]
        }
        self._lenient = _registry(lenient)

    def match(self, method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
        """The route a request is for, with its path parameters, or None."""
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    def allows_path(self, path: str) -> bool:
        """Whether any method of the subset serves this path (to tell 405 from 404)."""
        return any(route.pattern.fullmatch(path) for route in self.routes)

    def request_errors(self, route: RouteSpec, body: Any) -> list[str]:
        """Where a request body breaks the route's schema, and fields no variant of it has."""
        if route.request is None:
            return [] if body in (None, {}) else [f"{route.key} takes no body"]
        extra = _ACCEPTED_EXTRA_FIELDS.get(route.key, set())
        return self._errors(route.request, body, self._lenient) + self._unknown_fields(
            route.request, body, extra
        )

    def response_errors(self, route: RouteSpec, body: Any) -> list[str]:
        """Where an answer of the emulator breaks the route's response schema."""
        if route.response is None:
            return [] if body is None else [f"{route.key} answers without a body"]
        return self._errors(route.response, body, self._strict) + self._unknown_fields(route.response, body)

    def schema_errors(self, schema_name: str, obj: Any) -> list[str]:
        """Where `obj` breaks a named component schema (for gateway payloads built from REST types)."""
        if schema_name not in self._schemas:
            raise ValueError(f"{schema_name} is not in the committed subset; add a route that reaches it")
        schema = {"$ref": f"#/components/schemas/{schema_name}"}
        return self._errors(schema, obj, self._strict) + self._unknown_fields(schema, obj)

    def properties(self, schema: dict[str, Any]) -> set[str] | None:
        """Every property name an object schema (or any variant of a union) allows; None if open."""
        if "$ref" in schema:
            return self.properties(self._schemas[schema["$ref"].rsplit("/", 1)[-1]])
        variants = schema.get("oneOf") or schema.get("anyOf") or schema.get("allOf")
        if variants:
            names: set[str] = set()
            for variant in variants:
                if variant.get("type") == "null":
                    continue
                found = self.properties(variant)
                if found is None:
                    return None
                names |= found
            return names
        if "properties" in schema:
            return set(schema["properties"])
        return None

    @staticmethod
    def _errors(schema: dict[str, Any], body: Any, registry: Registry) -> list[str]:
        validator = Draft202012Validator(_absolute(schema), registry=registry)
        return [f"{_where(error.absolute_path)}: {error.message}" for error in validator.iter_errors(body)]

    def _unknown_fields(self, schema: dict[str, Any], body: Any, extra: set[str] | None = None) -> list[str]:
        """JSON Schema lets unknown fields pass; Discord ignores some and refuses others: flag them all."""
        items = body if isinstance(body, list) else [body]
        item_schema = schema.get("items", schema) if isinstance(body, list) else schema
        known = self.properties(item_schema)
        if known is None:
            return []
        known |= extra or set()
        return [
            f"unknown field {name!r}"
            for item in items
            if isinstance(item, dict)
            for name in item
            if name not in known
        ]


@cache
def load_spec(path: Path = SPEC_PATH) -> DiscordApiSpec:
    """Load the committed subset once per process."""
    return DiscordApiSpec(json.loads(path.read_text(encoding="utf-8")))


def _registry(subset: dict[str, Any]) -> Registry:
    return Registry().with_resource(
        _BASE_URI, Resource.from_contents(subset, default_specification=DRAFT202012)
    )


def _route(key: str, route: dict[str, Any]) -> RouteSpec:
    method, template = key.split(" ", 1)
    pattern = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))
    return RouteSpec(
        key=key,
        method=method,
        template=template,
        pattern=pattern,
        query=frozenset(route["query"]),
        request=route["request"],
        status=route["status"],
        response=route["response"],
    )


def _absolute(schema: Any) -> Any:
    """A route's schema with its references made absolute, so it validates outside the subset."""
    if isinstance(schema, list):
        return [_absolute(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: _BASE_URI + value if key == "$ref" and value.startswith("#") else _absolute(value)
        for key, value in schema.items()
    }


def _where(path: Any) -> str:
    return "/".join(str(part) for part in path) or "body"
