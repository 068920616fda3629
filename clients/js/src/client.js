// The Switchboard client: one connection to a node (WebSocket, or SSE as a
// fallback) that reconnects with backoff, resumes every channel from the
// last event the app got, never delivers an event twice, matches answers to
// requests, resends unacknowledged sends and refreshes its token in time.
// The wire contract is docs/protocol.md.
import { backoffDelay } from './backoff.js';
import { Emitter } from './emitter.js';
import { Positions } from './positions.js';
import { refreshDelay } from './token.js';
import { openEventSource, openWebSocket } from './transports.js';

// Requests still unanswered when a connection drops are sent again on the
// next one, with the same id: stored events (the server deduplicates them
// by id), reads (history, presence, ping) and notification filters.
// Subscriptions are renewed by the client itself; anything else (refresh,
// unsubscribe) is rejected with `disconnected`.
const RESENT_FRAMES = new Set(['message', 'read', 'reaction', 'delete', 'history', 'presence', 'ping']);

function resendable(frame) {
  return RESENT_FRAMES.has(frame.type) || (frame.notification_types !== undefined);
}

function isChannelSubscribe(frame) {
  return frame.type === 'subscribe' && frame.channel !== undefined;
}

export class SwitchboardError extends Error {
  constructor(code, message, frame) {
    super(message || code);
    this.name = 'SwitchboardError';
    this.code = code;
    this.frame = frame;
  }
}

// What to do after the server closed the connection with `code`:
// 'auth' (retry only with a fresh token), 'stop', or 'retry' (with backoff).
export function closePolicy(code) {
  if (code === 4001 || code === 4002 || code === 4003) return 'auth';
  if (code === 4004 || code === 4005) return 'stop';
  return 'retry';
}

export class SwitchboardClient extends Emitter {
  #o;
  #state = 'idle';
  #transport = null;
  #useSse;
  #wsFailures = 0;
  #attempt = 0;
  #generation = 0;
  #timers = new Set();
  #refreshTimer = null;
  #greetingTimer = null;
  #token = null;
  #refusedToken = null;
  #idPrefix = Math.random().toString(36).slice(2, 10);
  #nextId = 1;
  #pending = new Map(); // id -> {frame, resolve, reject}
  #subscriptions = new Set(); // multiplex route: channels to keep subscribed
  #notificationTypes = new Set(); // /ws/notifications/: the filter to renew
  #replaying = new Map(); // channel -> live events held until its replay completes
  #lastTyping = new Map(); // channel -> {at, isTyping}
  #positions;

  constructor(options) {
    super();
    if (!options || typeof options.getToken !== 'function') throw new TypeError('getToken is required');
    if (!options.url) throw new TypeError('url is required');
    const path = options.path ?? '/ws/';
    this.#o = {
      path,
      transport: 'auto',
      WebSocket: globalThis.WebSocket,
      EventSource: globalThis.EventSource,
      backoff: {},
      random: Math.random,
      store: null,
      storeKey: `switchboard:positions:${path}`,
      typingInterval: 2000,
      refreshMargin: 30,
      greetingTimeout: 15000,
      maxPending: 1000,
      sseEventTypes: [],
      ...options,
    };
    this.#o.backoff = { min: 500, max: 30000, ...this.#o.backoff };
    this.#positions = new Positions(this.#o.store, this.#o.storeKey);
    for (const ch of this.#o.channels ?? []) this.#subscriptions.add(ch);
    const wsAvailable = typeof this.#o.WebSocket === 'function';
    this.#useSse = this.#o.transport === 'sse' || (this.#o.transport === 'auto' && !wsAvailable);
    // After the caller had a chance to add its handlers.
    if (this.#o.autoConnect !== false) queueMicrotask(() => this.connect());
  }

  get state() {
    return this.#state;
  }

  get transport() {
    return this.#useSse ? 'sse' : 'websocket';
  }

  // {channel: {epoch, lastEventId}} of what the app has been given.
  get positions() {
    return this.#positions.toJSON();
  }

  connect() {
    if (this.#state !== 'idle' && this.#state !== 'closed') return;
    this.#attempt = 0;
    this.#open('connect');
  }

  // Closes for good: pending requests are rejected, nothing reconnects.
  close() {
    this.#finish(1000, 'closed by the client');
  }

  // ---- sending ------------------------------------------------------------

  // Sends a frame and resolves with the server's answer (`ack`, `history`,
  // `presence`, `pong`, ...), or rejects with a SwitchboardError. Frames
  // sent while disconnected wait for the connection.
  request(frame) {
    if (this.#state === 'closed') return Promise.reject(new SwitchboardError('closed', 'the client is closed'));
    if (this.#useSse) return Promise.reject(new SwitchboardError('unsupported', 'SSE connections only receive'));
    if (this.#pending.size >= this.#o.maxPending)
      return Promise.reject(new SwitchboardError('queue_full', `${this.#pending.size} requests await an answer`));
    return this.#track({ ...frame, id: frame.id ?? this.#newId() }, this.#state === 'connected');
  }

  #newId() {
    return `${this.#idPrefix}-${this.#nextId++}`;
  }

  #track(frame, sendNow) {
    return new Promise((resolve, reject) => {
      const entry = { frame, resolve, reject, sent: false };
      this.#pending.set(frame.id, entry);
      if (sendNow) entry.sent = this.#transport.send(frame);
    });
  }

  publish(channel, payload, extra = {}) {
    const body = typeof payload === 'string' ? { message: payload } : payload;
    return this.request(withChannel({ type: 'message', ...body, ...extra }, channel));
  }

  read(channel, messageId) {
    return this.request(withChannel({ type: 'read', message_id: messageId }, channel));
  }

  react(channel, messageId, emoji, action = 'add') {
    return this.request(withChannel({ type: 'reaction', message_id: messageId, emoji, action }, channel));
  }

  deleteMessage(channel, messageId) {
    return this.request(withChannel({ type: 'delete', message_id: messageId }, channel));
  }

  presence(channel) {
    return this.request(withChannel({ type: 'presence' }, channel));
  }

  // Resolves with the `history` frame: {channel, events (oldest first), has_more}.
  history(channel, { before, limit } = {}) {
    const frame = withChannel({ type: 'history' }, channel);
    if (before !== undefined) frame.before = before;
    if (limit !== undefined) frame.limit = limit;
    return this.request(frame);
  }

  // Typing indicators, throttled: a `true` goes out at most once per
  // typingInterval per channel; a change to `false` goes at once.
  typing(channel, isTyping = true) {
    if (this.#state !== 'connected') return false;
    const key = channel ?? '';
    const last = this.#lastTyping.get(key);
    const now = Date.now();
    if (last && last.isTyping === isTyping && (!isTyping || now - last.at < this.#o.typingInterval)) return false;
    this.#lastTyping.set(key, { at: now, isTyping });
    return this.#transport.send(withChannel({ type: 'typing', is_typing: isTyping }, channel));
  }

  // Multiplex route (/ws/): joins `channel`, now and after every reconnect,
  // resuming from its position. Resolves with the `subscribed` frame.
  subscribe(channel) {
    if (this.#state === 'closed') return Promise.reject(new SwitchboardError('closed', 'the client is closed'));
    this.#subscriptions.add(channel);
    const frame = { type: 'subscribe', channel, id: this.#newId() };
    const answered = this.#track(frame, false);
    if (this.#state === 'connected') this.#sendSubscribe(frame);
    return answered;
  }

  unsubscribe(channel) {
    this.#subscriptions.delete(channel);
    this.#replaying.delete(channel);
    return this.request({ type: 'unsubscribe', channel });
  }

  // /ws/notifications/: deliver only these notification types (adds to the set).
  filterNotifications(types) {
    for (const t of types) this.#notificationTypes.add(t);
    return this.request({ type: 'subscribe', notification_types: types });
  }

  unfilterNotifications(types) {
    for (const t of types) this.#notificationTypes.delete(t);
    return this.request({ type: 'unsubscribe', notification_types: types });
  }

  // ---- connection lifecycle -----------------------------------------------

  async #open(reason) {
    const generation = ++this.#generation;
    this.#setState('connecting', { attempt: this.#attempt, transport: this.transport });
    let token;
    try {
      token = await this.#o.getToken({ reason });
    } catch (err) {
      if (generation === this.#generation) this.#lost(0, `getToken failed: ${err?.message ?? err}`);
      return;
    }
    if (generation !== this.#generation) return;
    if (token && token === this.#refusedToken) {
      this.#finish(4003, 'the token was refused and getToken gave no fresh one');
      return;
    }
    this.#token = token;
    const handlers = {
      frame: (f) => generation === this.#generation && this.#onFrame(f),
      close: (code, why) => generation === this.#generation && this.#onClose(code, why),
    };
    try {
      this.#transport = this.#useSse
        ? openEventSource(this.#o.EventSource, this.#sseUrl(token), handlers, this.#o.sseEventTypes)
        : openWebSocket(this.#o.WebSocket, this.#wsUrl(token), handlers);
    } catch (err) {
      this.#lost(1006, `cannot open: ${err?.message ?? err}`);
      return;
    }
    this.#greetingTimer = this.#after(this.#o.greetingTimeout, () => {
      this.#transport?.close();
      this.#onClose(1006, 'no connection_established in time');
    });
  }

  #onClose(code, reason) {
    this.#clearConnectionTimers();
    this.#transport = null;
    const dropped = new SwitchboardError('disconnected', `connection lost: ${code} ${reason}`);
    for (const [id, p] of this.#pending) {
      if (!p.sent || resendable(p.frame) || isChannelSubscribe(p.frame)) continue;
      this.#pending.delete(id);
      p.reject(dropped);
    }
    const wasConnected = this.#state === 'connected';
    if (!wasConnected && !this.#useSse && ++this.#wsFailures >= 3 && this.#sseFallbackPossible()) {
      this.#useSse = true;
    }
    const policy = closePolicy(code);
    if (policy === 'stop') {
      this.#finish(code, reason);
      return;
    }
    if (policy === 'auth') this.#refusedToken = this.#token;
    this.#lost(code, reason);
  }

  // The connection is gone: retry after a backoff delay.
  #lost(code, reason) {
    const delay = backoffDelay(this.#attempt, this.#o.backoff, this.#o.random);
    this.#attempt++;
    this.#setState('disconnected', { code, reason, delay });
    this.#after(delay, () => this.#open(closePolicy(code) === 'auth' ? 'auth_failed' : 'reconnect'));
  }

  #finish(code, reason) {
    if (this.#state === 'closed') return;
    this.#generation++;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#transport?.close();
    this.#transport = null;
    this.#setState('closed', { code, reason });
    const err = new SwitchboardError('closed', `connection closed: ${code} ${reason}`);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #setState(state, detail) {
    this.#state = state;
    this.emit('state', state, detail);
    if (state !== 'connected') this.emit(state, detail);
  }

  #after(ms, fn) {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  #cancel(timer) {
    if (timer === null) return;
    clearTimeout(timer);
    this.#timers.delete(timer);
  }

  #clearConnectionTimers() {
    this.#cancel(this.#greetingTimer);
    this.#cancel(this.#refreshTimer);
    this.#greetingTimer = this.#refreshTimer = null;
  }

  #sseFallbackPossible() {
    return this.#o.transport === 'auto' && typeof this.#o.EventSource === 'function' && isUpdatesRoute(this.#o.path);
  }

  #wsUrl(token) {
    const u = new URL(this.#o.path, this.#o.url);
    u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
    u.searchParams.set('token', token);
    return u.toString();
  }

  // SSE carries the positions in the URL: a new EventSource cannot set
  // Last-Event-ID, and each reconnect may bring a new token.
  #sseUrl(token) {
    const u = new URL('/api/events', this.#o.url);
    u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
    u.searchParams.set('token', token);
    const known = this.#positions.entries().map(([ch, p]) => `${ch}=${p.lastEventId}`);
    if (known.length) u.searchParams.set('last_event_id', known.join(','));
    return u.toString();
  }

  // ---- incoming frames ----------------------------------------------------

  #onFrame(f) {
    if (typeof f.event_id === 'number' && typeof f.channel === 'string' && f.type !== 'ack') {
      this.#onStoredEvent(f);
      return;
    }
    switch (f.type) {
      case 'connection_established':
        this.#onEstablished(f);
        return;
      case 'replay_complete':
        this.#onReplayComplete(f);
        return;
      case 'subscribed':
        if (!this.#positions.get(f.channel)) this.#positions.set(f.channel, f.epoch, f.last_event_id);
        this.#settle(f);
        this.emit('subscribed', f);
        return;
      case 'refreshed':
        this.#settle(f);
        return;
      case 'error':
        if (!this.#settle(f)) this.emit('error', new SwitchboardError(f.code, f.message, f));
        return;
      default:
        this.#settle(f);
        this.emit(f.type, f);
    }
  }

  #onEstablished(f) {
    this.#cancel(this.#greetingTimer);
    this.#greetingTimer = null;
    this.#attempt = 0;
    this.#wsFailures = 0;
    this.#refusedToken = null;
    this.#replaying.clear();
    this.#lastTyping.clear();
    this.#state = 'connected';
    this.emit('state', 'connected', f);
    this.emit('connected', f);
    this.#resume(f.channels ?? []);
    this.#renewSubscriptions();
    for (const p of this.#pending.values())
      if (!isChannelSubscribe(p.frame)) p.sent = this.#transport.send(p.frame);
    this.#scheduleRefresh();
  }

  // The route's channels: replay what the app missed, or report a gap when
  // the channel's history is not the one the position refers to.
  #resume(channels) {
    const missed = {};
    for (const c of channels) {
      const p = this.#positions.get(c.channel);
      if (!p) {
        this.#positions.set(c.channel, c.epoch, c.last_event_id);
      } else if (p.epoch !== undefined && p.epoch !== c.epoch) {
        this.#positions.set(c.channel, c.epoch, c.last_event_id);
        this.#gap(c.channel, 'epoch', c);
        if (this.#useSse) this.#replaying.set(c.channel, []);
      } else if (this.#useSse) {
        // The stream replays from the positions in its URL.
        this.#replaying.set(c.channel, []);
      } else if (p.lastEventId < c.last_event_id) {
        this.#replaying.set(c.channel, []);
        missed[c.channel] = p.lastEventId;
      } else if (p.lastEventId > c.last_event_id) {
        this.#positions.set(c.channel, c.epoch, c.last_event_id);
        this.#gap(c.channel, 'behind', c);
      }
    }
    if (Object.keys(missed).length) this.#transport.send({ type: 'replay_request', positions: missed });
  }

  // After a reconnect: every channel subscribed on the multiplex route
  // again (answering the subscribe requests still waiting), and the
  // notification filter.
  #renewSubscriptions() {
    const waiting = new Map();
    for (const p of this.#pending.values()) if (isChannelSubscribe(p.frame)) waiting.set(p.frame.channel, p.frame);
    for (const channel of this.#subscriptions)
      this.#sendSubscribe(waiting.get(channel) ?? { type: 'subscribe', channel, id: this.#newId() });
    if (this.#notificationTypes.size)
      this.#transport.send({ type: 'subscribe', notification_types: [...this.#notificationTypes] });
  }

  // Subscribes from the channel's position, if it has one.
  #sendSubscribe(frame) {
    const p = this.#positions.get(frame.channel);
    const full = { ...frame };
    if (p) {
      full.since = p.lastEventId;
      if (p.epoch !== undefined) full.epoch = p.epoch;
      this.#replaying.set(frame.channel, []);
    }
    const entry = this.#pending.get(frame.id);
    const sent = this.#transport.send(full);
    if (entry) entry.sent = sent;
  }

  #onStoredEvent(f) {
    const held = this.#replaying.get(f.channel);
    if (held && !f.replayed) {
      held.push(f);
      return;
    }
    this.#deliver(f);
  }

  #deliver(f) {
    if (!this.#positions.advance(f.channel, f.event_id)) return;
    this.emit('event', f);
    this.emit(f.type, f);
  }

  #onReplayComplete(f) {
    const held = this.#replaying.get(f.channel) ?? [];
    this.#replaying.delete(f.channel);
    const p = this.#positions.get(f.channel);
    if (f.gap) {
      this.#positions.set(f.channel, f.epoch, f.last_event_id);
      this.#gap(f.channel, p?.epoch !== undefined && p.epoch !== f.epoch ? 'epoch' : 'retention', f);
    } else if (p && p.epoch === undefined) {
      this.#positions.set(f.channel, f.epoch, p.lastEventId);
    }
    for (const e of held) this.#deliver(e);
    this.#settle(f);
    this.emit('replay_complete', f);
  }

  #gap(channel, reason, frame) {
    const info = { channel, reason, epoch: frame.epoch, lastEventId: frame.last_event_id };
    this.emit('gap', info);
    this.#o.onGap?.(channel, info);
  }

  // Resolves or rejects the request the frame answers; false when none.
  #settle(f) {
    if (f.id === undefined || !this.#pending.has(f.id)) return false;
    const p = this.#pending.get(f.id);
    this.#pending.delete(f.id);
    if (f.type === 'error') p.reject(new SwitchboardError(f.code, f.message, f));
    else p.resolve(f);
    return true;
  }

  // ---- token refresh ------------------------------------------------------

  #scheduleRefresh() {
    this.#cancel(this.#refreshTimer);
    this.#refreshTimer = null;
    const delay = refreshDelay(this.#token, Date.now() / 1000, this.#o.refreshMargin);
    if (this.#useSse || delay === null) return;
    this.#refreshTimer = this.#after(delay, () => this.#refresh());
  }

  async #refresh() {
    this.#refreshTimer = null;
    const generation = this.#generation;
    let token;
    try {
      token = await this.#o.getToken({ reason: 'refresh' });
    } catch (err) {
      this.emit('error', new SwitchboardError('refresh_failed', `getToken failed: ${err?.message ?? err}`));
      return;
    }
    if (generation !== this.#generation || this.#state !== 'connected') return;
    try {
      await this.request({ type: 'refresh', token });
      this.#token = token;
      this.#scheduleRefresh();
    } catch (err) {
      // The old token's expiry stays in force: the server closes with 4003
      // then, and the reconnect asks getToken again.
      this.emit('error', err);
    }
  }
}

function withChannel(frame, channel) {
  return channel ? { ...frame, channel } : frame;
}

function isUpdatesRoute(path) {
  return /^\/ws\/updates\/?$/.test(path);
}
