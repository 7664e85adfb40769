"""The planner (role ``pllm``): writes the turn's program from trusted text only.

It sees the user's query (plus inlined system/developer text), the tool declarations, its own earlier
programs with the feedback of :mod:`relay.dual.feedback`, and context-variable names and types. Never a tool
result. With ``n_pllm_plans`` it drafts several candidates and picks one (the selection step).
"""

from __future__ import annotations

import ast
import asyncio
from typing import Any

from relay.formats.model import DecodedRequest
from relay.meta import UNIVERSAL

from . import feedback as F
from . import prompts as P
from .extract import extract_clarification, extract_program
from .llm import LLMClient
from .options import EngineSettings, int_option, optional_int
from .state import MAX_PAST_TURNS, DualState, TurnState
from .toolset import ToolSet
from .types import CompletionLike, LLMFailure, RequestLog, TurnFailure

VISIBILITY_LEVELS = ("none", "basic-notext", "basic-executable", "all-executable", "all")


def _parses(program: str) -> bool:
    try:
        ast.parse(program)
    except (SyntaxError, ValueError):
        return False
    return bool(program.strip())


def _fenced(program: str) -> str:
    return f"```python\n{program}```"


class Planner:
    def __init__(self, settings: EngineSettings, llm: LLMClient, tools: ToolSet, log: RequestLog) -> None:
        self.settings = settings
        self.llm = llm
        self.tools = tools
        self.log = log

    # ------------------------------------------------------------------------------------ the query
    def query(self, request: DecodedRequest) -> str:
        """The trusted query: the newest user message, plus caller messages of the inlined roles."""
        cfg = self.settings.planner_prompt
        roles = cfg.get("query_inline_roles")
        roles = ["system", "developer"] if roles is None else list(roles)
        overrides = cfg.get("query_role_name_overrides") or {}
        include_calls = bool(cfg.get("query_include_tool_calls"))
        query = request.user_query or ""
        inlined: list[tuple[str, str]] = []
        # Only messages before the newest user message; tool results and tool arguments are never inlined
        # (they may carry tool-derived text).
        last_user = max((i for i, t in enumerate(request.turns) if t.role == "user"), default=-1)
        for t in request.turns[:last_user]:
            role = "system" if t.role == "developer" else t.role
            if t.role in roles or role in roles:
                if t.role == "assistant":
                    continue  # assistant text may quote tool results (our own final answers do)
                if t.text:
                    inlined.append((overrides.get(t.role, t.role), t.text))
            if include_calls and "assistant" in roles and t.role == "assistant" and t.tool_calls:
                inlined.append(
                    (
                        overrides.get("assistant", "assistant"),
                        "called tools: " + ", ".join(c.name for c in t.tool_calls),
                    )
                )
        return P.pllm_user_message(query, inlined)

    def visible_variables(self, session: DualState, turn: TurnState) -> list[tuple[str, str]]:
        """The context variables the planner is told about (``context_var_visibility``), with their types
        when these do not depend on tool data."""
        level = self.settings.planner_prompt.get("context_var_visibility") or "all"
        if level not in VISIBILITY_LEVELS:
            level = "all"
        if level == "none":
            return []
        out = []
        for name, item in session.context_variables(turn).items():
            tname = F.type_shown(item.meta, P.type_label(item.value))
            basic = tname in ("int", "float", "bool", "None")
            tags = item.meta.tags
            executable = tags is not UNIVERSAL and "__non_executable" not in tags
            ok = {
                "basic-notext": basic,
                "basic-executable": basic or executable,
                "all-executable": executable,
                "all": True,
            }[level]
            if ok:
                out.append((name, tname))
        return out

    # ----------------------------------------------------------------------------------- planning
    async def plan(self, session: DualState, turn: TurnState) -> None:
        """Write the turn's next program (``turn.program``). Raises ``TurnFailure("clarification_needed")``
        when the planner asks the user a question instead, and ``LLMFailure``."""
        cfg = self.settings.planner_prompt
        clarify = cfg.get("clarify_ambiguous_queries")
        clarify = True if clarify is None else bool(clarify)
        system = self._system_prompt(session, turn, clarify=clarify)
        texts = [r.text or "" for r in await self._draft(system, self._messages(session, turn))]
        if clarify:
            for t in texts:
                q = extract_clarification(t)
                if q:
                    raise TurnFailure("clarification_needed", q)
        programs = [extract_program(t) for t in texts]
        parsing = [p for p in programs if _parses(p)]
        program = parsing[0] if parsing else programs[0]
        if len(parsing) > 1 and len(set(parsing)) > 1:
            program = await self.select(turn, list(dict.fromkeys(parsing)))
        turn.program = program
        self.log.events.append(
            {"type": "program", "turn": turn.number, "attempt": turn.attempt, "program": program}
        )

    def _system_prompt(self, session: DualState, turn: TurnState, *, clarify: bool) -> str:
        settings = self.settings
        internal = list(settings.internal_tools)
        flavor = settings.planner_prompt.get("flavor") or (
            "code" if settings.endpoint == "code" else "universal"
        )
        blocks = [
            P.render_tool(P.program_name(t.name), t.description, t.parameters)
            for t in self.tools.external(session, turn)
        ]
        blocks += [P.render_internal_tool(n) for n in internal]
        system = P.pllm_system_prompt(
            flavor=flavor,
            tools_code="\n\n".join(blocks) or "# (no tools)",
            internal_tools=internal,
            clarify=clarify,
            multistep=settings.multistep,
            context_vars=self.visible_variables(session, turn),
            complete_turn="complete_turn" in internal,
        )
        if settings.fsm.get("wrap_tool_result"):
            system += (
                '\n\nEvery tool declared above returns a dict: {"ok": True, "value": <result>} on success '
                'or {"ok": False, "error": <message>} on failure; check "ok" before using "value".'
            )
        return system

    def _messages(self, session: DualState, turn: TurnState) -> list[dict[str, str]]:
        """Earlier turns (query and programs), the query, then this turn's programs with their feedback."""
        messages: list[dict[str, str]] = []
        for past in session.past_turns[-MAX_PAST_TURNS:]:
            for prog in past.programs:
                messages.append({"role": "user", "content": past.query})
                messages.append({"role": "assistant", "content": _fenced(prog)})
            if past.programs:
                messages[-1]["content"] += f"\n(turn ended: {past.status})"
        messages.append({"role": "user", "content": turn.query})
        if self.settings.multistep:
            exchanges = turn.completed_steps + turn.rejected_programs
        else:
            exchanges = turn.rejected_programs
            every = optional_int(self.settings.fsm.get("clear_history_every_n_attempts"))
            if every and every > 0:
                exchanges = exchanges[len(exchanges) - (len(exchanges) % every) :]
        for e in exchanges:
            messages.append({"role": "assistant", "content": _fenced(e.program)})
            messages.append({"role": "user", "content": e.feedback})
        # Collapse consecutive same-role messages (a past turn's note + the next user message).
        merged: list[dict[str, str]] = []
        for m in messages:
            if merged and merged[-1]["role"] == m["role"]:
                merged[-1] = {"role": m["role"], "content": merged[-1]["content"] + "\n\n" + m["content"]}
            else:
                merged.append(dict(m))
        return merged

    async def _draft(self, system: str, messages: list[dict[str, str]]) -> list[CompletionLike]:
        n_plans = max(1, int_option(self.settings.fsm.get("n_pllm_plans"), 1))
        if n_plans == 1:
            return [await self.llm.call("pllm", system, messages, None)]
        # Candidate i uses model i mod len(pllm_candidate_models); repeats of a model get distinct seeds.
        models = list(self.settings.fsm.get("pllm_candidate_models") or []) or [None]
        calls = []
        for i in range(n_plans):
            model = models[i % len(models)]
            options: dict[str, Any] = {"seed": i // len(models) + 1}
            if model is not None:
                options["model"] = model
            calls.append(self.llm.call("pllm", system, messages, None, **options))
        return list(await asyncio.gather(*calls))

    async def select(self, turn: TurnState, candidates: list[str]) -> str:
        """The selection step of ``n_pllm_plans``: the planning model picks the best candidate program.

        It sees only trusted text (the query and the candidates); a failed or unusable reply keeps the first.
        """
        listing = "\n\n".join(f"Candidate {i}:\n```python\n{p}\n```" for i, p in enumerate(candidates))
        user = (
            f"User request:\n{turn.query}\n\n{listing}\n\n"
            "Which candidate program answers the request best, correctly and with the fewest tool calls?"
        )
        try:
            c = await self.llm.call(
                "pllm", P.SELECT_SYSTEM, [{"role": "user", "content": user}], P.select_schema(len(candidates))
            )
        except LLMFailure:
            return candidates[0]
        parsed = getattr(c, "parsed", None)
        choice = parsed.get("choice") if isinstance(parsed, dict) else None
        if not isinstance(choice, int) or isinstance(choice, bool) or not 0 <= choice < len(candidates):
            choice = 0
        self.log.events.append(
            {
                "type": "plan_selected",
                "turn": turn.number,
                "attempt": turn.attempt,
                "candidates": len(candidates),
                "choice": choice,
            }
        )
        return candidates[choice]
