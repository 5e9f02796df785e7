// Signed-in customers: a guest-token client that also signs in (Genesys' authenticated web messaging through
// the service's /authenticated-sessions routes; the refresh token stays in the service's HttpOnly cookie).
// Only pages that sign customers in import it. Docs and types: guest-sign-in.d.ts.

import { GuestTokenClient, GuestTokenError, readToken } from './guest-token-client.js';

export const SIGNED_IN_STORAGE_KEY = 'genesys-guest-token:signed-in';

export function createSignInTokenClient(options) {
  return new SignInTokenClient(options);
}

class SignInTokenClient extends GuestTokenClient {
  #sessions;
  #storage;
  #key;
  #signedIn; // where storage is blocked
  #signingIn = null;

  constructor(options) {
    super(options);
    const endpoint = new URL(options.endpoint, globalThis.location?.href);
    this.#sessions = String(new URL(options.sessionsEndpoint ?? 'authenticated-sessions', endpoint));
    this.#storage = options.storage === undefined ? attempt(() => globalThis.localStorage) : options.storage;
    this.#key = options.signedInStorageKey ?? SIGNED_IN_STORAGE_KEY;
    this.#signedIn = this.signedIn;
  }

  // The flag, never a secret: the cookie (which page JavaScript never sees) is what signs the customer in.
  get signedIn() {
    const stored = attempt(() => this.#storage?.getItem(this.#key));
    return stored === undefined ? this.#signedIn : stored === '1';
  }

  #mark(signedIn) {
    this.#signedIn = signedIn;
    attempt(() => (signedIn ? this.#storage?.setItem(this.#key, '1') : this.#storage?.removeItem(this.#key)));
  }

  signIn({ code, redirectUri, codeVerifier, nonce }) {
    // Never aborted: an exchange the service completed has set the cookie, and the code works only once.
    const signingIn = (this.#signingIn = this.#post('', { code, redirectUri, codeVerifier, nonce }).then((token) => {
      // signOut() or another signIn() meanwhile: this one no longer counts.
      if (this.#signingIn !== signingIn) throw new GuestTokenError('Signed out meanwhile.', { code: 'signed_out' });
      this.#mark(true);
      return token;
    }));
    this.refresh();
    return signingIn;
  }

  async signOut() {
    this.#signingIn = null;
    let answer;
    try {
      answer = await fetch(this.#sessions, { method: 'DELETE', credentials: 'include' });
    } catch {
      throw networkError(); // the service was not told: still signed in, the cookie kept; try again
    }
    // Answered: the service has cleared the cookie, even when Genesys' revoke failed.
    this.#mark(false);
    this.reset(); // a new guest, anonymous
    if (!answer.ok) await readToken(answer); // throws its GuestTokenError
  }

  async _request(guestId, signal) {
    const signingIn = this.#signingIn;
    if (signingIn) {
      try {
        return await signingIn;
      } catch {
        // signIn() rejects with it; the guest goes on as before
      } finally {
        if (this.#signingIn === signingIn) this.#signingIn = null;
      }
    }
    if (this.signedIn) {
      try {
        return await this.#post('/refresh', { guestId: guestId ?? undefined }, signal);
      } catch (error) {
        // The cookie is gone or refused, or signed-in customers are off: a new guest, anonymous.
        if (error.code !== 'not_signed_in' && error.status !== 404) throw error;
        this.#mark(false);
        guestId = null;
      }
    }
    return super._request(guestId, signal);
  }

  async #post(path, body, signal) {
    let response;
    try {
      response = await fetch(this.#sessions + path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        credentials: 'include', // the refresh cookie
        signal,
      });
    } catch (error) {
      throw signal?.aborted ? error : networkError();
    }
    const token = await readToken(response.clone());
    const { authToken, authExpiresIn } = await response.json();
    if (typeof authToken !== 'string' || !authToken) {
      throw new GuestTokenError('The token service answered without an auth token.', {
        status: response.status,
        code: 'invalid_response',
      });
    }
    return { ...token, authenticated: true, authToken, authExpiresIn };
  }
}

const networkError = () =>
  new GuestTokenError('No answer from the token service: the network failed, or CORS refused it.', {
    code: 'network_error',
  });

function attempt(action) {
  try {
    return action();
  } catch {
    return undefined; // storage blocked: the flag lives in memory for this page
  }
}
