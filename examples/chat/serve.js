#!/usr/bin/env node
// Serves the demo chat page and mints development tokens for it.
//
//   node examples/chat/serve.js [--port 3000] [--node http://127.0.0.1:8000] [--config configs/dev.json]
//
// With a node started by tools/run-node.sh, open http://127.0.0.1:3000/?user=alice
// and http://127.0.0.1:3000/?user=bob. Port 3000 is one of configs/dev.json's
// http.allowed_origins. Tokens are signed with the config's auth.jwt_secret
// (or SWITCHBOARD_JWT_SECRET): development only, a real app's backend mints them.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const roots = { '/client/': join(repo, 'clients/js/src'), '/': here };
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.ts': 'text/plain' };

export function sign(claims, secret) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

// The secret of a Switchboard config file (JSON with // comments).
export function secretOf(configPath) {
  const text = readFileSync(configPath, 'utf8').replace(/^\s*\/\/.*$/gm, '');
  return JSON.parse(text).auth.jwt_secret;
}

// Starts the page server. `options.node` is the node's URL (it may be
// changed later through the returned object's `node` property).
export function serve({ port = 3000, host = '127.0.0.1', node, secret, tokenTtl = 600 }) {
  const state = { node };
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/config.json') return json(res, { node: state.node });
    if (url.pathname === '/token') {
      const user = (url.searchParams.get('user') || 'guest').slice(0, 32);
      const room = url.searchParams.get('room') || 'lobby';
      const token = sign({
        user_id: user, name: user[0].toUpperCase() + user.slice(1), channels: [`chat:${room}`],
        token_type: 'access', exp: Math.floor(Date.now() / 1000) + tokenTtl,
      }, secret);
      return json(res, { token });
    }
    const prefix = Object.keys(roots).find((p) => url.pathname.startsWith(p));
    const rel = url.pathname === '/' ? 'index.html' : url.pathname.slice(prefix.length);
    const file = normalize(join(roots[prefix], rel));
    if (!file.startsWith(roots[prefix])) return notFound(res);
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
      res.end(body);
    } catch {
      notFound(res);
    }
  });
  return new Promise((ok) => {
    server.listen(port, host, () => {
      state.port = server.address().port;
      state.url = `http://${host}:${state.port}`;
      state.close = () => new Promise((done) => server.close(done));
      ok(state);
    });
  });
}

function json(res, body) {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

function notFound(res) {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found');
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const config = arg('config', join(repo, 'configs/dev.json'));
  const secret = process.env.SWITCHBOARD_JWT_SECRET ?? secretOf(config);
  const s = await serve({ port: Number(arg('port', 3000)), node: arg('node', 'http://127.0.0.1:8000'), secret });
  console.log(`chat demo on ${s.url}/?user=alice (and ?user=bob in another window), node ${s.node}`);
}
