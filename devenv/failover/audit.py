"""The data-loss check: every /v1 request the proxy answered has exactly one audit event.

Read through the management API (`GET /manage/audit`, action `proxy.request`, a time range, 100 a page) so
it works on AWS too, where the database is out of reach. The audit log is polled until every expected
request id is there or the dispatcher had `timeout_s` to catch up; then missing ids and duplicates count.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from devenv.targets.management import ManagementClient, ManagementError

PAGE_SIZE = 100
MAX_PAGES = 500  # 50k events: far beyond any experiment's load; a bound on the loop
CLOCK_MARGIN_S = 120  # the proxy's clock (its event timestamps) may differ from ours


@dataclass
class AuditResult:
    expected: int
    found: int
    lost: int
    duplicates: int
    missing_ids: list[str]
    duplicate_ids: list[str]
    waited_s: float
    polls: int
    unexpected: int = 0  # events for requests the load saw fail without the proxy's answer
    notes: list[str] = field(default_factory=list)


def fetch_counts(
    client: ManagementClient, since: dt.datetime, until: dt.datetime, prefix: str
) -> tuple[Counter[str], int]:
    """Distinct audit events per request id (ids starting with `prefix`) in the range; and how many pages."""
    events: dict[str, str] = {}
    page = 1
    while page <= MAX_PAGES:
        body = client.audit_page(
            page, PAGE_SIZE, action="proxy.request", since=since.isoformat(), until=until.isoformat()
        )
        for event in body.get("events", []):
            request_id = event.get("request_id") or ""
            if request_id.startswith(prefix):
                events[str(event["id"])] = request_id
        if page >= int(body.get("pagination", {}).get("total_pages", 0)):
            break
        page += 1
    return Counter(events.values()), page


def check(
    client: ManagementClient,
    expected_ids: Iterable[str],
    unanswered_ids: Iterable[str],
    since: dt.datetime,
    prefix: str,
    timeout_s: float,
    progress: Callable[[str], None] = lambda _: None,
) -> AuditResult:
    expected = set(expected_ids)
    unanswered = set(unanswered_ids)
    since = since - dt.timedelta(seconds=CLOCK_MARGIN_S)
    started = time.monotonic()
    polls = 0
    last_error: ManagementError | None = None
    counts: Counter[str] | None = None
    while True:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=CLOCK_MARGIN_S)
        try:
            counts, _ = fetch_counts(client, since, until, prefix)
            last_error = None
        except ManagementError as exc:
            last_error = exc
        polls += 1
        missing = sorted(expected - set(counts or {}))
        waited = time.monotonic() - started
        if counts is not None and not missing:
            break
        if waited >= timeout_s:
            break
        if polls % 5 == 1:
            progress(f"audit: {len(expected) - len(missing)}/{len(expected)} events so far")
        time.sleep(1.0)
    if counts is None:
        assert last_error is not None  # no count without an answer, no failed answer without its error
        raise last_error
    duplicate_ids = sorted(rid for rid, n in counts.items() if n > 1 and rid in expected)
    result = AuditResult(
        expected=len(expected),
        found=len(expected & set(counts)),
        lost=len(missing),
        duplicates=sum(counts[rid] - 1 for rid in duplicate_ids),
        missing_ids=missing,
        duplicate_ids=duplicate_ids,
        waited_s=round(time.monotonic() - started, 2),
        polls=polls,
        unexpected=len(unanswered & set(counts)),
    )
    if last_error:
        result.notes.append(f"last audit query failed: {last_error.message}")
    return result
