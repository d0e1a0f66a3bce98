"""The event bus end to end: proxy -> Redis Stream -> dispatcher -> audit_events, exactly one row per
request, through dispatcher crashes and a Redis reboot."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis
import requests

from tests.llmproxy.conftest import (
    CHAT,
    Proxy,
    RedisServer,
    Stack,
    audit_rows,
    metrics,
    run_sql,
    wait_for_audit,
    wait_until,
)


def test_every_request_yields_exactly_one_row(stack: Stack, proxy: Proxy, workdir: Path) -> None:
    jsonl = workdir / "events.jsonl"
    dispatcher = stack.dispatcher(proxy.env, DISPATCHER_JSONL_PATH=str(jsonl))
    token = proxy.token()
    ids: list[str] = []
    cached = {"Cache-Control": "public, max-age=60"}
    variants: list[dict[str, Any]] = [
        dict(token=token),
        dict(token=None),
        dict(token="sk-" + "B" * 22),
        dict(token=token, headers={"X-Mock-Error": "500"}),
        dict(token=token, headers=cached),
        dict(token=token, body={**CHAT, "stream": True}),
    ]
    for round_ in range(5):
        for variant in variants:
            request_id = f"req-{uuid.uuid4().hex}"
            ids.append(request_id)
            headers = {**variant.get("headers", {}), "X-Request-ID": request_id}
            response = proxy.call(variant["token"], body=variant.get("body", CHAT), headers=headers)
            assert response.headers["x-request-id"] == request_id
            if variant.get("headers") is cached and round_ > 0:
                assert response.headers["x-proxy-cache"] == "hit"
    counts = wait_for_audit(proxy.dsn, ids)
    assert counts == {request_id: 1 for request_id in ids}
    outcomes = run_sql(
        proxy.dsn,
        "SELECT reason, count(*) AS n FROM audit_events WHERE request_id = ANY($1::text[]) GROUP BY reason",
        ids,
    )
    by_reason = {r["reason"]: r["n"] for r in outcomes}
    assert by_reason["invalid_token"] == 5 and by_reason["token_not_found"] == 5
    # Management actions are audited as their own actions.
    actions = {r["action"] for r in run_sql(proxy.dsn, "SELECT DISTINCT action FROM audit_events")}
    assert {"project.create", "token.create", "proxy.request"} <= actions
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    line_ids = [line["id"] for line in lines]
    assert len(line_ids) == len(set(line_ids))
    assert {line["request_id"] for line in lines} >= set(ids)
    assert metrics(proxy)["events_dropped"] == 0
    assert dispatcher.stop(signal.SIGTERM, timeout=10) == 0  # SIGTERM: finish the batch in hand, exit 0


def fill_stream(client: redis.Redis, stream: str, count: int) -> list[str]:
    """Events as the proxy publishes them."""
    ids = []
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        event_id = str(uuid.uuid4())
        ids.append(event_id)
        event = {
            "id": event_id,
            "timestamp": time.time(),
            "action": "proxy.request",
            "outcome": "success",
            "request_id": f"bulk-{n}",
            "metadata": {"status": 200},
        }
        pipe.xadd(stream, {"data": orjson.dumps(event)})
    pipe.execute()
    return ids


@pytest.mark.slow
def test_kill_9_mid_batch_then_restart_writes_each_event_once(stack: Stack, proxy: Proxy) -> None:
    stream = f"crash-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(stack.redis_url)
    event_ids = fill_stream(client, stream, 3000)
    env = {**proxy.env, "REDIS_STREAM_KEY": stream, "REDIS_CONSUMER_GROUP": "crash-group"}

    def rows() -> int:
        return int(
            run_sql(
                proxy.dsn, "SELECT count(*) AS n FROM audit_events WHERE id = ANY($1::uuid[])", event_ids
            )[0]["n"]
        )

    # First crash: in the middle of the flow (batches of 50, some written and ACKed, some in hand).
    first = stack.dispatcher(env, DISPATCHER_BATCH_SIZE="50", DISPATCHER_CONSUMER_NAME="a")
    wait_until(lambda: rows() >= 200, timeout=60, what="first rows")
    first.stop(signal.SIGKILL)

    # Second crash: a batch read but blocked on its INSERT (a table lock held by the test), so it is
    # neither written nor ACKed when the process dies.
    def pending_of(consumer: str) -> int:
        infos = client.xinfo_consumers(stream, "crash-group")
        return sum(int(i["pending"]) for i in infos if i["name"] in (consumer, consumer.encode()))

    async def locked_kill() -> None:
        conn = await asyncpg.connect(proxy.dsn)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE audit_events IN EXCLUSIVE MODE")
                second = stack.dispatcher(env, DISPATCHER_BATCH_SIZE="50", DISPATCHER_CONSUMER_NAME="b")
                wait_until(lambda: pending_of("b") > 0, timeout=60, what="a batch in hand")
                second.stop(signal.SIGKILL)
        finally:
            await conn.close()

    asyncio.run(locked_kill())
    assert rows() < len(event_ids)

    # A new consumer claims the dead consumers' pending messages (XAUTOCLAIM) and finishes the stream.
    stack.dispatcher(
        env,
        DISPATCHER_BATCH_SIZE="50",
        DISPATCHER_CONSUMER_NAME="c",
        DISPATCHER_CLAIM_IDLE_MS="300",
        DISPATCHER_CLAIM_INTERVAL="0.2",
    )
    wait_until(lambda: rows() == len(event_ids), timeout=60, interval=0.2, what="all rows")
    wait_until(
        lambda: int(client.xpending(stream, "crash-group")["pending"]) == 0, timeout=30, what="no pending"
    )
    time.sleep(0.5)
    assert rows() == len(event_ids)
    client.delete(stream)


@pytest.mark.slow
def test_redis_reboot_while_requests_flow_loses_nothing(stack: Stack, private_redis: RedisServer) -> None:
    proxy = stack.proxy(REDIS_CACHE_URL=private_redis.url, REDIS_EVENT_URL=private_redis.url)
    stack.dispatcher(proxy.env, DISPATCHER_CLAIM_INTERVAL="0.5")
    token = proxy.token()
    sent: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        session = requests.Session()
        while not stop.is_set():
            request_id = f"reboot-{uuid.uuid4().hex}"
            sent.append(request_id)
            response = session.post(
                proxy.url + "/v1/chat/completions",
                json=CHAT,
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
                timeout=10,
            )
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text}")

    workers = [threading.Thread(target=traffic) for _ in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(1.5)
    before = len(sent)
    private_redis.restart_empty()
    time.sleep(2.0)
    stop.set()
    for worker in workers:
        worker.join()
    assert len(sent) > before + 10, "traffic did not flow across the reboot"
    assert failures == []
    counts = wait_for_audit(proxy.dsn, sent, timeout=60)
    assert counts == {request_id: 1 for request_id in sent}
    values = metrics(proxy)
    assert values["events_dropped"] == 0
    assert values["events_redis_resets"] >= 1
    assert audit_rows(proxy.dsn, sent[:1]) == {sent[0]: 1}
