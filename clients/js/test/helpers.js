// Test helpers: a real switchboard node per test (port 0, temp data dir),
// tokens, the server API, and WebSocket/EventSource implementations for
// Node (which has neither built in).
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export { WebSocket, sleep };

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.SWITCHBOARD_BIN ?? resolve(here, '../../../build/switchboard');
// At least 32 bytes each: the server refuses shorter secrets.
export const SECRET = 'client-test-jwt-secret-0123456789abcdef';
export const API_KEY = 'client-test-api-key-0123456789abcdef';

export class Node {
  constructor(extraConfig = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'sb-client-test-'));
    this.dataDir = join(this.dir, 'data');
    this.port = 0;
    this.config = {
      node: { id: 'client-test' },
      http: { host: '127.0.0.1', port: 0 },
      auth: { jwt_secret: SECRET, api_keys: [API_KEY] },
      // Tests publish faster than the default 10 a second.
      limits: { rate_limit: 1000, rate_limit_burst: 1000 },
      ...extraConfig,
    };
    this.proc = null;
    this.logs = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  // Starts the node; on a restart it listens on the same port again.
  async start() {
    const cfg = { ...this.config, http: { ...this.config.http, port: this.port } };
    cfg.node = { ...cfg.node, data_dir: this.dataDir };
    const path = join(this.dir, 'config.json');
    writeFileSync(path, JSON.stringify(cfg));
    const proc = spawn(BIN, ['--config', path], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
    this.proc = proc;
    let log = '';
    const port = await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`node did not start:\n${log}`)), 15000);
      const onData = (chunk) => {
        log += chunk;
        this.logs += chunk;
        const m = /listening.*port=(\d+)/.exec(log);
        if (m) {
          clearTimeout(timer);
          ok(Number(m[1]));
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.on('exit', (code) => fail(new Error(`node exited with ${code}:\n${log}`)));
    });
    this.port = port;
    return this;
  }

  kill9() {
    return this.#stop('SIGKILL');
  }

  stop() {
    return this.#stop('SIGTERM');
  }

  #stop(signal) {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return Promise.resolve();
    return new Promise((ok) => {
      proc.on('exit', () => ok());
      proc.kill(signal);
    });
  }

  // A new, empty data directory: the node's channels get new epochs.
  wipe() {
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  async cleanup() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWITCHBOARD_')));
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export function mint(claims, secret = SECRET) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

export function token(userId, { ttl = 3600, ...claims } = {}) {
  return mint({ user_id: userId, exp: Math.floor(Date.now() / 1000) + ttl, token_type: 'access', ...claims });
}

export function uniqueRoom(prefix = 'room') {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

export async function api(node, method, path, body) {
  const res = await fetch(node.url + path, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

// Resolves when `predicate()` holds, polling; rejects after `timeout` ms.
// Timeouts are generous: the tests share a loaded machine.
export async function until(predicate, what = 'condition', timeout = 15000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function nextEvent(client, name, timeout = 15000) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      off();
      fail(new Error(`no '${name}' within ${timeout} ms`));
    }, timeout);
    const off = client.once(name, (...args) => {
      clearTimeout(timer);
      ok(args.length > 1 ? args : args[0]);
    });
  });
}

// A WebSocket that records the frames the client sends and can be told to
// drop the connection instead of delivering an incoming frame.
export function recordingWebSocket({ sent = [], dropWhen = () => false } = {}) {
  return class RecordingWebSocket {
    constructor(url) {
      this.ws = new WebSocket(url);
      this.ws.onopen = (e) => this.onopen?.(e);
      this.ws.onerror = (e) => this.onerror?.(e);
      this.ws.onclose = (e) => this.onclose?.(e);
      this.ws.onmessage = (e) => {
        if (dropWhen(JSON.parse(e.data))) this.ws.terminate();
        else this.onmessage?.(e);
      };
    }

    get readyState() {
      return this.ws.readyState;
    }

    send(data) {
      sent.push(JSON.parse(data));
      this.ws.send(data);
    }

    close(code, reason) {
      this.ws.close(code, reason);
    }
  };
}

// Enough of EventSource for the client, over fetch: named events, open,
// error, close. It never reconnects by itself (the client does).
export class TestEventSource {
  #listeners = new Map();
  #abort = new AbortController();

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.#run();
  }

  addEventListener(type, fn) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, []);
    this.#listeners.get(type).push(fn);
  }

  close() {
    this.readyState = 2;
    this.#abort.abort();
  }

  async #run() {
    try {
      const res = await fetch(this.url, { signal: this.#abort.signal });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      this.readyState = 1;
      this.onopen?.({});
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.#dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
      throw new Error('stream ended');
    } catch (err) {
      if (this.readyState === 2) return;
      this.readyState = 2;
      this.onerror?.(err);
    }
  }

  #dispatch(block) {
    let type = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (colon === 0) continue;
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      if (field === 'data') data.push(value);
    }
    if (!data.length || this.readyState === 2) return;
    for (const fn of this.#listeners.get(type) ?? []) fn({ type, data: data.join('\n') });
  }
}
