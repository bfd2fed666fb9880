"""Reduce Discord's OpenAPI description to the routes and schemas the test emulator checks against.

The official file (`../shared/discord/openapi.json`, from github.com/discord/discord-api-spec) is
1.2 MB and lives outside the repository. This script keeps the routes the bot calls (their query
parameters, the JSON request body and the success response) and every component schema those
reach, without descriptions, and writes `tests/discord_emulator/discord_api_v10_routes.json`, which
is committed so the tests never need the original.

Usage:
    python scripts/extract_discord_api.py [--spec PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "discord" / "openapi.json"
DEFAULT_OUT = REPO_ROOT / "tests" / "discord_emulator" / "discord_api_v10_routes.json"

# The REST routes discord.py calls for this bot, as "METHOD path" with the spec's path templates.
ROUTES_USED = (
    "GET /gateway/bot",
    "GET /users/@me",
    "GET /oauth2/applications/@me",
    "POST /users/@me/channels",
    "PUT /applications/{application_id}/commands",
    "PUT /applications/{application_id}/guilds/{guild_id}/commands",
    "POST /channels/{channel_id}/messages",
    "GET /channels/{channel_id}/messages/{message_id}",
    "PATCH /channels/{channel_id}/messages/{message_id}",
    "POST /channels/{channel_id}/typing",
    "POST /interactions/{interaction_id}/{interaction_token}/callback",
    "POST /webhooks/{webhook_id}/{webhook_token}",
    "GET /webhooks/{webhook_id}/{webhook_token}/messages/@original",
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original",
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
)
# Keys that document rather than constrain; dropping them keeps the subset small.
DROPPED_KEYS = {"description", "title", "example", "examples", "deprecated", "x-discord-union"}
COMPONENT_PREFIX = "#/components/schemas/"


def strip(schema: Any) -> Any:
    """A schema without its documentation keys (property names are kept whatever they are)."""
    if isinstance(schema, list):
        return [strip(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    stripped = {}
    for key, value in schema.items():
        if key in DROPPED_KEYS:
            continue
        if key == "properties":
            stripped[key] = {name: strip(prop) for name, prop in value.items()}
        else:
            stripped[key] = strip(value)
    return stripped


def references(schema: Any) -> set[str]:
    """The component schemas a schema refers to directly."""
    if isinstance(schema, list):
        return set().union(*(references(item) for item in schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    found = set()
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(COMPONENT_PREFIX):
            found.add(value.removeprefix(COMPONENT_PREFIX))
        else:
            found |= references(value)
    return found


def success_response(operation: dict[str, Any]) -> tuple[int, Any]:
    """The first 2xx status of an operation and its JSON body's schema (None for no body)."""
    for status, response in sorted(operation["responses"].items()):
        if status.startswith("2"):
            content = response.get("content", {}).get("application/json")
            return int(status), None if content is None else content["schema"]
    raise ValueError(f"operation {operation.get('operationId')} has no success response")


def reduce_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The routes used, their schemas, and the closure of the component schemas they reach."""
    routes: dict[str, Any] = {}
    for route in ROUTES_USED:
        method, path = route.split(" ", 1)
        operation = spec["paths"].get(path, {}).get(method.lower())
        if operation is None:
            raise ValueError(f"the spec has no route {route}")
        parameters = spec["paths"][path].get("parameters", []) + operation.get("parameters", [])
        request = operation.get("requestBody", {}).get("content", {}).get("application/json")
        status, response = success_response(operation)
        routes[route] = {
            "operation": operation["operationId"],
            "query": sorted(parameter["name"] for parameter in parameters if parameter["in"] == "query"),
            "request": None if request is None else strip(request["schema"]),
            "status": status,
            "response": None if response is None else strip(response),
        }
    schemas = spec["components"]["schemas"]
    wanted = set().union(*(references(route) for route in routes.values()))
    closure: dict[str, Any] = {}
    while wanted:
        name = wanted.pop()
        if name not in closure:
            closure[name] = strip(schemas[name])
            wanted |= references(closure[name]) - closure.keys()
    return {
        "version": spec["info"]["version"],
        "routes": routes,
        "components": {"schemas": dict(sorted(closure.items()))},
    }


def render(subset: dict[str, Any]) -> str:
    """One route or schema per line, so the file diffs cleanly."""

    def one_per_line(entries: dict[str, Any], indent: str) -> str:
        lines = [f"{indent}{json.dumps(name)}: {json.dumps(value)}" for name, value in entries.items()]
        return "{\n" + ",\n".join(lines) + "\n" + indent[:-1] + "}"

    return (
        "{\n"
        f' "version": {json.dumps(subset["version"])},\n'
        f' "routes": {one_per_line(subset["routes"], "  ")},\n'
        f' "components": {{"schemas": {one_per_line(subset["components"]["schemas"], "  ")}}}\n'
        "}\n"
    )


def main() -> None:
    """Read the official description and write the subset."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="Discord's openapi.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the subset")
    args = parser.parse_args()
    subset = reduce_spec(json.loads(args.spec.read_text(encoding="utf-8")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(subset), encoding="utf-8")
    routes, schemas = len(subset["routes"]), len(subset["components"]["schemas"])
    print(f"wrote {routes} routes and {schemas} schemas to {args.out}")


if __name__ == "__main__":
    main()
