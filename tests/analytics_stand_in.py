"""The loopback Cloudflare API's analytics: the Analytics Engine SQL API run in chDB, and AI
Gateway's GraphQL analytics answering only the fields infra/cli/gateway_analytics.py writes down.

The SQL a report sends runs, as sent, in chDB (in-process ClickHouse) over one table per dataset
with the columns Cloudflare documents (`dataset`, `timestamp`, `_sample_interval`, `index1`,
`blob1`..`blob20`, `double1`..`double20`), filled with rows of data points: the ones the real
Worker wrote in workerd (infra/cli/local_analytics.py collects them), or a benchmark's synthetic
ones. Like the real API it reads only: anything but one SELECT is refused.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import graphql
from chdb import session

from infra.cli import gateway_analytics

COLUMNS = 20
_IDENTIFIER = re.compile(r"[a-z0-9_]{1,64}")
_SELECT = re.compile(r"\s*SELECT\s", re.IGNORECASE)
SCHEMA = ", ".join(
    [
        "dataset String",
        "timestamp DateTime('UTC')",
        "_sample_interval UInt32",
        "index1 String",
        *(f"blob{n} String" for n in range(1, COLUMNS + 1)),
        *(f"double{n} Float64" for n in range(1, COLUMNS + 1)),
    ]
)


class SqlRefused(ValueError):
    """A query the real SQL API would refuse too (not a read, or a dataset never written)."""


class AnalyticsEngine:
    """Datasets in one chDB session; safe to use from the stand-in's threads."""

    def __init__(self) -> None:
        self._session = session.Session()
        self._lock = threading.Lock()
        self.datasets: set[str] = set()

    def _table(self, dataset: str) -> None:
        if not _IDENTIFIER.fullmatch(dataset):
            raise ValueError(f"dataset {dataset!r} is not an identifier")
        if dataset not in self.datasets:
            self._session.query(
                f"CREATE TABLE {dataset} ({SCHEMA}) ENGINE = MergeTree ORDER BY (index1, timestamp)"
            )
            self.datasets.add(dataset)

    def insert(self, dataset: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows (as infra/cli/local_analytics.py makes them) to `dataset`."""
        lines = "\n".join(json.dumps(dict(row) | {"dataset": dataset}) for row in rows)
        with self._lock:
            self._table(dataset)
            if lines:
                self._session.query(
                    f"INSERT INTO {dataset} SETTINGS date_time_input_format = 'best_effort' "
                    f"FORMAT JSONEachRow\n{lines}"
                )

    def generate(self, dataset: str, select: str) -> None:
        """Fill `dataset` from a SELECT of the table's columns (a benchmark's synthetic points)."""
        with self._lock:
            self._table(dataset)
            self._session.query(f"INSERT INTO {dataset} {select}")

    def query(self, sql: str) -> str:
        """The answer to one read query, in the format it names."""
        if not _SELECT.match(sql) or ";" in sql.strip().rstrip(";"):
            raise SqlRefused("only one SELECT query is accepted")
        with self._lock:
            for dataset in re.findall(r"\bFROM\s+([A-Za-z0-9_]+)", sql, re.IGNORECASE):
                if dataset not in self.datasets:
                    raise SqlRefused(f"unknown dataset {dataset!r}")
            try:
                return str(self._session.query(sql, "JSON"))
            except Exception as error:  # chDB raises its own RuntimeError subclasses
                raise SqlRefused(str(error).splitlines()[0]) from None


def graphql_answer(document: Mapping[str, Any], logs: Iterable[Mapping[str, Any]]) -> Any:
    """AI Gateway's GraphQL analytics over the fake's logs, for the fields aigw writes down."""
    try:
        parsed = graphql.parse(str(document.get("query", "")))
    except graphql.GraphQLError as error:
        return {"data": None, "errors": [{"message": error.message}]}
    values = document.get("variables") or {}
    operations = [d for d in parsed.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    if len(operations) != 1:
        return {"data": None, "errors": [{"message": "one operation expected"}]}
    problem = _unknown_field(operations[0].selection_set, "query")
    if problem:
        return {"data": None, "errors": [{"message": f"unknown field {problem}"}]}
    viewer = operations[0].selection_set.selections[0]
    assert isinstance(viewer, graphql.FieldNode) and viewer.selection_set is not None
    accounts = viewer.selection_set.selections[0]
    assert isinstance(accounts, graphql.FieldNode) and accounts.selection_set is not None
    answer: dict[str, Any] = {}
    for node in accounts.selection_set.selections:
        assert isinstance(node, graphql.FieldNode)
        where = _filter(node, values)
        answer[node.alias.value if node.alias else node.name.value] = _groups(logs, where)
    return {"data": {"viewer": {"accounts": [answer]}}, "errors": None}


def _unknown_field(selections: graphql.SelectionSetNode | None, parent: str) -> str | None:
    """The first selected field aigw does not write down, as `parent.field`."""
    if selections is None:
        return None
    allowed = ("viewer",) if parent == "query" else gateway_analytics.FIELDS.get(parent, ())
    for node in selections.selections:
        if not isinstance(node, graphql.FieldNode) or node.name.value not in allowed:
            name = node.name.value if isinstance(node, graphql.FieldNode) else "fragment"
            return f"{parent}.{name}"
        found = _unknown_field(node.selection_set, node.name.value)
        if found:
            return found
    return None


def _filter(node: graphql.FieldNode, values: Mapping[str, Any]) -> dict[str, Any]:
    """The group list's filter, its variables resolved; only the written-down fields."""
    where: dict[str, Any] = {}
    for argument in node.arguments:
        if argument.name.value != "filter":
            continue
        assert isinstance(argument.value, graphql.ObjectValueNode)
        for entry in argument.value.fields:
            name = entry.name.value
            if name not in gateway_analytics.FILTER_FIELDS:
                raise ValueError(f"unknown filter {name}")
            value = entry.value
            where[name] = (
                values.get(value.name.value) if isinstance(value, graphql.VariableNode) else None
            )
    return where


def _groups(logs: Iterable[Mapping[str, Any]], where: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The logs' counts and sums by model, provider and metadata, as the dataset groups them."""
    from datetime import datetime

    start = datetime.fromisoformat(str(where["datetime_geq"]))
    end = datetime.fromisoformat(str(where["datetime_leq"]))
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for log in logs:
        if log.get("gateway_id", where.get("gateway")) != where.get("gateway"):
            continue
        created = datetime.fromisoformat(str(log["created_at"]))
        if not start <= created <= end:
            continue
        key = (
            str(log.get("model") or ""),
            str(log.get("provider") or ""),
            log.get("metadata") or "",
        )
        group = groups.setdefault(
            key,
            {
                "count": 0,
                "sum": dict.fromkeys(gateway_analytics.SUM_FIELDS, 0),
                "dimensions": {"model": key[0], "provider": key[1], "metadataRaw": key[2]},
            },
        )
        group["count"] += 1
        sums = group["sum"]
        sums["cost"] += float(log.get("cost") or 0.0)
        cached = bool(log.get("cached"))
        sums["cachedTokensIn" if cached else "uncachedTokensIn"] += int(log.get("tokens_in") or 0)
        sums["cachedTokensOut" if cached else "uncachedTokensOut"] += int(
            log.get("tokens_out") or 0
        )
        sums["cachedRequests"] += 1 if cached else 0
        sums["erroredRequests"] += 0 if log.get("success") else 1
    return list(groups.values())
