"""Policy generation: an LLM writes a SQRT policy from a description and tool definitions.

* ``generator``: the engine, framework-free (request validation, the prompt, compile-and-retry);
* ``endpoint``: ``POST /control/policy-gen/{provider?}/v1/generate``, the last stage of its chain.

The dashboard's "generate a policy" button (``apikeys.policy_generation``) and the dual-LLM ``auto_gen``
(``relay.architectures.dual_llm``) use the same engine.
"""
