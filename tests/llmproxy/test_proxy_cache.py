"""The HTTP cache in Redis: opt-in POST caching, GET by the upstream's max-age, bypass, tenant isolation,
purge, and Redis errors as misses."""

from __future__ import annotations

import uuid

import requests

from llmproxy.httpcache import request_policy, response_ttl
from tests.llmproxy.conftest import CHAT, Proxy, RedisServer, Stack, metrics


def cached_call(
    proxy: Proxy, token: str, prompt: str, cache_control: str = "public, max-age=60"
) -> requests.Response:
    body = {**CHAT, "messages": [{"role": "user", "content": prompt}]}
    return proxy.call(token, body=body, headers={"Cache-Control": cache_control})


def test_post_is_cached_only_when_the_client_asks(proxy: Proxy) -> None:
    token = proxy.token()
    prompt = f"cache me {uuid.uuid4()}"
    first = cached_call(proxy, token, prompt)
    assert first.status_code == 200
    assert first.headers["x-proxy-cache"] == "miss"
    assert "fwd=miss" in first.headers["cache-status"]
    second = cached_call(proxy, token, prompt)
    assert second.headers["x-proxy-cache"] == "hit"
    assert "hit" in second.headers["cache-status"]
    assert second.content == first.content
    assert second.headers["content-length"] == str(len(second.content))  # one header, the right length
    assert second.headers["x-request-id"] != first.headers["x-request-id"]

    plain = proxy.call(token, body={**CHAT, "messages": [{"role": "user", "content": prompt}]})
    assert plain.headers["x-proxy-cache"] == "bypass"
    no_cache = cached_call(proxy, token, prompt, cache_control="no-cache")
    assert no_cache.headers["x-proxy-cache"] == "bypass"
    counters = metrics(proxy)
    assert counters["cache_hits"] >= 1 and counters["cache_stores"] >= 1 and counters["cache_bypass"] >= 2


def test_get_without_max_age_from_upstream_is_not_stored(proxy: Proxy) -> None:
    token = proxy.token()
    # The mock's /v1/models sends no Cache-Control: nothing may be stored, every call is a miss.
    first = proxy.call(token, "/v1/models", body=None)
    second = proxy.call(token, "/v1/models", body=None)
    assert (first.headers["x-proxy-cache"], second.headers["x-proxy-cache"]) == ("miss", "miss")


def test_tenants_never_share_cache_entries(proxy: Proxy) -> None:
    token_a, token_b = proxy.token(), proxy.token()
    prompt = f"tenant {uuid.uuid4()}"
    assert cached_call(proxy, token_a, prompt).headers["x-proxy-cache"] == "miss"
    assert cached_call(proxy, token_a, prompt).headers["x-proxy-cache"] == "hit"
    assert cached_call(proxy, token_b, prompt).headers["x-proxy-cache"] == "miss"


def test_purge_removes_entries(proxy: Proxy) -> None:
    token = proxy.token()
    prompt = f"purge {uuid.uuid4()}"
    cached_call(proxy, token, prompt)
    assert cached_call(proxy, token, prompt).headers["x-proxy-cache"] == "hit"
    response = proxy.manage("POST", "/manage/cache/purge", {"method": "POST", "url": "/v1/chat/completions"})
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] >= 1
    assert cached_call(proxy, token, prompt).headers["x-proxy-cache"] == "miss"


def test_redis_down_is_a_miss_not_an_error(stack: Stack, private_redis: RedisServer) -> None:
    # Redis stays down to the end: do not wait the default 10 s for a flush that cannot happen.
    proxy = stack.proxy(
        REDIS_CACHE_URL=private_redis.url, REDIS_EVENT_URL=private_redis.url, EVENT_FLUSH_TIMEOUT="0.5"
    )
    token = proxy.token()
    prompt = f"outage {uuid.uuid4()}"
    cached_call(proxy, token, prompt)
    assert cached_call(proxy, token, prompt).headers["x-proxy-cache"] == "hit"
    private_redis.kill()
    during = [cached_call(proxy, token, prompt) for _ in range(3)]
    assert [r.status_code for r in during] == [200, 200, 200]
    assert all(r.headers["x-proxy-cache"] == "miss" for r in during)


def test_cache_rules_follow_the_upstream_semantics() -> None:
    """GET by the upstream's s-maxage/max-age; POST only on the client's `public, max-age=N`."""
    get = request_policy("GET", None)
    assert get is not None
    assert response_ttl(get, 200, "public, max-age=30") == 30
    assert response_ttl(get, 200, "s-maxage=90, max-age=30") == 90
    assert response_ttl(get, 200, None) == 0
    assert response_ttl(get, 200, "private, max-age=30") == 0
    assert response_ttl(get, 200, "no-store") == 0
    assert response_ttl(get, 500, "max-age=30") == 0
    assert request_policy("GET", "no-cache") is None
    assert request_policy("POST", None) is None
    assert request_policy("POST", "max-age=60") is None  # not public
    post = request_policy("POST", "public, max-age=60")
    assert post is not None and response_ttl(post, 200, None) == 60
