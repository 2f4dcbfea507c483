"""The benchmark: what aigw's Worker adds to a request, against direct calls and other proxies."""
