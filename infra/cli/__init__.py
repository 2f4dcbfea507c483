"""The `aigw` command: run the Worker locally, operate a deployment through the Cloudflare API."""
