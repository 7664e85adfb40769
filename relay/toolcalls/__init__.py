"""What both architectures do around a tool call, written once (framework-free: no Django here).

* ``ids``: the ``tc-<session id>-<uuid1>`` ids the relay gives the tool calls it lets through, and reading
  the session back out of them;
* ``policy``: the session's SQRT policy engine (built once per policy, cached) and its checks on the calls a
  model proposes and on the results a client sends back;
* ``guard``: the guardrails on tool-call arguments and tool results, remembered per session by content hash;
* ``selection``: which tools a turn offers when there are many (``fsm.min_num_tools_for_filtering``).

Both architectures use them: single-LLM mode from ``relay.architectures.single_llm``; the dual-LLM engine
(``relay.dual``) its policy engines, ``tc-`` ids and guardrail scans (``guardrails_for``,
``ToolGuard.scan_value``). The dual engine's tool filter is its own (a TLLM prompt of its own, answers read
differently, and ``min_num_tools_for_filtering`` read as its other integer options are).
"""
