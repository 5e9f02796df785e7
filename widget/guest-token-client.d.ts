// Types for guest-token-client.js, the browser client of the guest-token service (POST /guest-tokens).

/** Token lifetimes the service offers: 3600, 7200 (its default), 14400 and 86400 seconds. */
export type GuestTokenDuration = "short" | "standard" | "extended" | "max";

/** A guest token, as handed to `onToken` and in `tokenready` events. */
export interface GuestToken {
  /** The Genesys Web Messaging guest JWT. Give it to the messenger; never log or store it. */
  readonly token: string;
  /**
   * The guest's UUID, sent back on the next request. With the service's `webmessaging` source it is the
   * guest's Web Messaging session token, the key to the conversation: never log it. It changes when Genesys
   * had ended the guest's session (then `newSession` is true).
   */
  readonly guestId: string;
  /** The token's scopes (the service's `rest` source); empty with `webmessaging`. */
  readonly scopes: readonly string[];
  /** `webmessaging`: Genesys started a new session or conversation (no earlier messages to show). */
  readonly newSession?: boolean;
  /** `webmessaging`: the Messenger web deployment the session belongs to. */
  readonly deploymentId?: string;
  /** `webmessaging`: the Web Messaging Guest API URL to open with the session token. */
  readonly webSocketUrl?: string;
  /** Seconds the token was valid for when it arrived. */
  readonly expiresIn: number;
  /** When the token expires, by this device's clock (arrival time + `expiresIn`). */
  readonly expiresAt: Date;
}

/** Where the guest's id is kept between page loads: `localStorage` by default. */
export interface GuestIdStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface GuestTokenClientOptions {
  /** The service's `POST /guest-tokens` URL (relative URLs resolve against the page). */
  endpoint: string | URL;
  /** `rest` source only (`webmessaging` refuses it with 422): the service's default (`standard`) when absent. */
  duration?: GuestTokenDuration;
  /** `rest` source only (`webmessaging` refuses it with 422): the service's default (`send` and `receive`). */
  scopes?: readonly string[];
  onToken?: (token: GuestToken) => void;
  onError?: (error: GuestTokenError) => void;
  /** `localStorage` when absent; `null` keeps the id in memory only (a new guest on each page load). */
  storage?: GuestIdStorage | null;
  /** Default {@link GUEST_ID_STORAGE_KEY}. */
  storageKey?: string;
  /** Refresh this long before expiry (at most half the token's life). Default 60. */
  refreshMarginSeconds?: number;
  /** Stop refreshing once the page has been hidden this long; resume when it is visible. Default 300. */
  hiddenPauseSeconds?: number;
  /**
   * Tries again after network errors, an answer without a token (a captive portal), 429 and 5xx with a
   * backoff (0.5-1 s doubling up to 60 s, or the answer's `Retry-After` when longer, bounded to 1-300 s) this
   * many times in a row, then every 150-300 s; and at once when the page goes back online, is shown again from
   * the back-forward cache or becomes visible. A `503` `deployment_unavailable` (the Genesys web deployment is
   * switched off) is retried every 150-300 s from the first failure, never sooner than its `Retry-After`, and
   * not at once on those page events. Default 5.
   */
  maxRetries?: number;
}

/** A failed token request. */
export declare class GuestTokenError extends Error {
  readonly name: "GuestTokenError";
  /** HTTP status, or null when no answer arrived (network down, or CORS refused this page's origin). */
  readonly status: number | null;
  /**
   * The service's error code (`invalid_request`, `rate_limited`, `deployment_unavailable`, ...), `network_error`,
   * `invalid_response`, or `http_<status>`.
   */
  readonly code: string;
  /** The service's request id, for its logs. */
  readonly requestId: string | null;
  /** For `invalid_request`: which field and why. */
  readonly details: ReadonlyArray<{ field: string; issue: string }>;
  /** The answer's `Retry-After`, in seconds. */
  readonly retryAfter: number | null;
  /** Seconds until the client tries again by itself; null: it will not (a 4xx other than 429). */
  readonly retryInSeconds: number | null;
}

/** An EventTarget whose events named in `M` come typed (both modules' clients are ones). */
export interface TypedEventTarget<M> extends EventTarget {
  addEventListener<K extends keyof M & string>(
    type: K,
    listener: (this: this, event: M[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof M & string>(
    type: K,
    listener: (this: this, event: M[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

export interface GuestTokenClientEventMap {
  tokenready: CustomEvent<GuestToken>;
  tokenerror: CustomEvent<GuestTokenError>;
}

export interface GuestTokenClient extends TypedEventTarget<GuestTokenClientEventMap> {
  /** The stored id of a returning visitor, or the service's once it has answered; else null. */
  readonly guestId: string | null;
  /** The latest token while it has not expired; else null. */
  readonly current: GuestToken | null;
  /** Requests a token now and keeps it fresh until `stop()`. */
  start(): this;
  /** Requests a new token now (starting the client if it is not running). */
  refresh(): void;
  /**
   * Forgets the guest (and its token) and, when running, requests a token for a new guest. The client does
   * this by itself when the service refuses the stored guest id (422 on `guestId`).
   */
  reset(): void;
  /** Stops refreshing, cancels a request under way and detaches from the page. */
  stop(): void;
}

/**
 * The `localStorage` key of the guest's id. Tabs share it: a tab that stores a new guest (New guest, a replaced
 * session) makes the others adopt it (`storage` event), and each token request sends the stored id.
 */
export declare const GUEST_ID_STORAGE_KEY: string;

/** Exponential backoff with jitter: 0.5-1 s for `attempt` 1, doubling up to `max` seconds (shared with guest-chat.js). */
export declare function backoff(attempt: number, max: number): number;

/** A server's wait in seconds bounded to 1-300 s: 0 must not loop, nor a huge value overflow `setTimeout`. */
export declare function bounded(seconds: number): number;

/** Creates a client; nothing is requested until `start()`. */
export declare function createGuestTokenClient(options: GuestTokenClientOptions): GuestTokenClient;

/**
 * The client's class, for guest-sign-in.js (which extends it); pages use {@link createGuestTokenClient}.
 * Its `_request(guestId, signal)` is the one token request (`POST` to `endpoint`), which a subclass may
 * override; it resolves with the token or rejects with a `GuestTokenError`.
 */
export declare const GuestTokenClient: {
  new (options: GuestTokenClientOptions): GuestTokenClient;
  prototype: GuestTokenClient;
};

/** Reads the service's answer: the token of a `200`, else throws its `GuestTokenError` (for guest-sign-in.js). */
export declare function readToken(response: Response): Promise<GuestToken>;
