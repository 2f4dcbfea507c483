"""The Pulumi resources aigw creates on a Cloudflare account, grouped in one component."""
