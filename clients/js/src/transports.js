// The two ways to reach a node, behind one small interface:
// { send(frame), close() } calling handlers.frame(object) and, once,
// handlers.close(code, reason).

// Frame types a server may send over SSE. EventSource dispatches by the
// `event:` name and has no wildcard, so app event types (notification,
// grade_update, ...) must be listed too.
export const SSE_TYPES = [
  'connection_established', 'message', 'typing', 'user_joined', 'user_left', 'read', 'reaction',
  'delete', 'replay_complete', 'subscribed', 'unsubscribed', 'notification', 'close',
];

export function openWebSocket(WebSocketImpl, url, handlers) {
  const ws = new WebSocketImpl(url);
  let done = false;
  const finish = (code, reason) => {
    if (done) return;
    done = true;
    handlers.close(code, reason);
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    handlers.frame(frame);
  };
  ws.onerror = () => {};
  ws.onclose = (ev) => finish(ev.code || 1006, ev.reason || '');
  return {
    kind: 'websocket',
    send(frame) {
      if (ws.readyState !== 1) return false;
      ws.send(JSON.stringify(frame));
      return true;
    },
    close() {
      done = true;
      try {
        ws.close(1000, 'client closed');
      } catch {
        // already closing
      }
    },
  };
}

export function openEventSource(EventSourceImpl, url, handlers, extraTypes = []) {
  const es = new EventSourceImpl(url);
  let done = false;
  const finish = (code, reason) => {
    if (done) return;
    done = true;
    es.close();
    handlers.close(code, reason);
  };
  // A stream that breaks is reopened by the client (with a fresh token and
  // its positions), not by the EventSource.
  es.onerror = () => finish(1006, 'event stream failed');
  const onEvent = (ev) => {
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (ev.type === 'close') finish(frame.code ?? 1006, frame.reason ?? '');
    else handlers.frame(frame);
  };
  for (const type of new Set([...SSE_TYPES, ...extraTypes])) es.addEventListener(type, onEvent);
  return {
    kind: 'sse',
    send() {
      return false;
    },
    close() {
      done = true;
      es.close();
    },
  };
}
