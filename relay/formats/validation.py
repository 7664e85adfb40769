"""Request validation shared by the three APIs: the top-level fields as pydantic models, the nested parts
(messages, items, tools) with small helpers. Every failure is a :class:`RequestError` naming the field, e.g.
``"messages[0].role: field required"``, so a client learns exactly what to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from .model import DecodedRequest, RequestError, ToolDef, ToolResult, Turn
from .model import JsonObject as JsonObject  # the decoders' name for it, with Params

# ------------------------------------------------------------------------------------ top-level fields

_EXPECTED = {
    "bool_type": "a boolean",
    "float_type": "a number",
    "int_type": "an integer",
    "string_type": "a string",
    "dict_type": "an object",
    "list_type": "an array",
}

ParamsT = TypeVar("ParamsT", bound="Params")


class Params(BaseModel):
    """The top-level scalar fields of a request body (strict types; other fields are ignored here).

    Subclasses list their API's fields in the order they are checked; the first failure is reported.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(strict=True, extra="ignore", frozen=True)

    model: Annotated[str, Field(min_length=1)]
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None

    @classmethod
    def read(cls: type[ParamsT], body: Any) -> ParamsT:
        """Validate ``body``'s fields; RequestError(400) when it is not an object, else (422) naming a field."""
        if not isinstance(body, dict):
            raise RequestError("Request body must be a JSON object", 400)
        try:
            return cls.__pydantic_validator__.validate_python(body)  # type: ignore[no-any-return]
        except ValidationError as exc:
            raise RequestError(_message(exc.errors(include_url=False)[0])) from None

    def decoded(
        self,
        api: str,
        body: JsonObject,
        turns: list[Turn],
        tools: list[ToolDef],
        *,
        response_format: JsonObject | None,
        include_usage: bool = False,
        previous_response_id: str | None = None,
    ) -> DecodedRequest:
        """The decoded request: these fields, the conversation and the API's own fields."""
        program = self if isinstance(self, ProgramParams) else None
        return DecodedRequest(
            api=api,
            model=self.model,
            stream=bool(self.stream),
            tools=tools,
            turns=turns,
            body=body,
            response_format=response_format,
            previous_response_id=previous_response_id,
            include_usage=include_usage,
            user_provided_program=program.user_provided_program if program else None,
            context_vars=program.context_vars if program else None,
        )


class ProgramParams(Params):
    """The Sequrity fields of a Chat or Messages body: the client's own program and its inputs."""

    user_provided_program: str | None = None
    context_vars: JsonObject | None = None


def _message(error: ErrorDetails) -> str:
    field = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "missing" or error.get("input", 0) is None:
        return f"{field}: field required"
    if kind == "string_too_short":
        return f"{field}: must not be empty"
    if kind == "greater_than_equal":
        return f"{field}: must be >= {(error.get('ctx') or {}).get('ge')}"
    return f"{field}: must be {_EXPECTED.get(kind, 'valid')}"


# ------------------------------------------------------------------------------------- nested parts


def req_str(obj: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = False) -> str:
    """``obj[key]`` as a non-empty string (``where`` prefixes the field name in the error)."""
    value = obj.get(key)
    if value is None:
        raise RequestError(f"{where}{key}: field required")
    if not isinstance(value, str):
        raise RequestError(f"{where}{key}: must be a string")
    if not allow_empty and not value:
        raise RequestError(f"{where}{key}: must not be empty")
    return value


def opt_of(obj: Mapping[str, Any], key: str, kind: type, what: str, where: str) -> Any:
    """``obj[key]`` when it is a ``kind`` (None when absent); RequestError when it is something else."""
    value = obj.get(key)
    if value is not None and not isinstance(value, kind):
        raise RequestError(f"{where}{key}: must be {what}")
    return value


def object_list(value: Any, where: str, *, required: bool = False) -> Iterator[tuple[str, JsonObject]]:
    """A JSON array of objects -> ``(path, object)`` pairs (path like ``messages[2]``, for errors)."""
    if value is None:
        if required:
            raise RequestError(f"{where}: field required")
        return
    if not isinstance(value, list):
        raise RequestError(f"{where}: must be an array")
    for i, item in enumerate(value):
        path = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise RequestError(f"{path}: must be an object")
        yield path, item


def message_list(value: Any) -> Iterator[tuple[str, JsonObject]]:
    """The ``messages`` array of Chat and Messages: required, not empty, objects only."""
    if isinstance(value, list) and not value:
        raise RequestError("messages: must contain at least one message")
    return object_list(value, "messages", required=True)


def role_of(item: Mapping[str, Any], where: str, roles: tuple[str, ...]) -> str:
    role = item.get("role")
    if role is None:
        raise RequestError(f"{where}.role: field required")
    if role not in roles:
        raise RequestError(f"{where}.role: must be one of {', '.join(roles)}")
    return str(role)


def parts_text(
    content: Any,
    where: str,
    text_types: tuple[str, ...],
    noun: str,
    *,
    refusals: bool = False,
    bare_strings: bool = False,
) -> str:
    """String or array of parts -> the concatenated text of its text parts (other parts are ignored).

    ``noun`` names the array in the error (content parts / blocks / items); ``refusals`` counts refusal
    parts as text; ``bare_strings`` accepts plain strings among the parts (Chat)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError(f"{where}: must be a string or an array of {noun}")
    texts = []
    for i, part in enumerate(content):
        if bare_strings and isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise RequestError(f"{where}[{i}]: must be an object")
        ptype = part.get("type")
        if ptype in text_types:
            text = part.get("text")
            if not isinstance(text, str):
                raise RequestError(f"{where}[{i}].text: must be a string")
            texts.append(text)
        elif refusals and ptype == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
    return "".join(texts)


def tool_defs(tools: Any, read: Callable[[str, JsonObject], ToolDef | None]) -> list[ToolDef]:
    """The client's function tools: ``read(path, tool)`` per entry, None for tools that are not functions."""
    out = []
    for path, tool in object_list(tools, "tools"):
        tool_def = read(path, tool)
        if tool_def is not None:
            out.append(tool_def)
    return out


def tool_def(name: str, spec: Mapping[str, Any], where: str, schema_key: str) -> ToolDef:
    """A ToolDef from ``spec``'s description and ``schema_key`` (both optional, checked)."""
    params = opt_of(spec, schema_key, dict, "an object", where)
    desc = opt_of(spec, "description", str, "a string", where)
    return ToolDef(name, desc or "", params or {})


def add_tool_result(turns: list[Turn], result: ToolResult) -> None:
    """Consecutive tool results form one ``tool`` turn."""
    if turns and turns[-1].role == "tool":
        turns[-1].tool_results.append(result)
    else:
        turns.append(Turn("tool", "", [], [result]))


# ------------------------------------------------------------------------------- structured output


def normalise_json_schema_format(fmt: Any, where: str) -> JsonObject | None:
    """``{"type": "json_schema", ...}`` in any of the three API shapes -> the normalised dict.

    Accepts the client's ``schema_`` alias (control-api §8.1); ``schema`` wins when both appear.
    """
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise RequestError(f"{where}: must be an object")
    ftype = fmt.get("type")
    if ftype in (None, "text"):
        return None
    if ftype == "json_object":
        return {"type": "json_object"}
    if ftype != "json_schema":
        raise RequestError(f"{where}.type: must be one of text, json_object, json_schema")
    inner: JsonObject = fmt["json_schema"] if isinstance(fmt.get("json_schema"), dict) else fmt
    schema = inner.get("schema")
    if schema is None:
        schema = inner.get("schema_")
    if schema is not None and not isinstance(schema, dict):
        raise RequestError(f"{where}.schema: must be an object")
    name = inner.get("name") or "output"
    if not isinstance(name, str):
        raise RequestError(f"{where}.name: must be a string")
    return {
        "type": "json_schema",
        "name": name,
        "schema": schema or {},
        "strict": inner.get("strict"),
        "description": inner.get("description"),
    }


def nested_format(container: JsonObject | None, where: str) -> JsonObject | None:
    """The normalised ``format`` inside ``container`` (Messages ``output_config``, Responses ``text``)."""
    if not container or container.get("format") is None:
        return None
    return normalise_json_schema_format(container["format"], f"{where}.format")
