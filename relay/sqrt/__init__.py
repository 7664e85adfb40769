"""SQRT, the tool-call policy language (not a square root): parser, compiler and engine. Framework-free.

Public API
==========

``compile_policy(source: str, language: str = "sqrt") -> SqrtPolicy | CedarPolicy``
    Parse, check and compile a policy. Cached by the SHA-256 of (language, text): a policy is compiled once
    (errors are cached too). ``language="cedar"`` compiles a Cedar policy set through ``cedarpy``.
    Raises ``PolicyCompileError``.

``PolicyCompileError(message, line, column, source_line)`` (a ``ValueError``)
    ``str(err)`` is one sentence: ``line 3, column 17: unexpected '}' — expected one of: 'always', 'when'
    (in: `    must deny }`)``. Attributes ``.message .line .column .source_line``; ``.as_detail()`` gives the
    text for an HTTP 400 ``detail`` (message, line, column, source line and a caret); ``.as_dict()``.
    Raised for syntax errors (the language accepted is the one of ``sequrity.sqrt.validate``), unknown or
    cyclic ``let`` names, a let of the wrong kind (set where a condition is expected...), invalid regexes
    and datetimes, writing ``@result.F`` in ``session before``, and regex/wildcard/number/domain sets used
    in set algebra or assigned to metadata.

``PolicyEngine(policy_or_None, *, presets: dict | None = None, mode: str = "standard",
fail_fast: bool | None = None, dual_llm: bool = True)``
    ``presets`` is the ``X-Policy.presets`` object (missing/null fields take their
    defaults); ``fail_fast=None`` means true; ``mode`` is ``standard`` / ``strict`` / ``custom``.

    ``before_call(tool_name, args: dict[str, ValueWithMeta], session_meta: Meta) -> CallDecision``
        session-before blocks, then the checks. ``CallDecision``: ``.verdict`` (one of ``VERDICTS``),
        ``.allowed``, ``.session_meta`` (after session-before; keep it even when denied), ``.record`` (the
        ``policy_check_history`` entry: ``tool_name``, ``args`` {name: {value, meta}}, ``final_verdict``,
        ``allowed``/``denied`` lists of {policy, rule, enforcement, description[, error]}),
        ``.denial_message`` (None when allowed, else ``Tool call to '<tool>' is denied by argument checking
        policies. Context: {...}`` with each argument's value/meta/value_type and ``'final_verdict'``),
        ``.arg_meta_updates`` (``x.F`` writes made by session-before blocks; dual-LLM only), ``.decided_by``
        (the entry of the rule that decided the final verdict: the first hard deny, else the first hard allow,
        else the first soft rule of the top priority agreeing with the verdict, else the default policy).
    ``after_call(tool_name, args, result: ValueWithMeta, session_meta) -> ResultDecision``
        ``result.meta`` is the INITIAL result meta (see ``initial_result_meta`` and
        ``unwrap_manual_result``). Runs result blocks, then session-after blocks. ``ResultDecision``:
        ``.result_meta``, ``.session_meta``, ``.arg_meta_updates`` ({arg name: new Meta} for ``x.F``
        targets, dual-LLM only), ``.record`` (None, or {tool_name, phase, errors} when an update failed).
    ``initial_result_meta(args) -> Meta``: merge of the argument metas, plus ``__non_executable`` when
        dual-LLM and ``enable_non_executable_memory``; the default meta in single-LLM.
    ``check_branch(meta) -> str | None``: mode ``custom``: ``branching_meta_policy``; mode ``strict``: that
        policy plus an implicit deny of the ``__non_executable`` tag; ``standard`` and single-LLM: never.
        Returns a message containing ``Control flow violation`` or None.

``unwrap_manual_result(decoded, initial_meta) -> (value, meta)``
    The manual metadata wrapper (``is_sequrity_var`` exactly true; ``combine_meta`` merge/replace/ignore, default merge).
    Not a wrapper -> returned unchanged. Malformed wrapper -> ``ManualWrapperError`` (a ``ValueError``).

``VERDICTS = ("hard_allowed", "soft_allowed", "soft_denied", "hard_denied")``

Combination rules implemented
===================================================

* Order: session-before blocks of every matching policy (program order, member order, statement
  order; committed immediately, kept when the call is denied) -> checks -> [tool runs] -> result blocks
  -> session-after blocks. Matching: exact id, or a full match of a regex id; shorthands are policies.
* Per-policy verdict: a firing hard deny -> hard_denied; else a firing hard allow -> hard_allowed;
  else the first firing soft rule in declaration order; else, if the policy has any allow rule, implicit
  denial (hard_denied when it has a hard allow rule, else soft_denied); else it abstains. A runtime error in
  a rule makes that rule a hard deny (fail closed; reported with an ``error`` key).
* Final verdict: any hard_denied -> hard_denied; else any hard_allowed -> hard_allowed; else among the
  soft verdicts those of the highest priority decide (soft_denied if any of them denies); else the default
  (``default_allow`` at ``default_allow_enforcement_level``). Presets are policies of priority 0,
  evaluated first, then user policies in program order; ``fail_fast`` stops at the first hard_denied.
* Presets: ``enable_llm_blocked_tag`` denies ``parse_with_ai`` at ``llm_blocked_tag_enforcement_level``
  when an argument's tags hold ``__llm_blocked``; ``enable_non_executable_memory`` (dual only) adds
  ``__non_executable`` in ``initial_result_meta``; ``branching_meta_policy`` via ``check_branch``. Mode
  ``strict`` (dual only) additionally hard-denies a call when an argument's consumers are neither universal
  nor contain the tool id.
* Single-LLM (``dual_llm=False``): arguments get the default meta, ``x.F`` writes have no effect,
  no ``__non_executable``, no branching policy; default_allow and llm-blocked presets honoured.

Linting: ``relay.sqrt.lint.lint_files(paths, out)`` prints ``FILE: ok`` / ``FILE:LINE:COL: message`` (used by
``manage.py sqrt_check FILE...``; also ``python -m relay.sqrt.lint FILE...``).

Deviations and decisions: the accepted syntax is that of ``sequrity.sqrt.validate`` (LALR fast path; an
Earley fallback reproduces the reference's scannerless quirks such as ``letx = {};`` for programs of at most
4000 characters). Invalid regexes and datetimes are compile errors although the reference accepts them
syntactically. Regexes and wildcards are compiled by ``relay.regex`` (RE2, linear-time matching): what RE2
cannot do (backreferences, lookaround, atomic groups, possessive quantifiers...) is a compile error at the
offending construct; ``\\d``, ``\\w``, ``\\s``, ``\\b`` are ASCII classes. Wildcards are plain globs, so
``w"*@university.edu"`` does not match ``x@sub.university.edu``. A backslash in a wildcard makes the next character literal.

Cedar (``language="cedar"``): see ``relay.sqrt.cedar`` — principal ``Agent::"session"``, action
``Action::"<tool>"``, resource ``Tool::"<tool>"``, context ``{tool, args, arg_tags, arg_producers,
arg_consumers, session_tags, session_producers, session_consumers}``; Allow -> hard_allowed, Deny (or any
evaluation error) -> hard_denied; an empty Cedar program abstains (the presets/default decide).
"""

from .cedar import CedarPolicy
from .engine import DEFAULT_PRESETS, VERDICTS, CallDecision, PolicyEngine, ResultDecision, normalize_presets
from .errors import ManualWrapperError, PolicyCompileError
from .policy import SqrtPolicy, compile_policy
from .wrapper import unwrap_manual_result

__all__ = [
    "DEFAULT_PRESETS",
    "VERDICTS",
    "CallDecision",
    "CedarPolicy",
    "ManualWrapperError",
    "PolicyCompileError",
    "PolicyEngine",
    "ResultDecision",
    "SqrtPolicy",
    "compile_policy",
    "normalize_presets",
    "unwrap_manual_result",
]
