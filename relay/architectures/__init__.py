"""The two architectures a session runs, each the ``architecture`` stage of ``relay.lifecycle.chain``:

* ``single_llm``: the request goes to the provider in its own API format; the relay polices the tool calls
  the model proposes and the tool results the client sends back;
* ``dual_llm``: the Django side of the dual-LLM engine (``relay.dual``): its LLM calls through the providers,
  its answers encoded in the API's format, its steps logged.

What both do around a tool call is in ``relay.toolcalls``; how answers leave, in ``relay.lifecycle.answers``.
"""
