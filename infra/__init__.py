"""aigw: an AI Gateway and a key-rotation Worker on Cloudflare, as Pulumi code."""
