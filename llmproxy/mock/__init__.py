"""The mock upstream: an OpenAI-compatible fake for development and load tests (`python -m llmproxy
mock-upstream`).

Answers are deterministic, derived from the request (same request, same content and `usage`); latency,
time to first token, per-token generation time and errors are configurable per process (flags or
`MOCK_*` environment variables: `options.py`) and per request (`X-Mock-*` headers). Every response echoes
the Authorization header it received as `X-Mock-Authorization`, so a proxy's key swap can be checked.

Per-request headers:
  X-Mock-Error: 429|500|502|503|<any 4xx/5xx>|timeout|cut   force that outcome (cut: the answer
                              stops halfway and the connection closes)
  X-Mock-Latency-Ms: N        response time of an answer generated at once (embeddings, models, errors);
                              a completion's time to first token unless X-Mock-TTFT-Ms is given
  X-Mock-TTFT-Ms: N           time to first token of a completion
  X-Mock-Inter-Token-Ms: N    generation time per further token (the gap between stream chunks)
  X-Mock-Tokens: N            number of completion tokens

`GET /mock/stats` returns request counts by path, status and Authorization value.

Modules: `latency` (distributions), `options` (the flag table), `errors` (error answers and injected
failures), `text` (deterministic content), `app` (the ASGI app), `server` (the process).
"""
