// The client against the real switchboard binary (SWITCHBOARD_BIN, default
// <repo>/build/switchboard): every test starts its own node.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SwitchboardClient, memoryStore } from '../src/index.js';
import {
  Node, TestEventSource, WebSocket, api, nextEvent, recordingWebSocket, sleep, token, uniqueRoom, until,
} from './helpers.js';

async function startNode(t, config) {
  const node = await new Node(config).start();
  t.after(() => node.cleanup());
  return node;
}

// A client on one chat room that records every event the app is given.
function chatClient(t, node, room, userId, options = {}) {
  const client = new SwitchboardClient({
    url: node.url,
    path: `/ws/chat/${room}/`,
    getToken: () => token(userId, { channels: [`chat:${room}`] }),
    WebSocket,
    backoff: { min: 50, max: 500 },
    ...options,
  });
  client.got = [];
  client.on('event', (e) => client.got.push(e));
  t.after(() => client.close());
  return client;
}

// A node and a first client on a room, with positions in a store that a
// later client can pick up.
async function firstVisit(t, config) {
  const node = await startNode(t, config);
  const room = uniqueRoom();
  const store = memoryStore();
  const first = chatClient(t, node, room, 2, { store });
  await nextEvent(first, 'connected');
  return { node, room, store, first };
}

const note = (node, room, data) => api(node, 'POST', '/api/publish', { channel: `chat:${room}`, type: 'note', data });

// A chat client whose getToken records why it was asked.
function recordingTokens(t, node, room, userId, tokenFor) {
  const reasons = [];
  const client = chatClient(t, node, room, userId, {
    getToken: ({ reason }) => {
      reasons.push(reason);
      return tokenFor(reason);
    },
  });
  return { client, reasons };
}

const texts = (client) => client.got.filter((e) => e.type === 'message').map((e) => e.content);

test('publish resolves with the ack, and an error rejects', async (t) => {
  const node = await startNode(t);
  const room = uniqueRoom();
  const client = chatClient(t, node, room, 1);
  await nextEvent(client, 'connected');
  const ack = await client.publish(null, 'hello');
  assert.equal(ack.type, 'ack');
  assert.equal(ack.event_id, 1);
  await assert.rejects(client.publish(null, 'x'.repeat(2001)), { name: 'SwitchboardError', code: 'invalid_message' });
  await assert.rejects(client.react(null, 999, '👍'), { code: 'not_found' });
  const reaction = await client.react(null, 1, '👍');
  assert.equal(reaction.event_id, 2);
  await until(() => client.got.length === 2, 'both events');
  assert.deepEqual(client.got.map((e) => e.type), ['message', 'reaction']);
});

test('a node killed with SIGKILL and restarted: nothing lost or doubled', async (t) => {
  const node = await startNode(t);
  const room = uniqueRoom();
  const sender = chatClient(t, node, room, 1);
  const reader = chatClient(t, node, room, 2);
  await Promise.all([nextEvent(sender, 'connected'), nextEvent(reader, 'connected')]);
  let reconnects = 0;
  reader.on('connected', () => reconnects++);
  const sent = [];
  const acks = [];
  for (let i = 0; i < 40; i++) {
    const text = `m${i}`;
    sent.push(text);
    acks.push(sender.publish(null, text));
    if (i === 15) {
      await node.kill9();
      await sleep(300);
      await node.start();
    }
    await sleep(10);
  }
  const results = await Promise.all(acks);
  const ids = results.map((a) => a.event_id);
  assert.equal(new Set(ids).size, 40, 'each message stored once');
  await until(() => texts(reader).length >= 40 && texts(sender).length >= 40, 'every message');
  await sleep(200);
  assert.equal(reconnects, 1, 'the reader reconnected once');
  for (const client of [reader, sender]) {
    assert.deepEqual(texts(client), sent, 'every message once, in order');
    const eventIds = client.got.map((e) => e.event_id);
    assert.deepEqual(eventIds, [...eventIds].sort((a, b) => a - b));
  }
});

test('resume across a node restart from stored positions', async (t) => {
  const { node, room, store, first } = await firstVisit(t);
  for (let i = 0; i < 3; i++) await note(node, room, { i });
  await until(() => first.got.length === 3, 'the first three');
  first.close();
  for (let i = 3; i < 6; i++) await note(node, room, { i });
  await node.stop();
  await node.start();
  const second = chatClient(t, node, room, 2, { store });
  await until(() => second.got.length === 3, 'the three missed');
  await sleep(200);
  assert.deepEqual(second.got.map((e) => e.data.i), [3, 4, 5]);
  assert.ok(second.got.every((e) => e.replayed === true));
  await note(node, room, { i: 6 });
  await until(() => second.got.length === 4, 'the live one');
  assert.deepEqual(second.positions[`chat:${room}`].lastEventId, 7);
});

test('a reset channel (new epoch) calls onGap, then delivers live events', async (t) => {
  const { node, room, store, first } = await firstVisit(t);
  await first.publish(null, 'before');
  await until(() => first.got.length === 1);
  const oldEpoch = first.positions[`chat:${room}`].epoch;
  first.close();
  await node.stop();
  node.wipe();
  await node.start();
  const gaps = [];
  const second = chatClient(t, node, room, 2, { store, onGap: (channel, info) => gaps.push([channel, info.reason]) });
  await nextEvent(second, 'connected');
  assert.deepEqual(gaps, [[`chat:${room}`, 'epoch']]);
  assert.notEqual(second.positions[`chat:${room}`].epoch, oldEpoch);
  await second.publish(null, 'after');
  await until(() => second.got.length === 1);
  assert.equal(second.got[0].content, 'after');
});

test('events trimmed by retention while away: onGap with reason retention', async (t) => {
  const { node, room, store, first } = await firstVisit(t, { namespaces: { chat: { access: 'members', history_size: 2 } } });
  await first.publish(null, 'seen');
  first.close();
  for (let i = 0; i < 6; i++) await note(node, room, { i });
  await sleep(2500); // the retention pass runs every second
  const gaps = [];
  const second = chatClient(t, node, room, 2, { store, onGap: (channel, info) => gaps.push(info.reason) });
  await until(() => gaps.length === 1, 'a gap');
  assert.deepEqual(gaps, ['retention']);
});

test('an unacknowledged send is resent with the same id and stored once', async (t) => {
  const node = await startNode(t);
  const room = uniqueRoom();
  const sent = [];
  let dropped = 0;
  // The first ack never reaches the client: the connection drops instead.
  const Dropping = recordingWebSocket({ sent, dropWhen: (f) => f.type === 'ack' && dropped++ === 0 });
  const client = chatClient(t, node, room, 1, { WebSocket: Dropping });
  await nextEvent(client, 'connected');
  const ack = await client.publish(null, 'once');
  const messages = sent.filter((f) => f.type === 'message');
  assert.equal(messages.length, 2, 'sent twice');
  assert.equal(messages[0].id, messages[1].id, 'with the same id');
  assert.equal(ack.event_id, 1, 'the ack of the resend names the first event');
  const { body } = await api(node, 'GET', `/api/history?channel=chat:${room}`);
  assert.equal(body.events.length, 1, 'stored once');
  await sleep(200);
  assert.deepEqual(texts(client), ['once']);
});

test('backoff: full jitter within the bounds, reset after a success', async (t) => {
  const node = await startNode(t);
  const port = node.port;
  await node.stop();
  const client = new SwitchboardClient({
    url: `http://127.0.0.1:${port}`,
    path: '/ws/leaderboard/',
    getToken: () => token(1),
    WebSocket,
    backoff: { min: 100, max: 400 },
  });
  t.after(() => client.close());
  const waits = [];
  let lastDown = null;
  client.on('disconnected', (d) => (lastDown = { at: Date.now(), delay: d.delay }));
  client.on('connecting', () => lastDown && waits.push({ ...lastDown, waited: Date.now() - lastDown.at }));
  await until(() => waits.length >= 6, 'six retries');
  const caps = [100, 200, 400, 400, 400, 400];
  waits.slice(0, 6).forEach((w, i) => {
    assert.ok(w.delay >= 0 && w.delay <= caps[i], `retry ${i}: delay ${w.delay} within [0, ${caps[i]}]`);
    assert.ok(w.waited >= w.delay - 5, `retry ${i} waited ${w.waited} >= ${w.delay}`);
    // Loose: a loaded machine delays timers and failed connects take time too.
    assert.ok(w.waited <= w.delay + 1000, `retry ${i} waited ${w.waited}, not much over ${w.delay}`);
  });
  const back = nextEvent(client, 'connected');
  await node.start();
  await back;
  const again = nextEvent(client, 'disconnected');
  await node.stop();
  const d = await again;
  assert.ok(d.delay <= 100, `after a success the backoff starts again (${d.delay})`);
});

test('a kicked client (4005) stops; an auth failure retries only with a fresh token', async (t) => {
  const node = await startNode(t);
  const room = uniqueRoom();
  const kicked = chatClient(t, node, room, 7);
  await nextEvent(kicked, 'connected');
  const closed = nextEvent(kicked, 'closed');
  await api(node, 'POST', '/api/disconnect', { user_id: 7 });
  assert.equal((await closed).code, 4005);
  await sleep(300);
  assert.equal(kicked.state, 'closed');

  const reasons = [];
  const stale = token(8, { ttl: -10, channels: [`chat:${room}`] });
  const refused = new SwitchboardClient({
    url: node.url,
    path: `/ws/chat/${room}/`,
    WebSocket,
    backoff: { min: 50, max: 100 },
    getToken: ({ reason }) => {
      reasons.push(reason);
      return reasons.length < 3 ? stale : token(8, { channels: [`chat:${room}`] });
    },
  });
  t.after(() => refused.close());
  await nextEvent(refused, 'closed');
  assert.deepEqual(reasons, ['connect', 'auth_failed'], 'the same refused token is not tried again');
  refused.connect();
  await nextEvent(refused, 'connected');
});

test('the token is refreshed on the live socket before it expires', async (t) => {
  const node = await startNode(t);
  const room = uniqueRoom();
  const { client, reasons } = recordingTokens(t, node, room, 3, () => token(3, { ttl: 3, channels: [`chat:${room}`] }));
  await nextEvent(client, 'connected');
  let drops = 0;
  client.on('disconnected', () => drops++);
  await sleep(7000);
  assert.equal(drops, 0, 'the socket outlived its first tokens');
  assert.ok(reasons.filter((r) => r === 'refresh').length >= 2, `refreshed: ${reasons}`);
  assert.equal((await client.publish(null, 'still here')).event_id, 1);
});

test('a refused refresh: closed with 4003 at expiry, then back with a fresh token', async (t) => {
  const node = await startNode(t);
  const room = uniqueRoom();
  // For the refresh, another user's token: refused.
  const { client, reasons } = recordingTokens(t, node, room, 4, (reason) =>
    token(reason === 'refresh' ? 5 : 4, { ttl: reason === 'connect' ? 4 : 3600, channels: [`chat:${room}`] }));
  await nextEvent(client, 'connected');
  const [error, down] = await Promise.all([nextEvent(client, 'error'), nextEvent(client, 'disconnected')]);
  assert.equal(error.code, 'forbidden');
  assert.equal(down.code, 4003);
  await nextEvent(client, 'connected');
  assert.deepEqual(reasons, ['connect', 'refresh', 'auth_failed']);
});

test('the multiplex route resubscribes from positions after a restart', async (t) => {
  const node = await startNode(t);
  const a = `chat:${uniqueRoom('a')}`;
  const b = `chat:${uniqueRoom('b')}`;
  const client = new SwitchboardClient({
    url: node.url,
    getToken: () => token(9, { channels: [a, b] }),
    channels: [a],
    WebSocket,
    backoff: { min: 50, max: 200 },
  });
  t.after(() => client.close());
  const got = [];
  client.on('event', (e) => got.push(`${e.channel}#${e.event_id}`));
  await nextEvent(client, 'subscribed');
  assert.equal((await client.subscribe(b)).channel, b);
  await client.publish(a, 'a1');
  await client.publish(b, 'b1');
  const back = nextEvent(client, 'connected');
  await node.kill9();
  await node.start();
  await api(node, 'POST', '/api/publish', { channel: a, type: 'note', data: {} });
  await back;
  await client.publish(b, 'b2');
  await until(() => got.length === 4, 'four events');
  await sleep(200);
  assert.deepEqual(got.sort(), [`${a}#1`, `${a}#2`, `${b}#1`, `${b}#2`].sort());
});

test('SSE fallback: same positions, replay on a new stream, reconnect at token expiry', async (t) => {
  const node = await startNode(t);
  const user = 11;
  const store = memoryStore();
  const open = (ttl) => {
    const c = new SwitchboardClient({
      url: node.url,
      path: '/ws/updates/',
      transport: 'sse',
      EventSource: TestEventSource,
      getToken: () => token(user, { ttl }),
      store,
      backoff: { min: 50, max: 200 },
      sseEventTypes: ['grade_update'],
    });
    c.got = [];
    c.on('event', (e) => c.got.push(e.data.n));
    t.after(() => c.close());
    return c;
  };
  const publish = (n) => api(node, 'POST', '/api/publish', { channel: `user:${user}`, type: 'grade_update', data: { n } });
  const first = open(3600);
  await nextEvent(first, 'connected');
  assert.equal(first.transport, 'sse');
  await publish(1);
  await publish(2);
  await until(() => first.got.length === 2);
  await assert.rejects(first.publish('user:11', 'x'), { code: 'unsupported' });
  first.close();
  await publish(3);
  await publish(4);
  const second = open(2);
  const expired = nextEvent(second, 'disconnected');
  await until(() => second.got.length === 2, 'the two missed');
  const down = await expired;
  assert.equal(down.code, 4003, 'the stream ends when its token expires');
  await publish(5);
  await until(() => second.got.length === 3, 'the one after the expiry');
  assert.deepEqual(second.got, [3, 4, 5]);
});
