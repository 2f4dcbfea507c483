"""Keys and tokens in Worker variables: packed under Cloudflare's limits, read back whole.

A secret binding whose entries do not fit one Worker variable continues in numbered ones
(DESIGN §3): `NAME`, then `NAME_2`, `NAME_3`, … . `pack` decides the split when deploying;
`joined_text` is how the Worker's model reads the parts back as one text, and
`worker_template/secret_bindings.js.j2` reads them the same way. The module is this package's,
not the worker side's: the settings and the provider table pack and size the bindings with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENTRY_SEPARATOR = "\n"
"""Between two entries of one variable; one byte, and one of the separators the Worker splits on."""


@dataclass(frozen=True)
class WorkerVariableLimits:
    """Cloudflare's limits on a Worker's environment variables (secret and plain text together).

    Source: https://developers.cloudflare.com/workers/platform/limits/#environment-variables
    (read 2026): 64 variables per Worker on Workers Free, 128 on Workers Paid, and 5 KB per
    variable on both. Rate Limiting bindings are not variables and do not count.
    """

    value_bytes: int
    """Most bytes (UTF-8) in one variable's value. The page says "5 KB": taken as 5,000 bytes, the
    smaller of its two readings. The API is reported to refuse a value over 5,120 bytes (error
    10054, `text_binding_too_large`, noted in rocicorp/mono's mirror/mirror-schema), so the
    margin also covers a name (at most 25 bytes here) if Cloudflare ever counted it."""
    per_worker_free: int
    """Variables one Worker may have on the Workers Free plan."""
    per_worker_paid: int
    """Variables one Worker may have on the Workers Paid plan."""

    @property
    def per_worker(self) -> int:
        """What aigw keeps to: the number every plan allows, so a stack deploys on any account."""
        return min(self.per_worker_free, self.per_worker_paid)


WORKER_VARIABLE_LIMITS = WorkerVariableLimits(
    value_bytes=5_000, per_worker_free=64, per_worker_paid=128
)


def numbered_name(name: str, number: int) -> str:
    """The name of part `number` (from 1) of binding `name`: `NAME`, then `NAME_2`, `NAME_3`, …"""
    return name if number == 1 else f"{name}_{number}"


def entry_bytes(entry: str) -> int:
    """An entry's size as Cloudflare counts a variable: bytes of UTF-8."""
    return len(entry.encode())


def pack(entries: Sequence[str], limit: int = WORKER_VARIABLE_LIMITS.value_bytes) -> list[str]:
    """`entries`, in order, joined by new lines into as few texts of at most `limit` bytes as fit.

    Each text is filled before the next starts (for entries kept in order, no split uses fewer
    texts). No entries give one empty text, so the first binding always exists. An entry over
    `limit` on its own is a `ValueError`: `settings.load` refuses such a key or token first.
    """
    texts: list[str] = []
    current: list[str] = []
    size = 0
    for entry in entries:
        length = entry_bytes(entry)
        if length > limit:
            raise ValueError(f"an entry of {length} bytes cannot fit a variable of {limit}")
        grown = size + len(ENTRY_SEPARATOR) + length if current else length
        if grown > limit:
            texts.append(ENTRY_SEPARATOR.join(current))
            current, grown = [], length
        current.append(entry)
        size = grown
    texts.append(ENTRY_SEPARATOR.join(current))
    return texts


def packed_bindings(name: str, entries: Sequence[str]) -> dict[str, str]:
    """Binding `name`'s entries as {`NAME`: text, `NAME_2`: text, …}, each within the limit."""
    return {numbered_name(name, number): text for number, text in enumerate(pack(entries), start=1)}


def numbered_parts(env: Mapping[str, str], name: str) -> list[str]:
    """The names of binding `name`'s parts present in `env`: `NAME`, then `NAME_2`, … up to the
    first number missing (a part after a gap is not read)."""
    parts: list[str] = []
    while (part := numbered_name(name, len(parts) + 1)) in env:
        parts.append(part)
    return parts


def joined_text(env: Mapping[str, str], name: str) -> str:
    """Binding `name` as one text: its parts joined by new lines, or "" when `NAME` is unset."""
    return ENTRY_SEPARATOR.join(env[part] for part in numbered_parts(env, name))
