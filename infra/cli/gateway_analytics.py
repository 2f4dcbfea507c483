"""AI Gateway's own analytics (GraphQL): cost and tokens by model, provider and client, in one call.

Cloudflare documents `aiGatewayRequestsAdaptiveGroups` only by example, so every field aigw reads
is written down here with where it is shown, and nothing else is ever asked for (the loopback
stand-in in tests/cloudflare_fake.py accepts exactly these fields). Sources, read 2026-12:
- [analytics] https://developers.cloudflare.com/ai-gateway/observability/analytics/ (the GraphQL
  tab): `viewer.accounts(filter: {accountTag})`, `aiGatewayRequestsAdaptiveGroups(limit, filter:
  {datetimeHour_geq, datetimeHour_leq}, orderBy)`, `count`, `dimensions {model, provider,
  gateway}`; the endpoint `POST /client/v4/graphql`; a token with Account Analytics Read.
- [graphql] https://developers.cloudflare.com/analytics/graphql-api/ : the `_geq`/`_leq` filter
  suffixes and the `datetime` dimension of adaptive groups, shared by every dataset.
- [sums] the `sum` fields `cost`, `uncachedTokensIn`, `uncachedTokensOut`, `cachedTokensIn`,
  `cachedTokensOut`, `cachedRequests`, `erroredRequests`: the dashboard's own query, as
  reproduced in public code querying this dataset (GitHub code search, 2026); not on a
  Cloudflare reference page.
- [metadata] `dimensions.metadataRaw`: the request's `cf-aig-metadata` as JSON text, a dimension
  to group and filter by (custom metadata: https://developers.cloudflare.com/ai-gateway/
  observability/custom-metadata/ says metadata can be filtered in analytics; the field's name
  is from public code querying the dataset, not from a reference page). The Worker sets it to
  `{"client", "keyId"}` (DESIGN §4), so one call gives cost per client and per key.
The real-cloud test (tests/cloud/test_real_cloudflare.py) asks Cloudflare for exactly this query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import cloudflare
import httpx

from infra.cli import api

GRAPHQL_PATH = "/graphql"
DATASET = "aiGatewayRequestsAdaptiveGroups"
SUM_FIELDS = (
    "cost",
    "uncachedTokensIn",
    "uncachedTokensOut",
    "cachedTokensIn",
    "cachedTokensOut",
    "cachedRequests",
    "erroredRequests",
)
"""[sums]"""
DIMENSIONS = ("model", "provider", "metadataRaw")
"""[analytics] `model`, `provider`; [metadata] `metadataRaw`."""
FILTER_FIELDS = ("gateway", "datetime_geq", "datetime_leq")
"""[analytics] the `gateway` dimension, [graphql] the `datetime` bounds."""
FIELDS: dict[str, tuple[str, ...]] = {
    "viewer": ("accounts",),
    "accounts": (DATASET,),
    DATASET: ("count", "sum", "dimensions"),
    "sum": SUM_FIELDS,
    "dimensions": DIMENSIONS,
}
"""Every field aigw selects, by the field it is selected in: the whole of what it reads."""
GROUP_LIMIT = 10_000
"""Groups per window: models x providers x (client, key) pairs, far fewer in practice."""


@dataclass(frozen=True)
class GatewayWindow:
    """One time window to read, both ends included."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class GatewayGroup:
    """What the gateway counted for one model, provider, client and key in a window."""

    model: str
    provider: str
    client: str
    key_id: str
    requests: int
    errors: int
    cached: int
    tokens_in: int
    tokens_out: int
    cost: float


def query(windows: int) -> str:
    """The GraphQL document: one aliased group list per window (`w0`, `w1`, ...), all in one call.

    Only variables carry values (account, gateway, times): nothing a user typed is ever part of
    the document's text.
    """
    sums = " ".join(SUM_FIELDS)
    dimensions = " ".join(DIMENSIONS)
    parameters = ", ".join(
        ["$account: string!", "$gateway: string!"]
        + [f"$start{n}: Time!, $end{n}: Time!" for n in range(windows)]
    )
    lists = "\n".join(
        f"      w{n}: {DATASET}(limit: {GROUP_LIMIT}, filter: {{gateway: $gateway, "
        f"datetime_geq: $start{n}, datetime_leq: $end{n}}}) "
        f"{{ count sum {{ {sums} }} dimensions {{ {dimensions} }} }}"
        for n in range(windows)
    )
    return (
        f"query aigwGatewayUsage({parameters}) {{\n"
        "  viewer {\n"
        "    accounts(filter: {accountTag: $account}) {\n"
        f"{lists}\n"
        "    }\n"
        "  }\n"
        "}"
    )


def variables(account_id: str, gateway_id: str, windows: list[GatewayWindow]) -> dict[str, str]:
    """The values of `query(len(windows))`'s variables."""
    values = {"account": account_id, "gateway": gateway_id}
    for number, window in enumerate(windows):
        values[f"start{number}"] = _iso(window.start)
        # Whole seconds outward, so the last moments of the window are not cut off.
        values[f"end{number}"] = _iso(
            window.end + timedelta(microseconds=-window.end.microsecond % 1_000_000)
        )
    return values


def read_gateway_usage(
    client: cloudflare.Cloudflare, target: api.Target, windows: list[GatewayWindow]
) -> list[list[GatewayGroup]]:
    """The gateway's groups in each window, in one GraphQL call."""
    body = {
        "query": query(len(windows)),
        "variables": variables(target.account_id, target.gateway_id, windows),
    }
    try:
        response = client.post(GRAPHQL_PATH, cast_to=httpx.Response, body=body)
    except cloudflare.APIError as error:
        doing = "reading the gateway's cost and tokens (GraphQL analytics)"
        raise api.OperateError(api.describe_api_error(error, doing)) from None
    try:
        document = response.json()
    except ValueError:
        raise api.OperateError(
            "the GraphQL analytics API answered with something that is not JSON"
        ) from None
    errors = document.get("errors") if isinstance(document, dict) else None
    if errors:
        messages = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
        raise api.OperateError(
            f"the GraphQL analytics API refused the query: {messages or 'no message'}; the "
            "token needs Account Analytics Read"
        )
    accounts = (((document or {}).get("data") or {}).get("viewer") or {}).get("accounts") or []
    found = accounts[0] if accounts else {}
    return [[_group(raw) for raw in found.get(f"w{n}") or []] for n in range(len(windows))]


def _group(raw: dict[str, Any]) -> GatewayGroup:
    sums = raw.get("sum") or {}
    dimensions = raw.get("dimensions") or {}
    metadata = _metadata(dimensions.get("metadataRaw"))
    return GatewayGroup(
        model=str(dimensions.get("model") or ""),
        provider=str(dimensions.get("provider") or ""),
        client=metadata.get("client", ""),
        key_id=metadata.get("keyId", ""),
        requests=int(raw.get("count") or 0),
        errors=int(sums.get("erroredRequests") or 0),
        cached=int(sums.get("cachedRequests") or 0),
        tokens_in=int(sums.get("uncachedTokensIn") or 0) + int(sums.get("cachedTokensIn") or 0),
        tokens_out=int(sums.get("uncachedTokensOut") or 0) + int(sums.get("cachedTokensOut") or 0),
        cost=float(sums.get("cost") or 0.0),
    )


def _metadata(raw: object) -> dict[str, str]:
    """The Worker's `cf-aig-metadata` fields, from the JSON text the gateway keeps."""
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(name): str(value) for name, value in parsed.items() if isinstance(value, str)}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
