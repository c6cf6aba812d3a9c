// Type declarations for mqgate.js (mqgate wire protocol v1).

export declare const SUBPROTOCOL: "mqgate.v1";

export type State = "idle" | "connecting" | "open" | "authenticated" | "closed";
export declare const STATES: readonly State[];

export type QoS = 0 | 1 | 2;

/** Codes the gateway sends, plus the client's own. */
export type ErrorCode =
  | "bad_json" | "bad_request" | "unknown_op" | "unauthenticated" | "auth_failed"
  | "token_expired" | "forbidden" | "bad_topic" | "limit_exceeded" | "rate_limited"
  | "broker_unavailable" | "broker_rejected" | "internal"
  // client side
  | "auth_required" | "disconnected" | "not_connected" | "closed" | "timeout"
  | "queue_full" | "unsubscribed" | "bad_base64" | "bad_credentials" | "credentials"
  | "no_websocket" | "bad_url" | "protocol"
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

export type Message =
  | { topic: string; qos: QoS; retain: boolean; format: "json"; value: Json }
  | { topic: string; qos: QoS; retain: boolean; format: "text"; value: string }
  | { topic: string; qos: QoS; retain: boolean; format: "binary"; value: Uint8Array };

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
}

export interface Identity {
  user: string | null;
  roles: string[];
  anonymous: boolean;
}

export interface StateDetail {
  attempt?: number;
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
}

export interface EventMap {
  state: [state: State, detail: StateDetail];
  broker: [status: "up" | "down"];
  error: [error: MqGateError | Error];
  hello: [frame: HelloFrame];
  authenticated: [identity: Identity];
  message: [msg: Message];
  close: [detail: CloseDetail];
}

export interface SubscribeOptions {
  qos?: QoS;
  /** ms, overrides options.requestTimeout. */
  timeout?: number;
}

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** Send the body (a string) as its UTF-8 bytes ("text"). */
  text?: boolean;
  /** The body is a base64 string, or bytes to encode ("base64"). */
  base64?: boolean;
  timeout?: number;
}

export declare class MqGate {
  constructor(url: string, credentials?: CredentialsSource, options?: Options);

  readonly url: string;
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
  readonly authMethods: string[];
  readonly lastClose: { code: number; reason: string; wasClean: boolean } | null;
  readonly stats: { received: number; sent: number; messages: number; reconnects: number };

  on<K extends keyof EventMap>(type: K, fn: (...args: EventMap[K]) => void): () => void;
  off<K extends keyof EventMap>(type: K, fn: (...args: EventMap[K]) => void): void;
  once<K extends keyof EventMap>(type: K, fn: (...args: EventMap[K]) => void): () => void;

  connect(): Promise<Identity>;
  close(code?: number, reason?: string): void;
  authenticate(credentials: Credentials): Promise<Identity>;
  setCredentials(credentials: CredentialsSource): void;

  subscribe(filter: string, handler: MessageHandler, options?: SubscribeOptions): Promise<QoS>;
  unsubscribe(filter: string, handler?: MessageHandler): Promise<void>;
  subscriptions(): { filter: string; qos: QoS; granted: QoS | null; handlers: number }[];

  /** body: a JSON value → "payload"; Uint8Array/ArrayBuffer → "base64"; undefined → empty. */
  publish(topic: string, body?: Json | Uint8Array | ArrayBuffer | ArrayBufferView, options?: PublishOptions): Promise<void>;
  ping(options?: { timeout?: number }): Promise<number>;
}

export default MqGate;

export declare function connect(url: string, credentials?: CredentialsSource, options?: Options): Promise<MqGate>;

export declare function topicMatches(filter: string, topic: string): boolean;
/** The allow field of a hello or an auth ok, cleaned; null when absent or malformed. */
export declare function readAllow(allow: unknown): Allow | null;
export declare function compileFilter(filter: string): (topic: string) => boolean;
export declare function base64ToBytes(s: string): Uint8Array;
export declare function bytesToBase64(bytes: Uint8Array | ArrayBuffer | ArrayBufferView): string;
export declare function decodeMessage(frame: {
  topic: string; qos?: number; retain?: boolean; payload?: Json; text?: string; base64?: string;
}): Message;
export declare function encodeBody(
  body: unknown,
  options?: { text?: boolean; base64?: boolean },
): { payload?: Json; text?: string; base64?: string };
export declare function backoffDelay(attempt: number, backoff?: BackoffOptions, random?: () => number): number;
