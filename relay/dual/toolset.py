"""The tools a turn's programs may call: the client's declared tools (as the tool filter narrowed them) and
the enabled internal tools, with the names programs use for them."""

from __future__ import annotations

from relay.formats.model import ToolDef
from relay.interpreter import ToolSpec

from . import prompts as P
from .llm import LLMClient, parsed_reply
from .options import EngineSettings, int_option
from .state import DeclaredTool, DualState, TurnState
from .types import LLMFailure, RequestLog

DEFAULT_MIN_TOOLS_FOR_FILTERING = 10


class ToolSet:
    def __init__(self, settings: EngineSettings, llm: LLMClient, log: RequestLog) -> None:
        self.settings = settings
        self.llm = llm
        self.log = log
        self._specs_for: tuple[TurnState, list[DeclaredTool], tuple[str, ...]] | None = None
        self._specs: tuple[dict[str, ToolSpec], dict[str, str]] = ({}, {})

    @staticmethod
    def store(session: DualState, tools: list[ToolDef]) -> None:
        """Remember the request's tool declarations (a request without tools keeps the earlier ones)."""
        if tools:
            session.tools = [DeclaredTool(t.name, t.description or "", t.parameters or {}) for t in tools]

    def external(self, session: DualState, turn: TurnState) -> list[DeclaredTool]:
        """The client's tools the turn may use (declared tools named like internal ones are shadowed)."""
        tools = [t for t in session.tools if t.name not in self.settings.internal_tools]
        if turn.allowed_tools is not None:
            keep = set(turn.allowed_tools)
            tools = [t for t in tools if t.name in keep]
        return tools

    def specs(self, session: DualState, turn: TurnState) -> tuple[dict[str, ToolSpec], dict[str, str]]:
        """``{program name: ToolSpec}`` of every tool the turn may call, and ``{program name: tool name}``.
        Computed once per turn and declaration (each replay asks again)."""
        allowed = tuple(turn.allowed_tools or ())
        known = self._specs_for
        if known is not None and known[0] is turn and known[1] is session.tools and known[2] == allowed:
            return self._specs
        specs: dict[str, ToolSpec] = {}
        names: dict[str, str] = {}
        for tool in self.external(session, turn):
            pname = P.program_name(tool.name)
            specs[pname] = ToolSpec.from_json_schema(pname, tool.parameters, tool.description)
            names[pname] = tool.name
        for name in self.settings.internal_tools:
            _, params, required, doc = P.INTERNAL_TOOL_DOCS[name]
            specs[name] = ToolSpec(name, list(params), list(required), doc)
            names[name] = name
        self._specs_for = (turn, session.tools, allowed)
        self._specs = (specs, names)
        return specs, names

    async def filter_for_turn(self, session: DualState, turn: TurnState) -> None:
        """The tool filter (role ``tllm``): with many tools, ask which ones the request needs. It sees only
        the query and the declarations; a failed or unusable answer keeps every tool."""
        tools = self.external(session, turn)
        threshold = int_option(
            self.settings.fsm.get("min_num_tools_for_filtering"), DEFAULT_MIN_TOOLS_FOR_FILTERING
        )
        if not tools or len(tools) < threshold:
            return
        cfg = self.settings.prompt.get("tllm") or {}
        add_desc = cfg.get("add_tool_description")
        user = P.tllm_user_message(
            turn.query,
            [(t.name, t.description, t.parameters) for t in tools],
            add_description=True if add_desc is None else bool(add_desc),
            add_schema=bool(cfg.get("add_tool_input_schema")),
        )
        try:
            c = await self.llm.call("tllm", P.TLLM_SYSTEM, [{"role": "user", "content": user}], P.TLLM_SCHEMA)
        except LLMFailure:
            return
        parsed = parsed_reply(c)
        names = (
            parsed.get("tools") if isinstance(parsed, dict) else parsed if isinstance(parsed, list) else None
        )
        if not isinstance(names, list):
            return
        known = {t.name for t in tools}
        chosen = [n for n in names if isinstance(n, str) and n in known]
        if chosen:
            order = [t.name for t in tools]
            turn.allowed_tools = sorted(set(chosen), key=order.index)
            self.log.events.append({"type": "tool_filter", "turn": turn.number, "tools": turn.allowed_tools})
