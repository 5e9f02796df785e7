// Types for guest-chat.js: a guest's chat over the Web Messaging Guest API, on a guest-token client's session.

import type { GuestTokenClient, TypedEventTarget } from "./guest-token-client.js";

/** A text in the conversation. */
export interface ChatMessage {
  /** Genesys' message id (the same in the live event and in the history). */
  readonly id: string;
  readonly text: string;
  /** `guest`: sent by this guest (Genesys' `Inbound`); `agent`: sent to the guest (`Outbound`). */
  readonly from: "guest" | "agent";
  /** When Genesys says it was sent, if it says. */
  readonly time: Date | null;
  /** From `loadHistory()` (or the `history` event), not a live event. */
  readonly fromHistory: boolean;
}

export interface GuestChatOptions {
  /**
   * The guest-token client of the service's `webmessaging` source, started or not (the chat does not start
   * it). Its token gives the WebSocket URL, the deployment, the session token (`guestId`) and the JWT.
   */
  tokens: GuestTokenClient;
  /**
   * Where Genesys' REST API is, for the history call (`GET api/v2/webmessaging/messages` under it). Default:
   * from the token's `webSocketUrl`, `wss://webmessaging.<region>` giving `https://api.<region>/`.
   */
  apiBaseUrl?: string | URL;
  /**
   * Sends Genesys' keep-alive (`echo`) this often. Any frame arriving after an echo proves the path; an echo
   * followed by no frame at all by the next one drops the socket (without waiting for a close a dead path never
   * completes) and reconnects. Default 60; at least 30 (smaller counts as 30), the spacing Genesys' transport SDK
   * keeps (`HEALTH_CHECK_COOL_DOWN_MILLISECONDS` in its `core/events/HealthCheckProvider.kt`).
   */
  keepAliveSeconds?: number;
  /**
   * Starts a new session's conversation as Genesys' SDKs do with the deployment's autostart: the guest's Presence
   * `Join`, sent once when the token's `newSession` is true and the session is not read-only. Default false:
   * without it the chat never sends a `Join`.
   */
  autoStart?: boolean;
  /** How many of the newest messages `loadHistory()` asks for. Default 25. */
  historyPageSize?: number;
}

/**
 * `idle`: no token yet (or not started); `replacing`: getting a new session after Genesys ended or expired one;
 * `unavailable`: the token has no Web Messaging session (`rest` source), the browser refused its `webSocketUrl`,
 * Genesys refused `configureSession` with a 4xxx, or sessions kept being refused (5 replacements in a row without a healthy one), or
 * a signed-in customer's auth JWT was refused 4 times in a row (401); retried on the token client's next token.
 * `closed`: `close()`.
 */
export type GuestChatState = "idle" | "connecting" | "open" | "reconnecting" | "replacing" | "unavailable" | "closed";

/** A Guest API failure. */
export declare class GuestChatError extends Error {
  readonly name: "GuestChatError";
  /**
   * Genesys' code: 4000 (refused, e.g. a read-only session), 4006 (session expired), 4007 (session not
   * found), 4017 (an anonymous `configureSession` on a signed-in customer's session: the chat asks the token
   * client for a new guest, `reset()`), 4020 (missing parameter), 4029 (too many requests: waited out and sent
   * again), 5000; 401 (a signed-in customer's auth JWT refused, reported only once 3 refreshes did not help); or
   * `connection_lost` (also a keep-alive followed by no frame, or a `ConnectionClosedEvent`: another tab or
   * device closed the session's connections), `timeout` (no WebSocket handshake or `configureSession`
   * answer within 15 s), `session_unavailable` (gave up replacing sessions), `unavailable` (a send while the
   * chat has no session), `closed`, `websocket_refused` (the browser would not open `webSocketUrl`: not a
   * WebSocket URL, or `ws://` from an `https` page; the chat is `unavailable` until the next token), or, from
   * the history call, `network_error` (no answer: the network, or CORS), `http_<status>` or `invalid_response`
   * (not JSON); `guest_api_error` for a Genesys error without a code.
   */
  readonly code: number | string;
  /** HTTP status of the history call, else null. */
  readonly status: number | null;
  /** Seconds Genesys asked to wait (4029), else null. */
  readonly retryAfter: number | null;
  /**
   * Seconds until the chat tries again by itself; null: it will not. A 4029 is waited out per message (Genesys'
   * `retryAfter` bounded to 1-300 s); reconnects back off 0.5-1 s doubling to 30 s, and replaced sessions 1 s
   * doubling to 30 s, each restarting only once a socket has been healthy (open for 30 s).
   */
  readonly retryInSeconds: number | null;
}

export interface GuestChatEventMap {
  /**
   * A live text: the agent's, or this guest's own, sent from this tab or (when Genesys shows it to this socket)
   * another tab or device of the same guest.
   */
  message: CustomEvent<ChatMessage>;
  /** The conversation after each (re)connection, oldest first: replaces what is shown. */
  history: CustomEvent<ChatMessage[]>;
  /** The agent is typing (`type` "On", `duration` in ms). */
  typing: CustomEvent<{ type: string; duration?: number }>;
  /**
   * Someone joined or left. A `Disconnect` whose message says `metadata.readOnly` "true" ended the conversation:
   * the chat starts a new one. Without it the chat stays open.
   */
  presence: CustomEvent<{ type: string }>;
  statechange: CustomEvent<GuestChatState>;
  chaterror: CustomEvent<GuestChatError>;
}

/**
 * A chat on the Guest API. It reads each frame by its `class`, whatever its `type`, as Genesys' SDKs do (the
 * transport SDK's `shyrka/WebMessagingJson.kt`). A frame answers a request when it carries that request's
 * `tracingId`, or when it carries none and its class fits: a `SessionResponse` the `configureSession`, an error
 * (`string`, `TooManyRequestsErrorMessage`) the oldest unanswered request (assuming Genesys answers in order),
 * an `Inbound` `StructuredMessage` the oldest unanswered request with the same message (else it is this
 * guest's message from another tab or device). A `SessionExpiredEvent` replaces the session; a
 * `ConnectionClosedEvent` reconnects; other classes are ignored.
 *
 * Signed-in customers (guest-sign-in.js): a token with `authToken` is joined with `configureAuthenticatedSession`
 * (`data.code` = the auth JWT) instead of `configureSession`. Genesys' `401` string frame to it (the auth JWT
 * refused) makes the chat ask the token client for a token (`refresh()`: the service refreshes the auth JWT
 * through its cookie) and configure again, 3 times at most before `unavailable`, as the transport SDK does. A
 * `LogoutEvent` (signed out here, in another tab or elsewhere) ends the session: the chat asks the token
 * client for a token and joins whatever session that is (anonymous once the sign-in is gone).
 */
export interface GuestChat extends TypedEventTarget<GuestChatEventMap> {
  readonly state: GuestChatState;
  /** Joins the session of the token client's current (or next) token and follows its renewals. */
  start(): this;
  /**
   * Sends a text; resolves with it as Genesys stored it (waits while reconnecting; each 4029 is waited out and
   * the text sent again, also after a reconnect: at least once, so a text whose answer was lost with the socket
   * may arrive twice). Rejects with `closed` after `close()`, `unavailable` while the chat has no session.
   */
  send(text: string): Promise<ChatMessage>;
  /**
   * The conversation so far (oldest first, texts only), through the guest REST call with the current JWT.
   * Rejects with a `GuestChatError`: `network_error`, `http_<status>` or `invalid_response`.
   */
  loadHistory(): Promise<ChatMessage[]>;
  /**
   * Leaves: closes the socket, rejects unsent messages and stops following the token client. Final: no event
   * after it (but its `statechange`) and `send()` rejects at once, unless `start()` joins again.
   */
  close(): void;
}

/** Creates a chat on a guest-token client; nothing happens until `start()`. */
export declare function createGuestChat(options: GuestChatOptions): GuestChat;
