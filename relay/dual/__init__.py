"""Dual-LLM (CaMeL-style) orchestrator. Framework-free: no Django imports.

Entry point
===========
::

    from relay.dual import DualEngine, LLMCaller, TurnOutcome, DualError

    engine = DualEngine(config, session_id=sid, llm=llm, models=(pllm_model, qllm_model))
    outcome = await engine.advance(state, request, completed_turns=n)
    # state: the session's JSON dict ({} when new); n: the turns the session completed before this request

``config`` is the resolved config of ``relay.config.resolve_config`` (``fsm``, ``policy``, ``prompt``,
``response_format``, ``features``, ``endpoint_type``). Optional keyword arguments: ``guardrails`` (default
``"auto"``: built from ``config["features"]`` with ``relay.toolcalls.guard.guardrails_for`` when any
classifier/blocker is enabled; pass ``None`` to disable or an object with the same API), ``limits``
(``relay.interpreter.Limits``).

``llm`` is an async callable supplied by the shell::

    await llm(role, *, system: str, messages: list[{"role", "content": str}], json_schema: dict | None = None)
        -> object with .text: str, .parsed: Any | None, .usage: Usage   (relay.providers.Completion fits)

Roles used: ``pllm`` (planner, no schema), ``qllm`` (``parse_with_ai``, ``verify_hypothesis``, guardrail
LLM classifiers; always with an object schema), ``tllm`` (tool filter), ``tool_result_error_detector_llm``
(``detect_tool_errors: "llm"``). Any exception from ``llm`` ends the turn with an ``llm_error`` failure
answer (except in the tool filter / error detector / guardrail classifiers, which fall back gracefully).

``advance(state, request: DecodedRequest, *, completed_turns: int) -> TurnOutcome`` mutates ``state`` in place
(JSON-safe) and returns

* ``kind``: ``"tool_calls"`` (``tool_calls``: one ``ToolCall(id="tc-<session_id>-<uuid1>", name, arguments)``;
  arguments hold only declared parameter names, positional program arguments mapped by schema order) or
  ``"final"`` (``content`` = the result document as JSON via ``json.dumps`` defaults, or the plain value / error message
  with ``strip_response_content``; ``result`` = the document as a dict);
* ``failed``, ``error_code``, ``error_message``; ``usage`` (sum over this request's LLM calls);
  ``session_closed`` (``max_n_turns`` reached: delete the session); ``llm_calls`` (role, model,
  prompt_tokens, completion_tokens, latency_ms); ``events`` (inspector log: ``program``, ``tool_filter``,
  ``tool_call``, ``tool_result``, ``guardrail``, ``final``); ``mismatch_detected``.

The caller counts the turns (the engine stores no count): every ``"final"`` answer completes one, so the
next request's ``completed_turns`` is one more.

Raises ``DualError(status, detail)`` for request-level errors: 409 ``Message history does not match the
stored session history`` (``history_mismatch_policy: reject``); 400 ``Unexpected tool result for tool call
id '<id>'...`` / ``Missing tool result for tool call id '<id>'`` / ``The request contains no user message``;
400 with the policy compiler's detail if the stored policy does not compile.

Which request is which
----------------------
* a turn is waiting for a tool result and the request's trailing tool results answer it -> continuation
  (other ids -> 400). A user message sent after the results in the same request is ignored until the
  turn ends;
* a turn is waiting but the newest message is a user message without results -> the waiting turn is
  abandoned (not counted) and a new turn starts;
* otherwise the newest message must be a user message -> new turn (tool results without a waiting call
  -> 400).

Session state
-------------
``relay.dual.state.DualState`` (dataclasses; stored as JSON with the same readable names, metadata compactly
as ``None`` = default or ``[tags, consumers, producers]``, values with metadata as ``[value, meta]``):
``version``, ``session_meta``, ``history`` (one 16-hex digest per conversation message, for the history
check), ``tools`` (the latest declared tools; continuations may omit ``tools``),
``variables`` (left by the last successful turn: the next turns' context variables), ``past_turns`` (query,
programs and status of up to 10 earlier turns: trusted text only), ``added_policy`` (SQRT added by
``set_policy``), ``tool_result_cache`` (``force_to_cache`` results), ``turn`` (the turn in progress or None:
``TurnState`` with its attempt counters, program, recorded tool results, the ``pending_call`` waiting for the
client, the programs the planner wrote before with their feedback, and the policy-check history). The first
stored format (``"v": 1``, short keys) is still read.

Suspend / resume is by replay: the program runs from the top with ``relay.interpreter.ReplayHost``; the
recorded calls are answered from the turn's recorded results (never re-issued, no policy re-evaluation), the first new call
suspends the run; the engine then checks it (``PolicyEngine.before_call``) and either executes it
server-side (internal tools, ``force_to_cache`` hits), records the result and replays again, or returns it to
the client.

Security invariant: PLLM prompts contain the user's query (plus inlined system/developer text), tool
declarations, the PLLM's own earlier programs, context-variable names and types, and error reports with
tool-derived text removed (exception type and line only). Never a tool result.

Options (``X-Config``) as implemented
-------------------------------------
``max_n_turns`` (None = unlimited), ``max_pllm_steps``, ``max_pllm_failed_steps``,
``max_tool_calls_per_step`` (counts internal calls too), ``retry_on_policy_violation`` (policy denials and
control-flow violations), ``clear_session_meta``, ``history_mismatch_policy``,
``min_num_tools_for_filtering``, ``enabled_internal_tools``, ``strict_tool_result_parsing`` (tools never
declare output schemas here, so strict = keep text), ``detect_tool_errors`` (+ regex pattern, max length),
``tool_result_transform: codex``, ``wrap_tool_result`` (``{"ok", "value"|"error"}`` dicts),
``force_to_cache`` (session cache keyed by tool + arguments), ``enable_multistep_planning`` (namespace
carried between steps; with ``complete_turn`` enabled a turn ends only when the program calls it),
``prune_failed_steps``, ``clear_history_every_n_attempts`` are implemented, and
``n_pllm_plans`` / ``pllm_candidate_models`` (candidates drafted concurrently, candidate i on model
i mod len(models) with distinct seeds for repeats, passed to the caller as ``model=`` / ``seed=``; when
several parse, the planning model picks one with structured output),
``pllm_context_pruning`` is a no-op (values are never shown to the planner). ``disable_rllm: false`` runs the review LLM
(role ``rllm``) on each successful attempt; a rejection re-plans, and ``reduced_grammar_for_rllm_review`` decides
what the planner hears (``bool``: a flag, ``text``: a problem from a fixed vocabulary, ``none``: the review).
``X-Policy.auto_gen`` is handled by the relay before the engine runs (``relay.architectures.dual_llm``).
Policy ``arg_meta_updates`` (``x.F`` writes) are recorded with the call and applied to the variable passed as
that argument, on every replay (``RecordedResult.arg_meta``).

Parts
-----
``engine`` (the driver: which request is which, the attempt loop), ``state``, ``history``, ``toolset``
(the turn's tools, the tool filter), ``planner`` and ``feedback`` (what the planner is told), ``replay``
(running the program), ``tool_calls`` (checks, results, cache), ``internal_tools``, ``review``,
``outcomes`` (the answer; the end of a turn), ``policy``, ``guard`` (guardrails), ``llm`` (LLM calls and their
log), ``options``; ``prompts``, ``schema``, ``extract``, ``toolresults``, ``result``, ``encoding`` are the
texts and pure functions they use.
"""

from .engine import DualEngine
from .types import CompletionLike, DualError, LLMCaller, TurnOutcome

__all__ = ["CompletionLike", "DualEngine", "DualError", "LLMCaller", "TurnOutcome"]
