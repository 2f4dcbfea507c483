"""Request bodies and the model the routing read (`body_models.top_level_model`) finds in each: one
table for the model (tests/unit/test_model.py) and the Worker (test_key_limits_workerd.py).
"""

from __future__ import annotations

BODY_MODELS: list[tuple[bytes, str | None]] = [
    (b'{"model":"gpt-4o","messages":[]}', "gpt-4o"),
    (b'{"messages":[{"role":"user","content":"say \\"model\\": \\"x\\""}],"model":"m"}', "m"),
    (b' \n{"tools":[{"model":"inner"}],"model" : "outer"}', "outer"),
    (b'{"a":"ends in a backslash \\\\","model":"after"}', "after"),
    (b'{"metadata":{"model":"nested"}}', None),
    (b'{"model":"esc\\u0061ped"}', "escaped"),
    (b'{"model":"a \\"quoted\\" \\\\ name","x":1}', 'a "quoted" \\ name'),
    (b'{"model":"bad \\x escape"}', None),
    (b'{"model":42}', None),
    (b'{"model":""}', None),
    (b'["model","x"]', None),
    (b'{"model":"' + b"m" * 256 + b'"}', "m" * 256),
    (b'{"model":"' + b"m" * 257 + b'"}', None),
    (b'{"model":"\xff"}', None),
    (b'{"model":"caf\xc3\xa9"}', "caf\u00e9"),
    (b'{"unterminated":"', None),
    (b"", None),
]
