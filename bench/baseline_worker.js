// The naive recipe aigw replaces, rewritten from its description for the benchmark; do not deploy.
// Hard-coded keys, a module-global round-robin counter, the client's pathname appended to the
// gateway's OpenAI base (so `/v1/chat/completions` reaches `…/openai/v1/chat/completions`, a path
// the real gateway does not have), `Access-Control-Allow-Origin: *`, no client auth, no failover.
// The benchmark replaces __TARGET_BASE__ with `<loopback upstream>/openai`; its fake gateway
// answers that path too, so the figures measure the proxy and not the bug.

const TARGET_BASE = "__TARGET_BASE__";
const API_KEYS = ["sk-bench-a", "sk-bench-b", "sk-bench-c", "sk-bench-d"];

let currentKeyIndex = 0;

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const targetUrl = TARGET_BASE + url.pathname + url.search;

    const apiKey = API_KEYS[currentKeyIndex];
    currentKeyIndex = (currentKeyIndex + 1) % API_KEYS.length;

    const headers = new Headers(request.headers);
    headers.set("Authorization", `Bearer ${apiKey}`);

    const response = await fetch(targetUrl, {
      method: request.method,
      headers,
      body: request.body,
    });

    const proxied = new Response(response.body, response);
    proxied.headers.set("Access-Control-Allow-Origin", "*");
    return proxied;
  },
};
