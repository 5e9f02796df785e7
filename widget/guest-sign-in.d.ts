// Types for guest-sign-in.js: the guest-token client for pages that sign customers in (Genesys' authenticated
// web messaging through the service's /authenticated-sessions routes). Docs: docs/widget.md#signed-in-customers.

import type {
  GuestToken,
  GuestTokenClient,
  GuestTokenClientOptions,
  GuestIdStorage,
  GuestTokenError,
} from "./guest-token-client.js";

/** A signed-in customer's token: what `/guest-tokens` answers, plus the auth JWT for the chat's socket. */
export interface SignedInToken extends GuestToken {
  readonly authenticated: true;
  /**
   * Genesys' auth JWT, for `configureAuthenticatedSession` (guest-chat.js sends it as `data.code`). Short-lived
   * and kept in memory only, as the transport SDK keeps it; never log or store it.
   */
  readonly authToken: string;
  /** Seconds the auth JWT was valid for, when the service could read it. */
  readonly authExpiresIn?: number;
}

export interface SignInTokenClientOptions extends GuestTokenClientOptions {
  /**
   * The service's `/authenticated-sessions` URL. Default: `authenticated-sessions` beside `endpoint`
   * (`…/v1/guest-tokens` gives `…/v1/authenticated-sessions`). It must be on the page's own site: the refresh
   * cookie is not sent across sites (docs/signed-in.md).
   */
  sessionsEndpoint?: string | URL;
  /** Where the signed-in flag is kept: `storage` (by default `localStorage`), or memory when that is `null`. */
  storage?: GuestIdStorage | null;
  /** Default {@link SIGNED_IN_STORAGE_KEY}. */
  signedInStorageKey?: string;
}

/** What the site's OpenID provider sent back (the code) and what the page kept for it (PKCE's verifier, the nonce). */
export interface SignInParameters {
  /** The authorization code from the provider's redirect. */
  code: string;
  /** The redirect URI the page gave the provider, exactly. */
  redirectUri: string;
  /** PKCE's code verifier (RFC 7636: 43-128 unreserved characters), when the page sent a challenge. */
  codeVerifier?: string;
  /** The nonce the page gave the provider, if any. */
  nonce?: string;
}

export interface SignInTokenClient extends GuestTokenClient {
  /** The token, a {@link SignedInToken} while the customer is signed in. */
  readonly current: GuestToken | SignedInToken | null;
  /**
   * The signed-in flag (shared by the page's tabs through storage): the client then gets tokens through
   * `POST /authenticated-sessions/refresh`, which the service answers from its HttpOnly refresh cookie.
   */
  readonly signedIn: boolean;
  /**
   * Hands the provider's code to the service (`POST /authenticated-sessions`, with the cookie: `credentials:
   * 'include'`), which signs the customer in on a new session; starts the client if it is not running. Resolves
   * with the token (also a `tokenready`), after which the client is signed in. Rejects with a
   * `GuestTokenError`: `sign_in_failed` (401: Genesys refused the code; sign in again), `network_error`,
   * `invalid_response`, `rate_limited`, ..., or `signed_out` (`signOut()` came first); the guest then goes on
   * as before. The request is never cancelled: a code works only once.
   */
  signIn(parameters: SignInParameters): Promise<SignedInToken>;
  /**
   * Signs out: asks the service to revoke the sign-in and clear the cookie (`DELETE /authenticated-sessions`);
   * once it answered, clears the flag and begins a new, anonymous guest (`reset()`). Rejects with a
   * `GuestTokenError`: `network_error` when the service could not be told (still signed in: try again), or the
   * service's error code when Genesys' revoke failed (signed out all the same: the service cleared the cookie).
   */
  signOut(): Promise<void>;
}

/**
 * The `localStorage` key of the signed-in flag: `"1"` while signed in, absent otherwise. Never a secret: the
 * refresh token stays in the service's HttpOnly cookie. A refresh the service answers `401 not_signed_in`
 * (the cookie gone, expired or refused; the sign-in revoked) or `404` (signed-in customers switched off) clears
 * it, and the client goes on with a new, anonymous guest.
 */
export declare const SIGNED_IN_STORAGE_KEY: string;

/** Creates a guest-token client that can sign customers in; nothing is requested until `start()` or `signIn()`. */
export declare function createSignInTokenClient(options: SignInTokenClientOptions): SignInTokenClient;

export type { GuestTokenError };
