// The client's pure parts, without a server.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  SwitchboardClient, backoffCap, backoffDelay, closePolicy, memoryStore, refreshDelay, tokenExpiry,
} from '../src/index.js';
import { mint } from './helpers.js';

test('backoff: full jitter between 0 and min * 2^n, capped at max', () => {
  const options = { min: 100, max: 1000 };
  assert.deepEqual([0, 1, 2, 3, 4, 10, 100].map((n) => backoffCap(n, options)), [100, 200, 400, 800, 1000, 1000, 1000]);
  assert.equal(backoffDelay(3, options, () => 0), 0);
  assert.equal(backoffDelay(3, options, () => 0.999999), 799);
  assert.equal(backoffDelay(2, options, () => 0.5), 200);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(i % 8, options);
    assert.ok(d >= 0 && d < backoffCap(i % 8, options));
  }
});

test('close codes: auth failures, stops, retries', () => {
  assert.deepEqual([4001, 4002, 4003].map(closePolicy), ['auth', 'auth', 'auth']);
  assert.deepEqual([4004, 4005].map(closePolicy), ['stop', 'stop']);
  assert.deepEqual([1000, 1001, 1006, 1009, 4000, 4008, 4009].map(closePolicy), Array(7).fill('retry'));
});

test('refresh: 30 s before exp, a tenth of the life when shorter, robust to a skewed clock', () => {
  const now = 1_800_000_000;
  assert.equal(tokenExpiry(mint({ exp: now + 600 })), now + 600);
  assert.equal(tokenExpiry('not a token'), null);
  assert.equal(refreshDelay(mint({ exp: now + 600 }), now), 570_000);
  assert.equal(refreshDelay(mint({ exp: now + 100 }), now), 90_000);
  assert.equal(refreshDelay(mint({ user_id: 1 }), now), null);
  // This clock is 10 minutes ahead: the token's own life (exp - iat) counts.
  assert.equal(refreshDelay(mint({ iat: now - 600, exp: now - 300 }), now), 270_000);
  // ...or 10 minutes behind.
  assert.equal(refreshDelay(mint({ iat: now + 600, exp: now + 900 }), now), 270_000);
  assert.equal(refreshDelay(mint({ exp: now - 5 }), now), 1000, 'never a loop');
});

test('memoryStore has localStorage\'s interface', () => {
  const s = memoryStore();
  assert.equal(s.getItem('k'), null);
  s.setItem('k', 1);
  assert.equal(s.getItem('k'), '1');
  s.removeItem('k');
  assert.equal(s.getItem('k'), null);
});

// A WebSocket that never opens.
class SilentWebSocket {
  readyState = 0;
  close() {}
}

test('handlers added right after the constructor see the first connecting', async () => {
  const urls = [];
  const client = new SwitchboardClient({
    url: 'https://rt.example:8443',
    path: '/ws/chat/lobby/',
    getToken: () => 'tok',
    WebSocket: class extends SilentWebSocket {
      constructor(url) {
        super();
        urls.push(url);
      }
    },
  });
  const states = [];
  client.on('state', (s) => states.push(s));
  await new Promise((ok) => setTimeout(ok, 10));
  client.close();
  assert.deepEqual(states, ['connecting', 'closed']);
  assert.deepEqual(urls, ['wss://rt.example:8443/ws/chat/lobby/?token=tok']);
});

test('requests queued while disconnected are bounded', async () => {
  const client = new SwitchboardClient({ url: 'http://x', getToken: () => 't', WebSocket: SilentWebSocket, maxPending: 2 });
  const queued = [client.publish('chat:a', 'one'), client.publish('chat:a', 'two')];
  await assert.rejects(client.publish('chat:a', 'three'), { code: 'queue_full' });
  client.close();
  for (const p of queued) await assert.rejects(p, { code: 'closed' });
});
