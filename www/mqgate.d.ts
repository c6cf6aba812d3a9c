// Type declarations for mqgate.js (mqgate wire protocol v1).

export declare const SUBPROTOCOL: "mqgate.v1";

export type State = "idle" | "connecting" | "open" | "authenticated" | "closed";
export declare const STATES: readonly State[];

export type QoS = 0 | 1 | 2;

/** Codes the gateway sends, plus the client's own. */
export type ErrorCode =
  | "bad_json" | "bad_request" | "unknown_op" | "unauthenticated" | "auth_failed"
  | "token_expired" | "forbidden" | "bad_topic" | "limit_exceeded" | "rate_limited"
  | "broker_unavailable" | "broker_rejected" | "internal" | "timeout"
  // client side
  | "auth_required" | "disconnected" | "not_connected" | "closed" | "timeout"
  | "queue_full" | "unsubscribed" | "bad_base64" | "bad_credentials" | "credentials"
  | "no_websocket" | "bad_url" | "protocol"
  // HTTP API: a body over limits.max_message_bytes (413), another status
  | "too_big" | `http_${number}`
  | (string & {});

export declare class MqGateError extends Error {
  constructor(code: ErrorCode, message?: string, extra?: object);
  readonly code: ErrorCode;
  /** The gateway's error frame, when the error came from the gateway. */
  readonly frame?: { op: "error"; id?: number | string; code: string; message?: string };
  /** The WebSocket close code, for "disconnected", "auth_failed", "token_expired". */
  readonly closeCode?: number;
  /** The filter, for a refused subscription. */
  readonly filter?: string;
  /** For "auth_required": the methods the gateway's hello listed. */
  readonly methods?: string[];
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Fields every message has. seq, ts and history are there for a message of
 * the gateway's stream (protocol extension "Stream positions"); the broker's
 * retained replay (retain true) and gateways without the extension have none.
 */
export interface MessageBase {
  topic: string;
  qos: QoS;
  retain: boolean;
  /** The message's position in the gateway's stream (comparable within one epoch). */
  seq?: number;
  /** When the gateway received it: ms since the Unix epoch (the gateway's clock). */
  ts?: number;
  /** True when replayed from the gateway's history, false when live. */
  history?: boolean;
  /** The MQTT 5 properties the broker message had (protocol extension "MQTT 5 properties"). */
  props?: Props;
}

/**
 * MQTT 5 message properties, only those present: user properties in
 * their order (names may repeat), content type, response topic (relative
 * to the session's mount), correlation data, expiry interval left (s).
 */
export interface Props {
  user?: [string, string][];
  contentType?: string;
  responseTopic?: string;
  correlation?: Uint8Array;
  expiry?: number;
}

/**
 * Properties of a publish or request. correlation: bytes or a base64
 * string; expiry: seconds, 1 to 4294967295; responseTopic: a topic the
 * session may subscribe to. A request's responseTopic and correlation are
 * the gateway's (refused).
 */
export interface PublishProps {
  user?: [string, string][] | Map<string, string>;
  contentType?: string;
  responseTopic?: string;
  correlation?: Uint8Array | ArrayBuffer | ArrayBufferView | string;
  expiry?: number;
}

/** The body of a message or of a request's response. */
export type Body =
  | { format: "json"; value: Json; props?: Props }
  | { format: "text"; value: string; props?: Props }
  | { format: "binary"; value: Uint8Array; props?: Props };

export type Message =
  | (MessageBase & { format: "json"; value: Json })
  | (MessageBase & { format: "text"; value: string })
  | (MessageBase & { format: "binary"; value: Uint8Array });

export type MessageHandler = (msg: Message, filter: string) => void;

export type Credentials =
  | { token: string }
  | { user: string; password: string; otp?: string };

export interface CredentialsContext {
  /** 0 for the first attempt, then counts reconnect attempts. */
  attempt: number;
  /** Why new credentials are asked for: null on an ordinary (re)connect. */
  reason: null | "auth_failed" | "token_expired";
  /** The previous session's hello frame, if any. */
  hello: HelloFrame | null;
  /** The gateway handed out a resume token: returning undefined re-authenticates with it. */
  resumable: boolean;
}

/** null: none (anonymous role, or a token carried by a cookie). */
export type CredentialsSource =
  | Credentials
  | null
  | ((ctx: CredentialsContext) => Credentials | null | undefined | Promise<Credentials | null | undefined>);

/**
 * What a session may do (protocol extension "allow"): its topic patterns,
 * %u replaced, relative to its mount.
 */
export interface Allow {
  subscribe: string[];
  publish: string[];
}

export interface HelloFrame {
  op: "hello";
  proto: number;
  server?: string;
  auth: string[];
  user?: string;
  roles?: string[];
  /** When the session is already authenticated, or anonymous. */
  allow?: Allow;
  /** The gateway process's stream (new at every start); absent on older gateways. */
  epoch?: string;
  [key: string]: unknown;
}

export interface BackoffOptions {
  /** First delay in ms [500]. */
  min?: number;
  /** Largest delay in ms [30000]. */
  max?: number;
  /** Growth per attempt [2]. */
  factor?: number;
  /** Fraction of the delay that is random, 0..1 [0.5]. */
  jitter?: number;
}

export interface Options {
  /** Reconnect after losing the connection [true]. */
  reconnect?: boolean;
  backoff?: BackoffOptions;
  /** Default request timeout in ms, 0 for none [0]. */
  requestTimeout?: number;
  /** With no credentials, how long to wait for proof of anonymous access [3000]. */
  anonymousWait?: number;
  /** Requests held while (re)connecting [256]. */
  offlineQueue?: number;
  /** ms from opening the socket to the gateway's hello, 0 for none [15000]. */
  connectTimeout?: number;
  /** Subprotocols offered [["mqgate.v1"]]. */
  protocols?: string[];
  /** WebSocket constructor [globalThis.WebSocket]. */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
  /**
   * "auto": a WebSocket, and the gateway's HTTP API (an SSE stream from GET
   * /api/events, publishes over POST /api/publish; a listener with
   * "http_api": true) when one cannot be opened; after that the HTTP API
   * is tried first. "websocket" or "sse": only that one ["auto"]. The API
   * is the same over both; over HTTP, changing the filters opens a new
   * stream (nothing missed or twice), max_rate applies to the stream as a
   * whole (the least restrictive of the filters' rates), a password is
   * sent as Basic (a user with a one-time code cannot use HTTP), and
   * without credentials the browser's cookies are sent.
   */
  transport?: "auto" | "websocket" | "sse";
  /**
   * The HTTP API's base URL [each gateway URL's origin, as http(s)]; with
   * several gateway URLs, a list of one base per URL, in their order.
   */
  apiUrl?: string | string[];
  /**
   * More gateway URLs, after the constructor's url (which may also be a
   * list, or null when these are all). The session fails over among them:
   * an attempt that fails, or a gateway that closes with 1001 (shutting
   * down), moves to the next URL; a connection that drops after it was
   * usable is tried again on the same gateway first. The backoff grows per
   * round over all the URLs (jittered, capped); the gateway that worked last
   * is tried first by connect(). See RecoveryEvent for what a failover
   * does to the stream positions.
   */
  urls?: string[];
  /** fetch implementation for the HTTP API [globalThis.fetch]. */
  fetch?: typeof fetch;
}

export interface Identity {
  user: string | null;
  roles: string[];
  anonymous: boolean;
}

export interface StateDetail {
  attempt?: number;
  /** "connecting": the gateway URL of this attempt. */
  url?: string;
  reason?: string | null;
  code?: number;
  /** ms until the next attempt, or null when the session stays closed. */
  reconnectIn?: number | null;
  authReason?: "auth_failed" | "token_expired" | "auth_required" | null;
  byClient?: boolean;
  error?: MqGateError;
  user?: string | null;
  roles?: string[];
  anonymous?: boolean;
}

export interface CloseDetail {
  code: number;
  reason: string;
  reconnectIn: number | null;
  authReason: "auth_failed" | "token_expired" | "auth_required" | null;
  /** The gateway URL of the connection that closed. */
  url: string;
  /** The gateway URL the next attempt goes to; null when none follows. */
  nextUrl: string | null;
}

/** Emitted when a session becomes usable on another gateway URL than the last one. */
export interface GatewayEvent {
  /** The gateway that took the session. */
  url: string;
  /** The gateway of the previous session. */
  previous: string;
  /** The new gateway's epoch; null when it has none, or (over HTTP) until its first stream. */
  epoch: string | null;
}

/**
 * Why a re-subscription could not recover what was missed:
 * "gap": the gateway no longer holds all of it, or lost its broker meanwhile;
 * "restarted": the gateway restarted (a new epoch at the same URL; behind a
 *   load balancer also another gateway behind that URL);
 * "failover": another gateway URL took the session (another epoch);
 * "no_position": the filter had received nothing to resume after;
 * "unsupported": the gateway has no stream positions (no epoch in hello).
 */
export type RecoveryFailure = "gap" | "restarted" | "failover" | "no_position" | "unsupported";

/**
 * Emitted once per filter re-subscribed after a reconnect, when the gateway
 * answered and before the messages it replays. recovered true: the replayed
 * messages (msg.history true) are exactly the ones missed, and the filter's
 * handlers have seen every message since. false: messages may be missing;
 * what the filter shows should be reloaded from what follows (the
 * subscription's `history` replay, then live messages). A position is
 * only resumed (`since`) on the gateway of its epoch: after a failover to
 * another gateway (another epoch) the filter starts over from its
 * `history` (none with history 0), reason "failover".
 */
export interface RecoveryEvent {
  filter: string;
  recovered: boolean;
  /** Stored messages the gateway replays now. */
  replayed: number;
  reason: RecoveryFailure | null;
  /** The gateway URL that answered. */
  url: string;
  /** Its epoch (null: a gateway without stream positions). */
  epoch: string | null;
}

export interface EventMap {
  state: [state: State, detail: StateDetail];
  broker: [status: "up" | "down"];
  error: [error: MqGateError | Error];
  hello: [frame: HelloFrame];
  authenticated: [identity: Identity];
  /** Every msg frame, as it came (handlers get each message at most once). */
  message: [msg: Message];
  close: [detail: CloseDetail];
  recovery: [event: RecoveryEvent];
  /** The transport of the session, when a connection opens with another one than before. */
  transport: [transport: Transport];
  /** The session failed over: usable on another gateway URL than the last one. */
  gateway: [event: GatewayEvent];
}

export type Transport = "websocket" | "sse";

/**
 * history, retained and maxRate belong to the filter, and are taken from
 * the subscribe that adds it (maxRate also from a later one: it changes it).
 */
export interface SubscribeOptions {
  qos?: QoS;
  /** ms, overrides options.requestTimeout. */
  timeout?: number;
  /**
   * Replay up to that many of the newest stored messages of every matching
   * topic first (0 to 100000, at most the gateway's history.messages), with
   * history true; also the fallback when a reconnect cannot recover [0].
   */
  history?: number;
  /** false: the broker's retained messages are not replayed to this filter [true]. */
  retained?: boolean;
  /**
   * At most that many messages per second per topic (above 0, at most
   * 1000); the newest of a burst always arrives. 0 or null: no limit.
   */
  maxRate?: number | null;
}

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** Send the body (a string) as its UTF-8 bytes ("text"). */
  text?: boolean;
  /** The body is a base64 string, or bytes to encode ("base64"). */
  base64?: boolean;
  timeout?: number;
  /** MQTT 5 properties (an MQTT 3.1.1 gateway refuses them: bad_request). */
  props?: PublishProps;
}

export interface RequestOptions {
  /** How long the gateway waits for the device's answer, 1 to 60000 ms [the gateway's 10000]. */
  timeoutMs?: number;
  qos?: QoS;
  text?: boolean;
  base64?: boolean;
  props?: Omit<PublishProps, "responseTopic" | "correlation">;
  /** ms the client itself waits [max(timeoutMs + 5000, options.requestTimeout)]. */
  timeout?: number;
}

export declare class MqGate {
  /** url: one gateway URL, or several (see Options.urls); null when options.urls has them all. */
  constructor(url: string | URL | (string | URL)[] | null, credentials?: CredentialsSource, options?: Options);

  /** The gateway URL of the current (or next) connection. */
  readonly url: string;
  /** Every gateway URL, in the order they are tried. */
  readonly urls: readonly string[];
  readonly state: State;
  /** True when requests may be sent (authenticated, or anonymous). */
  readonly ready: boolean;
  readonly user: string | null;
  readonly roles: string[];
  readonly anonymous: boolean;
  /**
   * What the session may do, from hello or auth's ok; null when the gateway
   * did not say (an older gateway). Set before "authenticated" is emitted.
   */
  readonly allow: Allow | null;
  readonly broker: "up" | "down" | null;
  readonly hello: HelloFrame | null;
  /** The epoch of the last hello, null when the gateway sent none. */
  readonly epoch: string | null;
  readonly authMethods: string[];
  readonly lastClose: { code: number; reason: string; wasClean: boolean } | null;
  /** The transport of the last connection that opened; null before one did. */
  readonly transport: Transport | null;
  /** The HTTP API's base URL of the current gateway. */
  readonly apiUrl: string;
  /** failovers: sessions that became usable on another gateway URL than the last one. */
  readonly stats: { received: number; sent: number; messages: number; reconnects: number; failovers: number };

  on<K extends keyof EventMap>(type: K, fn: (...args: EventMap[K]) => void): () => void;
  off<K extends keyof EventMap>(type: K, fn: (...args: EventMap[K]) => void): void;
  once<K extends keyof EventMap>(type: K, fn: (...args: EventMap[K]) => void): () => void;

  connect(): Promise<Identity>;
  close(code?: number, reason?: string): void;
  authenticate(credentials: Credentials): Promise<Identity>;
  setCredentials(credentials: CredentialsSource): void;

  subscribe(filter: string, handler: MessageHandler, options?: SubscribeOptions): Promise<QoS>;
  unsubscribe(filter: string, handler?: MessageHandler): Promise<void>;
  /**
   * Sets or changes a held filter's max rate (0 or null: no limit); rejects
   * with the gateway's error, the previous rate staying in force.
   */
  setMaxRate(filter: string, maxRate: number | null): Promise<void>;
  subscriptions(): { filter: string; qos: QoS; granted: QoS | null; handlers: number }[];

  /**
   * body: a JSON value → "payload"; Uint8Array/ArrayBuffer → "base64"; undefined → empty.
   * Resolves once the gateway acked it (QoS 1/2: the broker has it). A
   * publish made while (re)connecting waits and goes to the next gateway,
   * once. One in flight when the connection closes (a gateway shutting
   * down, a failover) rejects "disconnected": it may or may not have
   * reached the broker, and is never resent by the library.
   */
  publish(topic: string, body?: Json | Uint8Array | ArrayBuffer | ArrayBufferView, options?: PublishOptions): Promise<void>;
  /**
   * MQTT 5 request/response: publishes body to topic with the gateway's
   * response topic and correlation data, resolves the device's answer.
   * Rejects "timeout", "limit_exceeded", "broker_unavailable", "bad_request"
   * (MQTT 3.1.1) and the publish's errors.
   */
  request(topic: string, body?: Json | Uint8Array | ArrayBuffer | ArrayBufferView, options?: RequestOptions): Promise<Body>;
  ping(options?: { timeout?: number }): Promise<number>;
}

export default MqGate;

export declare function connect(url: string | URL | (string | URL)[] | null, credentials?: CredentialsSource, options?: Options): Promise<MqGate>;

export declare function topicMatches(filter: string, topic: string): boolean;
/** The allow field of a hello or an auth ok, cleaned; null when absent or malformed. */
export declare function readAllow(allow: unknown): Allow | null;
/** hello's epoch when well formed (1 to 64 of [A-Za-z0-9_-]), else null. */
export declare function readEpoch(epoch: unknown): string | null;
export declare function compileFilter(filter: string): (topic: string) => boolean;
export declare function base64ToBytes(s: string): Uint8Array;
export declare function bytesToBase64(bytes: Uint8Array | ArrayBuffer | ArrayBufferView): string;
export declare function decodeMessage(frame: {
  topic: string; qos?: number; retain?: boolean; payload?: Json; text?: string; base64?: string;
  seq?: number; ts?: number; history?: boolean; props?: unknown;
}): Message;
export declare function decodeBody(frame: {
  payload?: Json; text?: string; base64?: string; props?: unknown;
}): Body;
/** A frame's "props", cleaned and camelCased; null when absent or empty. */
export declare function readProps(props: unknown): Props | null;
/** The wire form of PublishProps; throws TypeError on a malformed member. */
export declare function encodeProps(props: PublishProps): {
  user?: [string, string][]; content_type?: string; response_topic?: string;
  correlation?: string; expiry?: number;
};
export declare function encodeBody(
  body: unknown,
  options?: { text?: boolean; base64?: boolean },
): { payload?: Json; text?: string; base64?: string };
export declare function backoffDelay(attempt: number, backoff?: BackoffOptions, random?: () => number): number;
