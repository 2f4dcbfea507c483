"""Rate-limit header values and what each reads as: the same table for the model's parsers
(tests/unit/test_key_limits.py) and the Worker's (tests/worker/test_key_limits_workerd.py).

None means the value is not read (bad, absent or out of range): it is ignored, never guessed at.
"""

from __future__ import annotations

MAX = 3_600_000
"""`key_limits.MAX_COOLDOWN_MS`, written out so a change to it shows here."""

DURATIONS: list[tuple[str | None, float | None]] = [
    ("1s", 1_000),
    ("6m0s", 360_000),
    ("1m30.5s", 90_500),
    ("120ms", 120),
    ("12ms", 12),
    ("1h2m3.5s", 3_723_500),
    ("1.5h", 5_400_000),
    ("7.66s", 7_660),
    ("2m59.56s", 179_560),
    ("500us", 0.5),
    ("250ns", 0.00025),
    ("0s", 0),
    (" 6m0s ", 360_000),
    ("876000h", 3_153_600_000_000),
    ("", None),
    (None, None),
    ("60", None),
    ("-5s", None),
    ("1e3s", None),
    ("s", None),
    ("1 s", None),
    ("1m 30s", None),
    ("1.s", None),
    (".5s", None),
    ("1d", None),
    ("1µs", None),
    ("soon", None),
]
COUNTS: list[tuple[str | None, int | None]] = [
    ("0", 0),
    ("42", 42),
    ("007", 7),
    (" 5000 ", 5_000),
    ("999999999999999", 999_999_999_999_999),
    ("9999999999999999", None),
    ("-1", None),
    ("1.5", None),
    ("1e3", None),
    ("", None),
    (None, None),
    ("many", None),
]
TIMESTAMPS: list[tuple[str | None, int | None]] = [
    ("2025-08-21T12:40:59Z", 1_755_780_059_000),
    ("2025-08-21t12:40:59z", 1_755_780_059_000),
    ("2025-08-21 12:40:59Z", 1_755_780_059_000),
    ("2025-08-21T12:40:59.5Z", 1_755_780_059_500),
    ("2025-08-21T12:40:59.123456789Z", 1_755_780_059_123),
    ("2025-08-21T14:40:59+02:00", 1_755_780_059_000),
    ("2025-08-21T07:10:59-05:30", 1_755_780_059_000),
    ("2025-02-31T00:00:00Z", 1_740_960_000_000),
    ("1970-01-01T00:00:00Z", 0),
    ("2099-01-01T00:00:00Z", 4_070_908_800_000),
    ("1969-12-31T23:59:59Z", None),
    ("2025-13-01T00:00:00Z", None),
    ("2025-08-21T24:00:00Z", None),
    ("2025-08-21T12:40:59", None),
    ("2025-08-21T12:40:59+25:00", None),
    ("2025-08-21", None),
    ("Thu, 21 Aug 2025 12:40:59 GMT", None),
    ("1755780059", None),
    ("", None),
    (None, None),
]
RETRY_AFTER_MS: list[tuple[str | None, int | None]] = [
    ("1500", 1_500),
    ("1.2", 2),
    ("0", 0),
    ("0.4", 1),
    ("99999999999", MAX),
    ("-1", None),
    ("1e3", None),
    ("soon", None),
    ("", None),
    (None, None),
]
