"""Model access for missions: providers, configuration, record and replay (no pytest in here).

Modules, in import order:

- :mod:`.transport`: :func:`~.transport.send` makes one bounded HTTP exchange (host checked at connect
  time, one overall deadline, byte cap, optional retries honouring ``Retry-After``, redirects only when
  asked and then re-checked) over :mod:`._wire`, the only importer of httpx, loaded on the first exchange.
- :mod:`.config`: ini lines -> :class:`~.config.LLMSettings`; ``resolve(provider=, model=, role=)`` ->
  :class:`~.config.Target`. Built-in loopback aliases: ``ollama``, ``shimmy``, ``llamacpp``, ``vllm``.
- :mod:`.providers`: the neutral :class:`~.providers.ChatRequest` / :class:`~.providers.ChatResponse`
  and :func:`~.providers.chat` over OpenAI chat completions or Anthropic Messages (tools and
  structured output on both).
- :mod:`.cassette`: :class:`~.cassette.Recorder`, record modes ``none``/``once``/``new_episodes``/``all``,
  keys per (request, repeat, seq), masking and a token scan before anything is written.
- :mod:`.session`: :class:`~.session.LLMSession` ties them together for one mission item and counts
  calls, tokens, cost and sources.

For an agent loop: build a ``ChatRequest`` with the history and ``tools``, call
``session.chat(request, target=..., step=..., repeat=r, seq=turn)`` once per turn (each turn is one
recorded call), run the returned ``tool_calls`` through the step machinery, append the assistant turn
(``{"role": "assistant", "content": ..., "tool_calls": [...]}``) and one ``{"role": "tool",
"tool_call_id": ..., "content": ...}`` message per result, and call again. For mission repeats: pass the
repeat number as ``repeat``; each repeat replays its own recordings.
"""

from __future__ import annotations

__all__: list[str] = []
