"""``PolicyEngine``: one session's policy (SQRT or Cedar) plus the ``X-Policy`` presets and mode.

Processing of one tool call follows the SQRT processing order (dual-LLM and single-LLM); verdicts are combined
per policy, then across policies. See the package docstring for the exact rules implemented.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from relay.meta import DEFAULT_META, UNIVERSAL, Meta, ValueWithMeta, make_set, merge_all, set_intersect

from .cedar import CedarPolicy
from .compiler import NO_RESULT_META, CompiledTool, Env
from .policy import SqrtPolicy

VERDICTS = ("hard_allowed", "soft_allowed", "soft_denied", "hard_denied")
MODES = ("standard", "strict", "custom")
NON_EXECUTABLE_TAG = "__non_executable"
LLM_BLOCKED_TAG = "__llm_blocked"
PARSE_WITH_AI = "parse_with_ai"

DEFAULT_BRANCHING = {"mode": "deny", "producers": [], "tags": [], "consumers": []}
DEFAULT_PRESETS: dict[str, Any] = {
    "default_allow": True,
    "default_allow_enforcement_level": "soft",
    "enable_non_executable_memory": True,
    "enable_llm_blocked_tag": True,
    "llm_blocked_tag_enforcement_level": "hard",
    "branching_meta_policy": DEFAULT_BRANCHING,
}


@dataclass
class CallDecision:
    """Outcome of the session-before and check phases of one tool call."""

    verdict: str
    allowed: bool
    session_meta: Meta
    record: dict[str, Any]
    denial_message: str | None
    arg_meta_updates: dict[str, Meta] = field(default_factory=dict)
    # The record entry ({policy, rule, enforcement, description[, error]}) of the rule that decided the final
    # verdict: the first hard deny, else the first hard allow, else the first soft rule of the top priority
    # agreeing with the verdict, else the default policy. What a dry-run or an inspector names as "the rule".
    decided_by: dict[str, Any] | None = None


@dataclass
class ResultDecision:
    """Outcome of the result and session-after phases of one tool call."""

    result_meta: Meta
    session_meta: Meta
    arg_meta_updates: dict[str, Meta] = field(default_factory=dict)
    record: dict[str, Any] | None = None


def _level(value: Any, default: str) -> str:
    if value is None:
        return default
    text = str(value).lower()
    if text.startswith("hard"):
        return "hard"
    if text.startswith("soft"):
        return "soft"
    raise ValueError(f"enforcement level must be 'hard' or 'soft', not {value!r}")


def normalize_presets(presets: dict[str, Any] | None) -> dict[str, Any]:
    """Fill in the X-Policy document's defaults (a missing or null field keeps its default)."""
    out = dict(DEFAULT_PRESETS)
    for key, value in (presets or {}).items():
        if value is not None and key in out:
            out[key] = value
    out["default_allow"] = bool(out["default_allow"])
    out["enable_non_executable_memory"] = bool(out["enable_non_executable_memory"])
    out["enable_llm_blocked_tag"] = bool(out["enable_llm_blocked_tag"])
    out["default_allow_enforcement_level"] = _level(out["default_allow_enforcement_level"], "soft")
    out["llm_blocked_tag_enforcement_level"] = _level(out["llm_blocked_tag_enforcement_level"], "hard")
    bmp = dict(DEFAULT_BRANCHING)
    for key, value in (out["branching_meta_policy"] or {}).items():
        if value is not None and key in bmp:
            bmp[key] = value
    if bmp["mode"] not in ("allow", "deny"):
        raise ValueError(f"branching_meta_policy.mode must be 'allow' or 'deny', not {bmp['mode']!r}")
    for key in ("producers", "tags", "consumers"):
        bmp[key] = sorted(set(bmp[key] or ()))
    out["branching_meta_policy"] = bmp
    return out


def _entry(
    policy: str, rule: str, enforcement: str, description: str | None, error: str | None = None
) -> dict[str, Any]:
    e = {"policy": policy, "rule": rule, "enforcement": enforcement, "description": description}
    if error is not None:
        e["error"] = error
    return e


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _first_firing(fns: tuple[Callable[[Env], bool], ...], env: Env) -> tuple[int, BaseException | None]:
    """Index of the first rule whose condition holds (-1 if none), or the index of a rule that raised."""
    i = -1
    try:
        for i, fn in enumerate(fns):  # noqa: B007 - i is read in the handler
            if fn(env):
                return i, None
    except Exception as exc:  # noqa: BLE001 - fail closed (§6.7)
        return i, exc
    return -1, None


def evaluate_tool_policy(p: CompiledTool, env: Env) -> tuple[str, dict[str, Any]] | tuple[None, None]:
    """Per-policy verdict of §6.11 (None = abstain) and the record entry of the deciding rule."""
    for rules, fns, verdict in (
        (p.hard_deny, p.hard_deny_fns, "hard_denied"),
        (p.hard_allow, p.hard_allow_fns, "hard_allowed"),
        (p.soft, p.soft_fns, None),
    ):
        if not fns:
            continue
        i, exc = _first_firing(fns, env)
        if exc is not None:
            r = rules[i]
            return "hard_denied", _entry(p.display, r.text, "hard", r.description, _error_text(exc))
        if i >= 0:
            r = rules[i]
            if verdict is None:
                verdict = "soft_allowed" if r.verdict == "allow" else "soft_denied"
            return verdict, r.entry(p.display)
    if p.has_allow:
        level = "hard" if p.has_hard_allow else "soft"
        rule = "implicit deny: no allow rule fired (`allow when P` means allowed only when P)"
        return f"{level}_denied", _entry(p.display, rule, level, p.description)
    return None, None


class PolicyEngine:
    """Evaluates tool calls of one session against a compiled policy (or none) and the presets.

    ``PolicyEngine(policy_or_None, *, presets=None, mode="standard", fail_fast=None, dual_llm=True)``
    """

    def __init__(
        self,
        policy: SqrtPolicy | CedarPolicy | None,
        *,
        presets: dict[str, Any] | None = None,
        mode: str = "standard",
        fail_fast: bool | None = None,
        dual_llm: bool = True,
    ) -> None:
        if policy is not None and not isinstance(policy, (SqrtPolicy, CedarPolicy)):
            raise TypeError("policy must come from compile_policy() (or be None)")
        mode = mode or "standard"
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.policy = policy
        self.presets = normalize_presets(presets)
        self.mode = mode
        self.fail_fast = True if fail_fast is None else bool(fail_fast)
        self.dual_llm = bool(dual_llm)
        self._sqrt = policy if isinstance(policy, SqrtPolicy) else None
        self._cedar = policy if isinstance(policy, CedarPolicy) else None
        default_level = self.presets["default_allow_enforcement_level"]
        self._default_verdict = f"{default_level}_{'allowed' if self.presets['default_allow'] else 'denied'}"
        self._default_entry = _entry(
            "default_allow",
            f"default_allow = {'true' if self.presets['default_allow'] else 'false'}",
            default_level,
            "no policy decided this tool call; the default policy applies",
        )
        self._non_exec = self.dual_llm and self.presets["enable_non_executable_memory"]

    # ------------------------------------------------------------ helpers
    def _args(self, args: dict[str, Any] | None) -> dict[str, ValueWithMeta]:
        out: dict[str, ValueWithMeta] = {}
        for k, v in (args or {}).items():
            if not isinstance(v, ValueWithMeta):
                v = ValueWithMeta(v)  # single-LLM (§6.12): the default meta...
            out[k] = v  # ...plus whatever tags the relay's guardrails found in the argument
        return out

    def _matching(self, tool_name: str) -> tuple[CompiledTool, ...]:
        return self._sqrt.match(tool_name) if self._sqrt is not None else ()

    def _presets_verdicts(
        self, tool_name: str, args: dict[str, ValueWithMeta]
    ) -> Iterator[tuple[str, int, dict[str, Any]]]:
        if self.presets["enable_llm_blocked_tag"] and tool_name == PARSE_WITH_AI:
            for a in args.values():
                if LLM_BLOCKED_TAG in a.meta.tags:
                    level = self.presets["llm_blocked_tag_enforcement_level"]
                    yield (
                        f"{level}_denied",
                        0,
                        _entry(
                            "enable_llm_blocked_tag",
                            f"deny {PARSE_WITH_AI} when an argument carries the tag {LLM_BLOCKED_TAG}",
                            level,
                            "preset: data tagged __llm_blocked must not be parsed by an LLM",
                        ),
                    )
                    break
        if self.mode == "strict" and self.dual_llm:
            for name, a in args.items():
                c = a.meta.consumers
                if c is not UNIVERSAL and tool_name not in c:
                    yield (
                        "hard_denied",
                        0,
                        _entry(
                            "strict_mode",
                            f"deny when an argument's consumers exclude the tool (argument '{name}')",
                            "hard",
                            "mode strict: every argument's consumers must be universal or contain the tool id",
                        ),
                    )
                    break

    @staticmethod
    def _args_record(args: dict[str, ValueWithMeta]) -> dict[str, Any]:
        return {k: {"value": v.value, "meta": v.meta.to_json()} for k, v in args.items()}

    # ------------------------------------------------------------ phases 1-2
    def before_call(  # noqa: C901 - the phases of §6.10 in order, kept in one function on the hot path
        self, tool_name: str, args: dict[str, Any], session_meta: Meta, control: Meta | None = None
    ) -> CallDecision:
        """Session-before phase, then the check phase (§6.10 steps 1-2). ``control``: the dual-LLM
        program's implicit-flow context at the call (see compiler.Env)."""
        args = self._args(args)
        env = Env(
            args,
            session_meta if session_meta is not None else DEFAULT_META,
            NO_RESULT_META,
            None,
            self.dual_llm,
            None if control is None or control == DEFAULT_META else control,
        )
        policies = self._matching(tool_name)
        allowed: list[dict[str, Any]] = []
        denied: list[dict[str, Any]] = []
        hard_denied = hard_allowed = False
        soft: list[tuple[int, bool]] = []  # (priority, is_deny)
        deciders: list[tuple[str, int, dict[str, Any]]] = []  # (verdict, priority, entry) in evaluation order
        verdict: str | None  # of a preset, of Cedar, of one policy (None = abstain)
        entry: dict[str, Any] | None

        for p in policies:
            for st in p.before:
                try:
                    st.fn(env)
                except Exception as exc:  # noqa: BLE001 - fail closed
                    denied.append(
                        _entry(
                            p.display,
                            f"session before (line {st.line})",
                            "hard",
                            st.description,
                            _error_text(exc),
                        )
                    )
                    deciders.append(("hard_denied", 0, denied[-1]))
                    hard_denied = True

        def take(verdict: str, priority: int, entry: dict[str, Any]) -> bool:
            nonlocal hard_denied, hard_allowed
            deciders.append((verdict, priority, entry))
            if verdict.endswith("denied"):
                denied.append(entry)
            else:
                allowed.append(entry)
            if verdict == "hard_denied":
                hard_denied = True
                return self.fail_fast
            if verdict == "hard_allowed":
                hard_allowed = True
            else:
                soft.append((priority, verdict == "soft_denied"))
            return False

        stop = hard_denied and self.fail_fast
        if not stop:
            for verdict, prio, entry in self._presets_verdicts(tool_name, env.args):
                if take(verdict, prio, entry):
                    stop = True
                    break
        if not stop and self._cedar is not None:
            verdict, entries = self._cedar.evaluate(tool_name, env.args, env.session)
            if verdict is not None:
                if take(verdict, 0, entries[0]):
                    stop = True
                (denied if verdict.endswith("denied") else allowed).extend(entries[1:])
        if not stop:
            for p in policies:
                if not p.has_rules:
                    continue
                verdict, entry = evaluate_tool_policy(p, env)
                # the entry is set whenever the verdict is (the tuple is unpacked: no indexing on this path)
                if verdict is not None and take(verdict, p.priority, entry):  # type: ignore[arg-type]
                    break

        if hard_denied:
            final = "hard_denied"
        elif hard_allowed:
            final = "hard_allowed"
        elif soft:
            top = max(pr for pr, _ in soft)
            final = "soft_denied" if any(d for pr, d in soft if pr == top) else "soft_allowed"
        else:
            final = self._default_verdict
            (allowed if final.endswith("allowed") else denied).append(dict(self._default_entry))
            deciders.append((final, 0, self._default_entry))

        is_allowed = final in ("hard_allowed", "soft_allowed")
        record = {
            "tool_name": tool_name,
            "args": self._args_record(env.args),
            "final_verdict": final,
            "allowed": allowed,
            "denied": denied,
        }
        message = None if is_allowed else self.denial_message(tool_name, env.args, allowed, denied, final)
        return CallDecision(
            final,
            is_allowed,
            env.session,
            record,
            message,
            dict(env.arg_updates),
            _deciding_entry(final, deciders),
        )

    @staticmethod
    def denial_message(
        tool_name: str,
        args: dict[str, Any],
        allowed: list[dict[str, Any]],
        denied: list[dict[str, Any]],
        final: str,
    ) -> str:
        context = {
            "tool_name": tool_name,
            "args": {
                k: {"value": v.value, "meta": v.meta.to_json(), "value_type": type(v.value).__name__}
                for k, v in args.items()
            },
            "checking_results": {"allowed": allowed, "denied": denied, "final_verdict": final},
            "final_verdict": final,
        }
        return f"Tool call to '{tool_name}' is denied by argument checking policies. Context: {context!r}"

    # ------------------------------------------------------------ phases 5-7
    def initial_result_meta(self, args: dict[str, Any]) -> Meta:
        """Merge of the argument metas, plus ``__non_executable`` when that preset is on (§6.10 step 5)."""
        if not self.dual_llm:
            return DEFAULT_META
        meta = merge_all(
            a.meta if isinstance(a, ValueWithMeta) else DEFAULT_META for a in (args or {}).values()
        )
        if self._non_exec:
            meta = meta.with_tags(NON_EXECUTABLE_TAG)
        return meta

    def after_call(
        self, tool_name: str, args: dict[str, Any], result: ValueWithMeta | object, session_meta: Meta
    ) -> ResultDecision:
        """Result blocks, then session-after blocks (§6.10 steps 6-7). ``result.meta`` is the initial meta."""
        args = self._args(args)
        if not isinstance(result, ValueWithMeta):
            result = ValueWithMeta(result)
        env = Env(
            args,
            session_meta if session_meta is not None else DEFAULT_META,
            result.meta,
            result.value,
            self.dual_llm,
        )
        policies = self._matching(tool_name)
        errors: list[dict[str, Any]] = []
        for phase, attr in (("result", "result"), ("session after", "after")):
            for p in policies:
                for st in getattr(p, attr):
                    try:
                        st.fn(env)
                    except Exception as exc:  # noqa: BLE001
                        errors.append(
                            {"policy": p.display, "phase": phase, "line": st.line, "error": _error_text(exc)}
                        )
        record = None
        if errors:
            record = {"tool_name": tool_name, "phase": "after_call", "errors": errors}
        return ResultDecision(env.result, env.session, dict(env.arg_updates), record)

    # ------------------------------------------------------------ branching (§9.4, §9.6)
    def check_branch(self, meta: Meta) -> str | None:
        """A ``Control flow violation`` message when ``meta`` may not influence control flow, else None."""
        if not self.dual_llm or self.mode == "standard":
            return None
        checks = [self.presets["branching_meta_policy"]]
        if self.mode == "strict":
            checks.append({"mode": "deny", "producers": [], "tags": [NON_EXECUTABLE_TAG], "consumers": []})
        for bmp in checks:
            problem = _branch_violation(bmp, meta)
            if problem:
                return (
                    "Control flow violation detected during program execution: "
                    f"{problem} (branching_meta_policy mode '{bmp['mode']}')."
                )
        return None


def _deciding_entry(final: str, deciders: list[tuple[str, int, dict[str, Any]]]) -> dict[str, Any] | None:
    """The entry that produced ``final`` (see ``CallDecision.decided_by``)."""
    candidates = [(prio, entry) for verdict, prio, entry in deciders if verdict == final]
    if not candidates:
        return None
    if final.startswith("soft"):
        top = max(prio for prio, _ in candidates)
        candidates = [c for c in candidates if c[0] == top]
    return dict(candidates[0][1])


def _branch_violation(bmp: dict[str, Any], meta: Meta) -> str | None:
    for dim in ("producers", "tags", "consumers"):
        listed = bmp.get(dim) or []
        if not listed:
            continue
        value = getattr(meta, dim)
        allowed_set = make_set(listed)
        if bmp["mode"] == "deny":
            hit = set_intersect(value, allowed_set)
            if hit is UNIVERSAL or hit:
                shown = ["*"] if hit is UNIVERSAL else sorted(hit)
                return f"the condition's {dim} {shown} are prohibited in branch conditions"
        else:
            if value is UNIVERSAL:
                ok = allowed_set is UNIVERSAL
            else:
                ok = allowed_set is UNIVERSAL or value <= allowed_set
            if not ok:
                shown = ["*"] if value is UNIVERSAL else sorted(value - allowed_set)
                return f"the condition's {dim} {shown} are not permitted in branch conditions"
    return None
