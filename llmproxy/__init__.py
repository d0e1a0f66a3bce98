"""The LLM Proxy service: an OpenAI-compatible proxy, its audit-event dispatcher and a mock upstream."""

__version__ = "0.1.0"
