"""The Worker's events through the Workers Analytics Engine SQL API: each report in a few queries.

`POST /accounts/{account_id}/analytics_engine/sql` takes the query as the request body and
answers in the `FORMAT` the query names; aigw asks for `FORMAT JSON` (`{"meta", "data", "rows"}`,
ClickHouse's JSON format, 64-bit integers as text). Counts are `SUM(_sample_interval)` and sums
`SUM(_sample_interval * doubleN)`, as Cloudflare documents for sampled data
(https://developers.cloudflare.com/analytics/analytics-engine/sql-api/, .../sampling/). Which
column holds what is infra/worker/analytics.py's (`column`).

Nothing a user or a client chose is ever part of a query's text: the dataset is a validated
identifier, times are whole Unix seconds, and the only strings are aigw's own outcome names and
provider slugs, checked against a strict pattern before they are quoted (`sql_string`). Client,
model and key names come back as data, and are never sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cloudflare
import httpx

from infra.cli import api
from infra.worker.analytics import ATTEMPT, REQUEST, column

SQL_PATH = "/accounts/{account_id}/analytics_engine/sql"
_DATASET = re.compile(r"[a-z0-9_]{1,64}")
_SAFE_STRING = re.compile(r"[a-z0-9_.-]{0,64}")
KEY_EXCLUDED_OUTCOMES = ("gateway_refusal", "budget_exceeded")
"""Answers AI Gateway gave itself: no key's fault, so `aigw keys` leaves them out."""

KIND = column("kind")
CLIENT = column("client")
PROVIDER = column("provider")
MODEL = column("model")
KEY_ID = column("keyId")
OUTCOME = column("outcome")
PATH = column("path")
STATUS = column("status")
ATTEMPTS = column("attempts")
FIRST_BYTE_MS = column("firstByteMs")
CACHED = column("cached")
UPSTREAM_STATUS = column("upstreamStatus")
GROUP_COLUMNS = {"model": MODEL, "provider": PROVIDER, "client": CLIENT, "key": KEY_ID}


class SqlError(api.OperateError):
    """The SQL API refused a query or answered something that is not its JSON."""


def sql_string(value: str) -> str:
    """`value` as a SQL string literal; only aigw's own names (outcomes, provider slugs) pass."""
    if not _SAFE_STRING.fullmatch(value):
        raise ValueError(f"{value!r} is not one of aigw's own names and is not put into SQL")
    return f"'{value}'"


def dataset_name(dataset: str) -> str:
    """The dataset as the query's table: a plain identifier, or an error naming the option."""
    if not _DATASET.fullmatch(dataset):
        raise api.OperateError(
            f"--dataset {dataset!r} is not an Analytics Engine dataset aigw writes: use lowercase "
            "letters, digits and _ (aigw's is the Worker's name with - as _)"
        )
    return dataset


def seconds(moment: datetime) -> int:
    """A window's bound as whole Unix seconds (the `timestamp` column's precision)."""
    return int(moment.astimezone(UTC).timestamp())


def window_filter(start: datetime, end: datetime) -> str:
    """`timestamp` within [start, end], whole seconds outward so nothing in the window is lost."""
    last = -(-int(end.astimezone(UTC).timestamp() * 1_000_000) // 1_000_000)
    return f"timestamp >= toDateTime({seconds(start)}) AND timestamp <= toDateTime({last})"


@dataclass
class SqlClient:
    """Runs queries for one account and counts them (the reports promise a few per report)."""

    client: cloudflare.Cloudflare
    account_id: str
    calls: int = 0

    def rows(self, sql: str) -> list[dict[str, Any]]:
        """The `data` rows of `sql` (which ends in FORMAT JSON)."""
        self.calls += 1
        path = SQL_PATH.format(account_id=self.account_id)
        try:
            response = self.client.post(
                path,
                cast_to=httpx.Response,
                content=sql.encode(),
                options={"headers": {"content-type": "text/plain"}},
            )
        except cloudflare.APIStatusError as error:
            raise SqlError(_describe(error)) from None
        except cloudflare.APIError as error:
            doing = "querying the Worker's events (Analytics Engine SQL API)"
            raise SqlError(api.describe_api_error(error, doing)) from None
        try:
            document = response.json()
        except ValueError:
            raise SqlError(
                "the Analytics Engine SQL API answered with something that is not JSON"
            ) from None
        data = document.get("data") if isinstance(document, dict) else None
        if not isinstance(data, list):
            raise SqlError("the Analytics Engine SQL API answered JSON without its data rows")
        return [row for row in data if isinstance(row, dict)]


def _describe(error: cloudflare.APIStatusError) -> str:
    doing = "querying the Worker's events (Analytics Engine SQL API)"
    text = error.response.text.strip()
    if error.status_code in (401, 403):
        return api.describe_api_error(error, doing) + " (the token needs Account Analytics Read)"
    if error.status_code in (400, 422) and text and not text.startswith("<"):
        # The SQL API says what it did not like in plain text; a dataset never written to has no
        # table yet.
        first = text.splitlines()[0][:300]
        hint = (
            "; the dataset has no table until the Worker writes its first event (is "
            "aigw:analytics on, and has the Worker served a request?)"
            if "unknown" in text.lower() or "not found" in text.lower()
            else ""
        )
        status = error.status_code
        return f"the Analytics Engine SQL API refused the query (HTTP {status}: {first}){hint}"
    return api.describe_api_error(error, doing)


def number(value: object) -> float:
    """A JSON cell as a number (ClickHouse writes 64-bit integers as text)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def moment(value: object) -> datetime | None:
    """A `timestamp` cell (`YYYY-MM-DD hh:mm:ss`, UTC) as a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def usage_query(dataset: str, start: datetime, end: datetime, group: str) -> str:
    """Requests per group and outcome, with cached answers: one row per (group, outcome)."""
    expression = f"toString({STATUS})" if group == "status" else GROUP_COLUMNS[group]
    return (
        f"SELECT {expression} AS grp, {OUTCOME} AS outcome, "
        f"SUM(_sample_interval) AS requests, "
        f"SUM(_sample_interval * {CACHED}) AS cached "
        f"FROM {dataset_name(dataset)} "
        f"WHERE {window_filter(start, end)} AND {KIND} = {sql_string(REQUEST)} "
        "GROUP BY grp, outcome FORMAT JSON"
    )


def keys_query(dataset: str, start: datetime, end: datetime, provider: str | None) -> str:
    """Every answer a pool key got (request and attempt points), by key, model, path and
    status, with when the first and the last of them came."""
    only = f" AND {PROVIDER} = {sql_string(provider)}" if provider else ""
    excluded = ", ".join(sql_string(outcome) for outcome in KEY_EXCLUDED_OUTCOMES)
    return (
        f"SELECT {PROVIDER} AS provider, {KEY_ID} AS keyId, {MODEL} AS model, {PATH} AS path, "
        f"{UPSTREAM_STATUS} AS status, SUM(_sample_interval) AS answers, "
        "MIN(timestamp) AS first, MAX(timestamp) AS last "
        f"FROM {dataset_name(dataset)} "
        f"WHERE {window_filter(start, end)} AND {KEY_ID} != '' AND {UPSTREAM_STATUS} >= 0 "
        f"AND {OUTCOME} NOT IN ({excluded}) "
        f"AND {KIND} IN ({sql_string(REQUEST)}, {sql_string(ATTEMPT)}){only} "
        "GROUP BY provider, keyId, model, path, status FORMAT JSON"
    )


def keys_hourly_query(dataset: str, start: datetime, end: datetime, provider: str | None) -> str:
    """Every answer a pool key got, by key, status and UTC hour (the chart)."""
    only = f" AND {PROVIDER} = {sql_string(provider)}" if provider else ""
    excluded = ", ".join(sql_string(outcome) for outcome in KEY_EXCLUDED_OUTCOMES)
    return (
        f"SELECT {PROVIDER} AS provider, {KEY_ID} AS keyId, {UPSTREAM_STATUS} AS status, "
        "toStartOfInterval(timestamp, INTERVAL '1' HOUR) AS hour, "
        "SUM(_sample_interval) AS answers "
        f"FROM {dataset_name(dataset)} "
        f"WHERE {window_filter(start, end)} AND {KEY_ID} != '' AND {UPSTREAM_STATUS} >= 0 "
        f"AND {OUTCOME} NOT IN ({excluded}){only} "
        "GROUP BY provider, keyId, status, hour FORMAT JSON"
    )


def clients_query(dataset: str, start: datetime, end: datetime) -> str:
    """Requests per client and outcome in the window."""
    return (
        f"SELECT {CLIENT} AS client, {OUTCOME} AS outcome, SUM(_sample_interval) AS requests "
        f"FROM {dataset_name(dataset)} "
        f"WHERE {window_filter(start, end)} AND {KIND} = {sql_string(REQUEST)} "
        "GROUP BY client, outcome FORMAT JSON"
    )


def outcome_counts(rows: Iterable[dict[str, Any]], key: str) -> dict[str, dict[str, int]]:
    """{group: {outcome: requests}} from rows of `usage_query` or `clients_query`."""
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        group = str(row.get(key) or "")
        outcome = str(row.get("outcome") or "")
        per = counts.setdefault(group, {})
        per[outcome] = per.get(outcome, 0) + round(number(row.get("requests")))
    return counts


def refused_by_worker(outcomes: dict[str, int], worker_outcomes: Sequence[str]) -> int:
    """How many of a group's requests the Worker refused itself (never reached the gateway)."""
    return sum(count for outcome, count in outcomes.items() if outcome in worker_outcomes)
