// TypeScript declarations for switchboard-client (hand-written; the code is
// plain ES2022 JavaScript). Frames follow docs/protocol.md.

/** Any frame the server sends: `type` plus the fields of protocol section 5. */
export interface ServerFrame {
  type: string;
  channel?: string;
  event_id?: number;
  id?: string;
  replayed?: boolean;
  timestamp?: string;
  [field: string]: unknown;
}

export interface ChannelPosition {
  channel: string;
  epoch: string;
  last_event_id: number;
}

export interface ConnectionEstablished extends ServerFrame {
  type: 'connection_established';
  user_id: string | number;
  role: string | null;
  node: string;
  heartbeat_interval: number;
  channels: ChannelPosition[];
}

export interface MessageEvent extends ServerFrame {
  type: 'message';
  channel: string;
  event_id: number;
  message_id: number;
  sender_id: string | number;
  sender_name: string;
  content?: string;
  reply_to: number | null;
  deleted?: boolean;
}

export interface Ack extends ServerFrame {
  type: 'ack';
  id: string;
  event_id?: number;
}

export interface HistoryFrame extends ServerFrame {
  type: 'history';
  channel: string;
  events: ServerFrame[];
  has_more: boolean;
}

export interface PresenceFrame extends ServerFrame {
  type: 'presence';
  channel: string;
  users: { user_id: string | number; username: string; connections: number }[];
}

export interface GapInfo {
  channel: string;
  /** 'epoch': the channel's history was reset; 'retention': events were trimmed before the client got them; 'behind': the server has fewer events than the client saw. */
  reason: 'epoch' | 'retention' | 'behind';
  epoch: string;
  lastEventId: number;
}

export interface Position {
  epoch: string | undefined;
  lastEventId: number;
}

/** localStorage's interface, or anything with the same two methods. */
export interface PositionStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface TokenRequest {
  /** 'connect' (first), 'reconnect', 'auth_failed' (the last token was refused: return a fresh one), 'refresh' (before expiry). */
  reason: 'connect' | 'reconnect' | 'auth_failed' | 'refresh';
}

export interface ClientOptions {
  /** The node's base URL: http(s):// or ws(s)://host:port. */
  url: string;
  /** The WebSocket route, default '/ws/' (the multiplex route). */
  path?: string;
  /** Returns the JWT to connect or refresh with; also called after a token was refused. */
  getToken: (request: TokenRequest) => string | Promise<string>;
  /** Channels to subscribe to on the multiplex route. */
  channels?: string[];
  /** 'auto' (WebSocket, SSE when there is none or it keeps failing on /ws/updates/), 'websocket' or 'sse'. */
  transport?: 'auto' | 'websocket' | 'sse';
  /** A WebSocket implementation (default globalThis.WebSocket). */
  WebSocket?: unknown;
  /** An EventSource implementation (default globalThis.EventSource). */
  EventSource?: unknown;
  /** Reconnect delays in ms: full jitter in [0, min(max, min * 2^attempt)]. Default {min: 500, max: 30000}. */
  backoff?: { min?: number; max?: number };
  /** The random source of the jitter (default Math.random). */
  random?: () => number;
  /** Where positions persist (e.g. localStorage); default: memory only. */
  store?: PositionStore | null;
  storeKey?: string;
  /** Called when events were lost for the app (reload the channel through history). */
  onGap?: (channel: string, info: GapInfo) => void;
  /** Minimum ms between two typing=true frames per channel (default 2000). */
  typingInterval?: number;
  /** Refresh the token this many seconds before it expires (default 30, or a tenth of its life if shorter). */
  refreshMargin?: number;
  /** ms to wait for connection_established before retrying (default 15000). */
  greetingTimeout?: number;
  /** Requests awaiting an answer (queued while disconnected included) before request() rejects with 'queue_full' (default 1000). */
  maxPending?: number;
  /** App event types to receive over SSE (EventSource needs every `event:` name). */
  sseEventTypes?: string[];
  /** false: wait for connect(). Default true. */
  autoConnect?: boolean;
}

export declare class SwitchboardError extends Error {
  /** The server's error code (forbidden, rate_limited, ...) or 'closed', 'disconnected', 'unsupported', 'queue_full', 'refresh_failed'. */
  code: string;
  frame?: ServerFrame;
}

export interface ClientEvents {
  state: (state: ConnectionState, detail: unknown) => void;
  connecting: (detail: { attempt: number; transport: 'websocket' | 'sse' }) => void;
  connected: (frame: ConnectionEstablished) => void;
  disconnected: (detail: { code: number; reason: string; delay: number }) => void;
  closed: (detail: { code: number; reason: string }) => void;
  /** Every stored event, once, in channel order. */
  event: (frame: ServerFrame) => void;
  gap: (info: GapInfo) => void;
  /** Server errors that answer no request, and failed refreshes. */
  error: (error: SwitchboardError) => void;
  [frameType: string]: (...args: any[]) => void;
}

export declare class SwitchboardClient {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  readonly transport: 'websocket' | 'sse';
  readonly positions: Record<string, Position>;

  on<K extends keyof ClientEvents>(name: K, handler: ClientEvents[K]): () => void;
  once<K extends keyof ClientEvents>(name: K, handler: ClientEvents[K]): () => void;
  off<K extends keyof ClientEvents>(name: K, handler: ClientEvents[K]): void;

  connect(): void;
  close(): void;

  /** Sends any frame; resolves with its answer, rejects with a SwitchboardError. */
  request<T extends ServerFrame = ServerFrame>(frame: { type: string; [field: string]: unknown }): Promise<T>;
  /** A chat message (text, or {message, reply_to}); `channel` may be null on one-channel routes. */
  publish(channel: string | null, payload: string | { message: string; reply_to?: number }, extra?: object): Promise<Ack>;
  read(channel: string | null, messageId: number): Promise<Ack>;
  react(channel: string | null, messageId: number, emoji: string, action?: 'add' | 'remove'): Promise<Ack>;
  deleteMessage(channel: string | null, messageId: number): Promise<Ack>;
  presence(channel?: string | null): Promise<PresenceFrame>;
  history(channel: string | null, options?: { before?: number; limit?: number }): Promise<HistoryFrame>;
  /** Throttled; returns whether a frame went out. */
  typing(channel: string | null, isTyping?: boolean): boolean;
  subscribe(channel: string): Promise<ServerFrame>;
  unsubscribe(channel: string): Promise<ServerFrame>;
  filterNotifications(types: string[]): Promise<ServerFrame>;
  unfilterNotifications(types: string[]): Promise<ServerFrame>;
}

/** 'auth' (retry only with a fresh token), 'stop' or 'retry'. */
export declare function closePolicy(code: number): 'auth' | 'stop' | 'retry';
export declare function backoffCap(attempt: number, options?: { min?: number; max?: number }): number;
export declare function backoffDelay(attempt: number, options?: { min?: number; max?: number }, random?: () => number): number;
export declare function memoryStore(): PositionStore & { removeItem(key: string): void };
/** The token's `exp` (seconds since the epoch), or null. */
export declare function tokenExpiry(token: string): number | null;
/** ms from now until a token just obtained should be refreshed (at least 1000), or null without `exp`. */
export declare function refreshDelay(token: string, nowSeconds: number, margin?: number): number | null;
