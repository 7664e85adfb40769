"""The dual-LLM (CaMeL-style) interpreter: runs a PLLM-written Python subset, tracking metadata.

Framework-free (no Django). The program is parsed with ``ast`` and evaluated node by node (never ``exec``);
every value carries a ``Meta`` propagated by the rules below.

Entry point
-----------
::

    from relay.interpreter import run_program, Host, ToolSpec, Suspend, RunResult, InterpreterError, Limits
    from relay.meta import Meta, ValueWithMeta

    class MyHost:                                    # structurally a Host
        def call_tool(self, name, kwargs, call_index):   # kwargs: dict[str, ValueWithMeta] (JSON-safe)
            return ValueWithMeta({"temp": 21}, Meta(producers=frozenset({"weather"})))
            # or: raise Suspend()  /  raise PolicyDenied(message, record)  /  raise ToolError(message)
        def check_branch(self, meta):                # branching meta-policy
            return None                              # or a message -> status "control_flow_violation"

    result = run_program(
        "w = get_weather('Paris')\\nfinal_return_value = f\\"{w['temp']} C\\"",
        tools={"get_weather": ToolSpec("get_weather", params=["city"], required=["city"])},
        # or ToolSpec.from_json_schema(name, function_parameters_schema, description)
        host=MyHost(),
        context_vars=None,                           # e.g. {"initial_state": ValueWithMeta({...}, meta)}
        limits=None,                                 # Limits() defaults
    )
    result.status               # "success" | "suspended" | "error" | "policy_denied" | "control_flow_violation"
    result.final_return_value   # ValueWithMeta("21 C", meta with producers {"weather"}); None if never bound
    result.namespace            # {name: ValueWithMeta} JSON-safe (the namespace snapshot)
    result.variables            # the raw interpreter values (V objects), for debugging
    result.error                # InterpreterError(.kind, .message, .lineno, .meta) or None
    result.suspended            # the Suspend (with .tool_name, .kwargs, .call_index filled in)
    result.denial               # the PolicyDenied, when status == "policy_denied"
    result.steps, result.tool_calls, result.output   # statements executed, tool calls, captured print()

``run_program`` never raises. Error kinds: "syntax", "refused" (construct outside the subset; the message
names it and its line), "runtime" (uncaught program exception, e.g. ``ValueError: ...``, or a bad tool
signature such as ``tool X has no parameter y; parameters are: a, b``), "limit", "control_flow_violation",
"policy_denied", "replay", "internal".

Host contract
-------------
* ``call_tool`` is called for every tool call (client tools and internal ones such as ``parse_with_ai``,
  which is just a tool name in ``tools``), in program order, with ``call_index`` = 0-based ordinal of the
  call in this run. Positional arguments are mapped to names by ``ToolSpec.params``; argument values are
  JSON-safe copies (tuples/sets -> lists) and each argument's meta is the merged meta of the value plus the
  implicit-flow context of the call. The result is bound in the program with its meta (container elements
  read from it carry it too).
* ``ToolError`` is catchable by the program (``except Exception``/``except ToolError``); ``Suspend`` and
  ``PolicyDenied`` end the run. Time spent in the host does not count against ``wall_time_seconds``.
* ``check_branch(meta)`` is called before every branch: if/elif, ternary, for-loop iteration source,
  comprehension source and filter, assert, except handler (meta of the exception), and the short-circuited
  operands of ``and``/``or`` when a later operand may call a tool.

Suspend/resume by replay
------------------------
The interpreter is deterministic (no clock, randomness, ids or hash order: sets iterate and print sorted),
so re-running the program with the recorded results reaches the same calls in the same order.
``relay.interpreter.replay.ReplayHost(recorded, live)`` answers recorded calls and delegates or suspends on
the first new one; see that module. Parsed programs are cached by source text.

Metadata rules
--------------
* Element read = element meta | container reference meta | container structure meta; ``len``/truthiness
  /``in`` on dicts and sets use the reference + structure meta; whole-value uses (tool arguments,
  comparisons, ``str()``) use the merge of everything inside.
* Implicit flow: bindings and container mutations under an if/for/ternary/except get the condition's meta;
  after an if/for/try, every name written inside it (assigned, subscript-stored, mutated by a method) also
  gets that meta (so not taking a branch, or breaking out of a loop, leaks nothing untracked).
* Dict key metas and set element metas are merged into the container's structure meta.
"""

from relay.meta import ValueWithMeta

from .api import Host, RunResult, ToolSpec, run_program
from .errors import InterpreterError, PolicyDenied, ReplayMismatch, Suspend, ToolError
from .limits import Limits
from .replay import RecordedCall, ReplayHost

__all__ = [
    "Host",
    "InterpreterError",
    "Limits",
    "PolicyDenied",
    "RecordedCall",
    "ReplayHost",
    "ReplayMismatch",
    "RunResult",
    "Suspend",
    "ToolError",
    "ToolSpec",
    "ValueWithMeta",
    "run_program",
]
