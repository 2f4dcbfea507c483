"""The `keyPlaces` stack output: which config entry each pool key id is, without the keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from infra.worker.pool import key_id


def key_places(provider_keys: Mapping[str, Sequence[str]]) -> dict[str, dict[str, str]]:
    """The `keyPlaces` output: each provider's key ids, each to its entry in the stack's config.

    `aigw keys` shows keys by the id the Worker logs (DESIGN §4: 8 hex digits of the key's
    SHA-256), which the gateway's logs already hold in clear; this maps an id back to the
    `providerKeys.<provider>[<index>]` that `pulumi config set --path` edits, so replacing a key
    never needs the keys themselves. Not secret: it holds ids and places, never a key.
    """
    return {
        provider: {
            key_id(key): f"providerKeys.{provider}[{index}]" for index, key in enumerate(keys)
        }
        for provider, keys in provider_keys.items()
    }
