// The demo chat page: everything goes through switchboard-client (served by
// serve.js under /client/). The page keeps a model of the room (messages,
// reactions, reads, deletes) built from events, so that history pages and
// live events can arrive in any order and each is applied once.
import { SwitchboardClient } from '/client/index.js';

const params = new URLSearchParams(location.search);
const user = params.get('user') || `guest${Math.floor(Math.random() * 1000)}`;
const room = params.get('room') || 'lobby';
const channel = `chat:${room}`;
const EMOJIS = ['👍', '❤️', '😂'];

const $ = (id) => document.getElementById(id);
$('room').textContent = room;
$('me').textContent = `signed in as ${user}`;

const messages = new Map(); // message_id -> {sender_id, sender_name, content, timestamp, deleted, reactions}
const readUpTo = new Map(); // user_id -> newest message_id read
const names = new Map(); // user_id -> display name
const typists = new Map(); // user_id -> timer
let oldestLoaded = null;
let hasOlder = true;
let loadingOlder = false;
let lastReadSent = 0;

const { node } = await (await fetch('/config.json')).json();
const client = new SwitchboardClient({
  url: node,
  path: `/ws/chat/${room}/`,
  getToken: async () => (await (await fetch(`/token?user=${encodeURIComponent(user)}&room=${encodeURIComponent(room)}`)).json()).token,
  backoff: { min: 300, max: 5000 },
  onGap: () => reload(),
});
window.chat = { client, texts: () => [...$('messages').querySelectorAll('.message .content')].map((e) => e.textContent) };

// ---- connection state -------------------------------------------------------
client.on('state', (state, detail) => {
  const badge = $('state');
  badge.className = `state ${state}`;
  badge.dataset.state = state;
  badge.textContent = state === 'disconnected' ? `reconnecting in ${(detail.delay / 1000).toFixed(1)} s` : state;
});

let firstConnect = true;
client.on('connected', async () => {
  if (firstConnect) {
    firstConnect = false;
    await loadOlder();
  }
  refreshPresence();
});

// ---- events -----------------------------------------------------------------
client.on('event', (e) => {
  apply(e);
  if (e.type === 'message') {
    scrollToEnd();
    markRead();
  }
});
client.on('user_joined', (e) => {
  names.set(String(e.user_id), e.username);
  refreshPresence();
});
client.on('user_left', () => refreshPresence());
client.on('typing', (e) => showTyping(e));

function apply(e) {
  const id = e.message_id;
  switch (e.type) {
    case 'message':
      names.set(String(e.sender_id), e.sender_name);
      messages.set(id, { ...e, reactions: messages.get(id)?.reactions ?? new Map() });
      break;
    case 'delete':
      if (messages.has(id)) messages.get(id).deleted = true;
      break;
    case 'reaction': {
      const m = messages.get(id);
      if (!m) return;
      const who = m.reactions.get(e.emoji) ?? new Set();
      if (e.action === 'remove') who.delete(String(e.user_id));
      else who.add(String(e.user_id));
      m.reactions.set(e.emoji, who);
      break;
    }
    case 'read': {
      const prev = readUpTo.get(String(e.user_id)) ?? 0;
      if (id <= prev) return;
      readUpTo.set(String(e.user_id), id);
      render(prev);
      break;
    }
    default:
      return;
  }
  render(id);
}

// ---- rendering ----------------------------------------------------------------
function render(id) {
  const m = messages.get(id);
  if (!m) return;
  let li = document.querySelector(`[data-id="${id}"]`);
  if (!li) {
    li = document.createElement('li');
    li.dataset.id = id;
    const list = $('messages');
    const next = [...list.children].find((c) => Number(c.dataset.id) > id);
    list.insertBefore(li, next ?? null);
  }
  const mine = String(m.sender_id) === user;
  li.className = `message${mine ? ' mine' : ''}${m.deleted ? ' deleted' : ''}`;
  const time = new Date(m.timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  li.innerHTML = '';
  li.append(
    el('div', 'meta', [el('b', '', m.sender_name), ` · ${time}`]),
    el('div', 'content', m.deleted ? 'message deleted' : m.content),
  );
  if (!m.deleted) {
    const reactions = el('div', 'reactions');
    for (const [emoji, who] of m.reactions) {
      if (!who.size) continue;
      const b = el('button', who.has(user) ? 'on' : '', `${emoji} ${who.size}`);
      b.onclick = () => client.react(null, id, emoji, who.has(user) ? 'remove' : 'add');
      reactions.append(b);
    }
    const actions = el('div', 'actions');
    for (const emoji of EMOJIS) {
      const b = el('button', '', emoji);
      b.title = `react ${emoji}`;
      b.onclick = () => client.react(null, id, emoji, m.reactions.get(emoji)?.has(user) ? 'remove' : 'add');
      actions.append(b);
    }
    if (mine) {
      const del = el('button', '', '🗑');
      del.title = 'delete';
      del.onclick = () => client.deleteMessage(null, id);
      actions.append(del);
    }
    li.append(reactions, actions);
  }
  const seenBy = [...readUpTo].filter(([u, upTo]) => upTo === id && u !== String(m.sender_id)).map(([u]) => names.get(u) ?? u);
  if (seenBy.length) li.append(el('div', 'seen', `seen by ${seenBy.join(', ')}`));
}

function el(tag, cls, content) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (Array.isArray(content)) e.append(...content);
  else if (content !== undefined) e.textContent = content;
  return e;
}

function scrollToEnd() {
  const t = $('timeline');
  t.scrollTop = t.scrollHeight;
}

// ---- history on scroll --------------------------------------------------------
async function loadOlder() {
  if (loadingOlder || !hasOlder) return;
  loadingOlder = true;
  const t = $('timeline');
  const fromBottom = t.scrollHeight - t.scrollTop;
  try {
    const page = await client.history(null, { before: oldestLoaded ?? undefined, limit: 30 });
    for (const e of page.events) apply(e);
    if (page.events.length) oldestLoaded = page.events[0].event_id;
    hasOlder = page.has_more;
    $('older').classList.toggle('done', !hasOlder);
    t.scrollTop = t.scrollHeight - fromBottom;
    markRead();
  } finally {
    loadingOlder = false;
  }
}
$('timeline').addEventListener('scroll', () => {
  if ($('timeline').scrollTop < 40) loadOlder();
});

// After a gap (the room's history was reset or trimmed while away): start over.
function reload() {
  messages.clear();
  readUpTo.clear();
  $('messages').innerHTML = '';
  oldestLoaded = null;
  hasOlder = true;
  loadOlder();
}

// ---- presence, typing, reads ----------------------------------------------------
async function refreshPresence() {
  const { users } = await client.presence(null);
  const list = $('presence');
  list.innerHTML = '';
  for (const u of users) {
    names.set(String(u.user_id), u.username);
    list.append(el('li', '', u.username));
  }
}

function showTyping(e) {
  const id = String(e.user_id);
  clearTimeout(typists.get(id)?.timer);
  if (e.is_typing) typists.set(id, { name: e.username, timer: setTimeout(() => showTyping({ ...e, is_typing: false }), 6000) });
  else typists.delete(id);
  const who = [...typists.values()].map((t) => t.name);
  $('typing').textContent = who.length ? `${who.join(', ')} ${who.length > 1 ? 'are' : 'is'} typing…` : '';
}

function markRead() {
  if (document.visibilityState !== 'visible') return;
  const newest = Math.max(0, ...[...messages.values()].filter((m) => String(m.sender_id) !== user).map((m) => m.message_id));
  if (newest > lastReadSent) {
    lastReadSent = newest;
    client.read(null, newest).catch(() => {});
  }
}
document.addEventListener('visibilitychange', markRead);

// ---- composing -------------------------------------------------------------------
let idleTimer;
$('input').addEventListener('input', () => {
  client.typing(null, true);
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => client.typing(null, false), 3000);
});
$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('input').value.trim();
  if (!text) return;
  $('input').value = '';
  clearTimeout(idleTimer);
  client.typing(null, false);
  // Shown as "sending…" until acknowledged: while the node is away the
  // client keeps it and sends it (once) after reconnecting.
  const pending = el('li', 'outbox', [el('div', 'content', text), el('div', 'meta', 'sending…')]);
  $('outbox').append(pending);
  scrollToEnd();
  client.publish(null, text)
    .catch((err) => console.warn(`not sent: ${err.message}`))
    .finally(() => pending.remove());
});
