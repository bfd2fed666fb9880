"""The Bot API 9.2 method list, and the checks every incoming call goes through."""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import BotApiError
from .files import UploadedFile

SPEC_PATH = Path(__file__).with_name("bot_api_9_2_methods.json")

_INTEGER = re.compile(r"-?\d+")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True)
class Parameter:
    """One parameter of a Bot API method."""

    name: str
    types: tuple[str, ...]
    required: bool


@dataclass(frozen=True)
class Method:
    """One Bot API method: its exact name and parameters."""

    name: str
    params: Mapping[str, Parameter]
    returns: tuple[str, ...]


# Parameters Telegram still accepts although the documentation stopped listing them (replaced by
# reply_parameters and link_preview_options in Bot API 7.0); older bots and raw calls send them.
_LEGACY_PARAMETERS = {
    "reply_parameters": (
        Parameter("reply_to_message_id", ("Integer",), required=False),
        Parameter("allow_sending_without_reply", ("Boolean",), required=False),
    ),
    "link_preview_options": (Parameter("disable_web_page_preview", ("Boolean",), required=False),),
}


class BotApiSpec:
    """The committed subset of the official Bot API description, with lookups the emulator needs."""

    def __init__(self, subset: Mapping[str, Any]) -> None:
        self.version: str = subset["version"]
        self.methods: dict[str, Method] = {
            name: _method_from_subset(name, method) for name, method in subset["methods"].items()
        }
        # Telegram matches method names case-insensitively.
        self._by_lower_name = {name.lower(): method for name, method in self.methods.items()}
        self._types: dict[str, Any] = subset["types"]
        self.reaction_emoji: frozenset[str] = frozenset(subset["reaction_emoji"])

    def method(self, name: str) -> Method | None:
        """The method called `name` (any letter case), or None if the Bot API has no such method."""
        return self._by_lower_name.get(name.lower())

    def fields(self, type_name: str) -> dict[str, bool]:
        """The fields of an object type, each mapped to whether it is required."""
        if type_name not in self._types:
            raise ValueError(f"{type_name} is not in the committed spec subset; add it to TYPES_USED")
        return {name: field["required"] for name, field in self._types[type_name]["fields"].items()}

    def subtypes(self, type_name: str) -> list[str]:
        """The concrete types an abstract type such as BotCommandScope stands for."""
        self.fields(type_name)  # raises the helpful error for a type missing from the subset
        return list(self._types[type_name]["subtypes"])

    def shape_errors(self, type_name: str, obj: Mapping[str, Any]) -> list[str]:
        """Fields of `obj` the type does not have, and required fields it lacks."""
        fields = self.fields(type_name)
        unknown = [f"unknown field {name!r}" for name in obj if name not in fields]
        missing = [
            f"missing field {name!r}" for name, required in fields.items() if required and name not in obj
        ]
        return unknown + missing

    def decode_params(
        self, method: Method, raw: Mapping[str, Any], files: Mapping[str, UploadedFile]
    ) -> dict[str, Any]:
        """Check a call's parameters against the method and convert them to Python values.

        `raw` holds the form or JSON values; `files` the multipart file parts, each either a
        parameter itself or the target of an `attach://<name>` reference.
        """
        params = {**_legacy_parameters(method), **method.params}
        attached = {value.removeprefix("attach://") for value in raw.values() if _is_attach(value)}
        for name in [*raw, *files]:
            if name not in params and name not in attached:
                raise BotApiError.bad_request(f"method {method.name} has no parameter {name!r}")
        for param in params.values():
            if param.required and param.name not in raw and param.name not in files:
                raise BotApiError.bad_request(f"required parameter {param.name!r} is missing")
        decoded: dict[str, Any] = {}
        for name, param in params.items():
            if name in files:
                decoded[name] = _decode_file(param, files[name])
            elif name in raw:
                decoded[name] = _decode_value(param, raw[name], files)
        return decoded


@cache
def load_spec(path: Path = SPEC_PATH) -> BotApiSpec:
    """Load the committed subset once per process."""
    return BotApiSpec(json.loads(path.read_text(encoding="utf-8")))


def _method_from_subset(name: str, method: Mapping[str, Any]) -> Method:
    params = {
        param_name: Parameter(param_name, tuple(param["types"]), param["required"])
        for param_name, param in method["params"].items()
    }
    return Method(name=name, params=params, returns=tuple(method["returns"]))


def _legacy_parameters(method: Method) -> dict[str, Parameter]:
    legacy = [
        param for modern, olds in _LEGACY_PARAMETERS.items() if modern in method.params for param in olds
    ]
    return {param.name: param for param in legacy}


def _is_attach(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("attach://")


def _decode_file(param: Parameter, upload: UploadedFile) -> UploadedFile:
    if "InputFile" not in param.types:
        raise BotApiError.bad_request(f"parameter {param.name!r} can't be a file upload")
    return upload


def _decode_value(param: Parameter, value: Any, files: Mapping[str, UploadedFile]) -> Any:
    """Convert one form string (or JSON value) to the first of the parameter's types it fits."""
    if "InputFile" in param.types and _is_attach(value):
        attach_name = value.removeprefix("attach://")
        if attach_name not in files:
            raise BotApiError.bad_request(
                f"parameter {param.name!r} refers to a missing file part {attach_name!r}"
            )
        return files[attach_name]
    for type_name in param.types:
        converted = _convert(type_name, value)
        if converted is not None:
            return converted
    expected = " or ".join(param.types)
    raise BotApiError.bad_request(f"can't parse parameter {param.name!r}: expected {expected}, got {value!r}")


def _convert(type_name: str, value: Any) -> Any:
    """`value` as `type_name`, or None when it does not fit."""
    if type_name == "Integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return int(value) if isinstance(value, str) and _INTEGER.fullmatch(value.strip()) else None
    if type_name == "Float":
        return _to_float(value)
    if type_name == "Boolean":
        if isinstance(value, bool):
            return value
        return _BOOLEANS.get(value.lower()) if isinstance(value, str) else None
    if type_name == "String":
        return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
    if type_name == "InputFile":
        return None  # only a multipart part or an attach:// reference is an InputFile
    return _json_value(type_name, value)


def _to_float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _json_value(type_name: str, value: Any) -> Any:
    """An object or array parameter: PTB sends it as a JSON string, a JSON body sends it as is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    expected_type = list if type_name.startswith("Array of") else dict
    return value if isinstance(value, expected_type) else None
