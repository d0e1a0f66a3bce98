"""What the fake says: words, token counts and embeddings derived from the request, so that the same
request always gets the same answer and the same `usage`."""

from __future__ import annotations

import hashlib
import math
import struct
from array import array
from typing import Any

VOCABULARY = tuple(
    " ".join(
        [
            "the quick brown fox jumps over a lazy dog while proxies cache answers and tokens",
            "stream through load balancers to clients that measure latency under steady pressure",
            "databases keep audit events redis holds streams and every request finds its way home",
            "models reply with words chosen from this small list so tests can predict each answer",
        ]
    ).split(" ")
)


def words_for(digest: bytes, count: int) -> list[str]:
    """`count` words picked deterministically from the digest of the request."""
    size = len(VOCABULARY)
    return [VOCABULARY[(digest[i % len(digest)] + i * 7) % size] for i in range(count)]


def text_tokens(text: str) -> int:
    """A stable token estimate: one token per four characters, as OpenAI's rule of thumb."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def message_text(content: Any) -> str:
    """The text of a chat message's content, which is a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def prompt_usage(messages: list[Any]) -> int:
    """Prompt tokens of a chat request: 3 per message plus its text, plus 3 to prime the reply."""
    total = 3
    for message in messages:
        if isinstance(message, dict):
            total += 3 + text_tokens(message_text(message.get("content")))
    return total


def embedding_vector(text: bytes, dim: int) -> array[float]:
    """A unit vector of `dim` float32 derived from the input's hash."""
    raw = hashlib.shake_128(text).digest(dim * 2)
    values = struct.unpack(f"<{dim}h", raw)
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return array("f", (v / norm for v in values))
