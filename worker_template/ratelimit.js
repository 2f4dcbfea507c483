// aigw's local stand-in for a Workers Rate Limiting binding, for `aigw dev` and the tests in workerd.
// workerd serves it as a "wrapped" binding: it calls the default export once with the binding's
// inner bindings (`name`, `limit`, `period`) and hands the Worker what it returns, so the Worker
// calls `await env[name].limit({ key })` exactly as it does on Cloudflare.
//
// Behaviour: a fixed window per key. The first call of a key opens a window of `period` seconds;
// within it at most `limit` calls succeed; the next call after it ends opens a new one. Counters
// live in this isolate (the Worker's), like the Worker's own state. Cloudflare counts per location
// and eventually consistently, so this is the behaviour to expect, not a bit-exact copy.
// Every call is logged (the key is a client name, never a token), so the limit can be watched.

const OPTION_KEYS = ["key"];

class FixedWindow {
  constructor(name, max, period) {
    this.name = name;
    // Not `limit`: that is the method the Worker calls.
    this.max = max;
    this.period = period;
    // key -> { start: ms, count: successful calls in the window }
    this.windows = new Map();
  }

  async limit(options) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("limit() takes an object such as { key: 'client' }");
    }
    const unknown = Object.keys(options).filter((key) => !OPTION_KEYS.includes(key));
    if (unknown.length > 0 || typeof options.key !== "string") {
      throw new TypeError(`limit() takes { key: <string> }, got ${JSON.stringify(options)}`);
    }
    const now = Date.now();
    let window = this.windows.get(options.key);
    if (window === undefined || now - window.start >= this.period * 1000) {
      window = { start: now, count: 0 };
      this.windows.set(options.key, window);
    }
    const success = window.count < this.max;
    if (success) {
      window.count += 1;
    }
    console.log(
      `aigw rate limit ${this.name}: ${options.key} ${success ? "counted" : "refused"} ` +
        `(${window.count}/${this.max} in this ${this.period} s window)`,
    );
    return { success };
  }
}

export default function makeBinding(env) {
  return new FixedWindow(env.name, env.limit, env.period);
}
