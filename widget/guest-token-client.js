// Gets guest tokens from the guest-token service and keeps them fresh. Docs and types: guest-token-client.d.ts.

export const GUEST_ID_STORAGE_KEY = 'genesys-guest-token:guest-id';

const GUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SLOW_RETRY_SECONDS = 300; // after maxRetries: an outage must not leave open chats dead

// 0.5-1 s for attempt 1, doubling up to max seconds, jittered.
export const backoff = (attempt, max) => Math.min(max, 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);

// A server's 0 must not loop, nor a huge wait overflow setTimeout.
export const bounded = (seconds) => Math.min(300, Math.max(1, Number(seconds) || 0));

export class GuestTokenError extends Error {
  constructor(message, { status = null, code, requestId = null, details = [], retryAfter = null }) {
    super(message);
    this.name = 'GuestTokenError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.details = details;
    this.retryAfter = retryAfter;
    this.retryInSeconds = null;
  }
}

export function createGuestTokenClient(options) {
  return new GuestTokenClient(options);
}

export class GuestTokenClient extends EventTarget {
  #endpoint;
  #body;
  #onToken;
  #onError;
  #storage;
  #storageKey;
  #marginMs;
  #hiddenPauseMs;
  #maxRetries;
  #guestId;
  #current = null;
  #started = false;
  #paused = false;
  #failures = 0;
  #waiting = false; // a transient failure is being retried
  #slow = false; // the deployment is off: retried only slowly
  #timer;
  #hiddenTimer;
  #request = null;
  #onStorage;

  constructor(options) {
    super();
    // Tabs share the guest: when one stores a new id, the others adopt it.
    this.#onStorage = (event) => {
      if (event.key !== this.#storageKey) return;
      // Removed: another tab began a new guest; do not write the old id back.
      if (event.newValue === null) this.#guestId = null;
      else this.#adopt();
    };
    if (!options?.endpoint) throw new TypeError('createGuestTokenClient: `endpoint` is required');
    this.#endpoint = String(new URL(options.endpoint, globalThis.location?.href));
    this.#body = { duration: options.duration, scopes: options.scopes && [...options.scopes] };
    this.#onToken = options.onToken;
    this.#onError = options.onError;
    this.#storage = options.storage === undefined ? localStorageOrNull() : options.storage;
    this.#storageKey = options.storageKey ?? GUEST_ID_STORAGE_KEY;
    this.#marginMs = (options.refreshMarginSeconds ?? 60) * 1000;
    this.#hiddenPauseMs = (options.hiddenPauseSeconds ?? 300) * 1000;
    this.#maxRetries = options.maxRetries ?? 5;
    this.#guestId = this.#stored();
  }

  #stored() {
    const stored = attempt(() => this.#storage?.getItem(this.#storageKey));
    // Anything but a UUID would be refused: a new guest is better than a stuck widget.
    return typeof stored === 'string' && GUEST_ID.test(stored) ? stored : null;
  }

  #adopt() {
    const stored = this.#stored();
    if (this.#started && stored && stored !== this.#guestId) {
      this.#guestId = stored;
      this.#current = null;
      this.refresh();
    }
  }

  get guestId() {
    return this.#guestId;
  }

  get current() {
    return this.#current && Date.now() < this.#current.expiresAt.getTime() ? this.#current : null;
  }

  start() {
    if (!this.#started) {
      this.#started = true;
      this.#failures = 0;
      if (globalThis.document) {
        document.addEventListener('visibilitychange', this.#onVisibilityChange);
        this.#onVisibilityChange(); // started in a background tab: the pause countdown starts now
      }
      globalThis.addEventListener?.('online', this.#recheck);
      globalThis.addEventListener?.('pageshow', this.#recheck);
      globalThis.addEventListener?.('storage', this.#onStorage);
      this.#fetchToken();
    }
    return this;
  }

  refresh() {
    this.#failures = 0;
    if (this.#started) this.#fetchToken();
    else this.start();
  }

  reset() {
    this.#forget();
    if (this.#started) this.refresh();
  }

  #forget() {
    this.#guestId = null;
    this.#current = null;
    attempt(() => this.#storage?.removeItem(this.#storageKey));
  }

  stop() {
    this.#started = this.#paused = false;
    clearTimeout(this.#timer);
    clearTimeout(this.#hiddenTimer);
    this.#request?.abort();
    this.#request = null;
    globalThis.document?.removeEventListener('visibilitychange', this.#onVisibilityChange);
    globalThis.removeEventListener?.('online', this.#recheck);
    globalThis.removeEventListener?.('pageshow', this.#recheck);
    globalThis.removeEventListener?.('storage', this.#onStorage);
  }

  // Online, back from the bfcache or visible: retry now what failed or expired.
  #recheck = () => {
    const due = this.#waiting ? !this.#slow : this.#current && !this.current;
    if (this.#started && !this.#paused && !this.#request && due) {
      this.#failures = 0;
      this.#fetchToken();
    }
  };

  #onVisibilityChange = () => {
    clearTimeout(this.#hiddenTimer);
    if (document.visibilityState === 'hidden') {
      // A tab hidden for long should not keep asking for tokens nobody uses.
      this.#hiddenTimer = setTimeout(() => {
        this.#paused = true;
        clearTimeout(this.#timer);
      }, this.#hiddenPauseMs);
    } else if (this.#paused) {
      this.#paused = false;
      this.#failures = 0;
      this.#scheduleRefresh();
    } else {
      this.#recheck();
    }
  };

  #scheduleRefresh() {
    const token = this.current;
    if (!token) {
      this.#fetchToken();
      return;
    }
    // A margin before expiry, at most half the token's life.
    const margin = Math.min(this.#marginMs, (token.expiresIn * 1000) / 2);
    this.#later(token.expiresAt.getTime() - margin - Date.now());
  }

  #later(ms) {
    clearTimeout(this.#timer);
    if (this.#started && !this.#paused) {
      this.#timer = setTimeout(() => this.#fetchToken(), Math.min(Math.max(0, ms), 2 ** 31 - 1));
    }
  }

  async #fetchToken() {
    clearTimeout(this.#timer);
    this.#request?.abort(); // a reset() must not get the previous guest's token
    const request = (this.#request = new AbortController());
    // Another tab may have begun a new guest: join it rather than undo it.
    const sentGuestId = (this.#guestId = this.#stored() ?? this.#guestId);
    let token;
    try {
      token = await this._request(this.#guestId, request.signal);
    } catch (error) {
      if (request.signal.aborted) return; // superseded by a newer request, reset() or stop()
      this.#request = null;
      if (sentGuestId && error.status === 422 && error.details?.some((detail) => detail.field === 'guestId')) {
        // A stored id refused once is refused forever: begin a new guest.
        this.#forget();
        return this.#fetchToken();
      }
      return this.#fail(
        error instanceof GuestTokenError
          ? error
          : new GuestTokenError(
              'No answer from the token service: the network failed, or the service does not allow this ' +
                "page's origin (CORS).",
              { code: 'network_error' },
            ),
      );
    }
    if (request.signal.aborted) return;
    this.#request = null;
    this.#failures = 0;
    this.#waiting = this.#slow = false;
    this.#current = token;
    this.#guestId = token.guestId;
    attempt(() => this.#storage?.setItem(this.#storageKey, token.guestId)); // only the id, never the token
    this.#scheduleRefresh();
    this.#emit('tokenready', token, this.#onToken);
  }

  // The token request; guest-sign-in.js overrides it.
  _request(guestId, signal) {
    return fetch(this.#endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ guestId: guestId ?? undefined, ...this.#body }),
      credentials: 'omit', // no cache option: 'no-store' would defeat the preflight cache
      signal,
    }).then(readToken);
  }

  #fail(error) {
    // Retried: what may pass by itself (a 4xx will not). Retry-After only lengthens the backoff.
    const { status, code } = error;
    this.#waiting = status === null || code === 'invalid_response' || status === 429 || status >= 500;
    // The deployment is off (the service caches that): only slow retries.
    this.#slow = code === 'deployment_unavailable';
    if (this.#waiting) {
      const failures = ++this.#failures;
      error.retryInSeconds = Math.max(
        failures > this.#maxRetries || this.#slow ? backoff(Infinity, SLOW_RETRY_SECONDS) : backoff(failures, 60),
        error.retryAfter === null ? 0 : bounded(error.retryAfter),
      );
      this.#later(error.retryInSeconds * 1000);
    }
    this.#emit('tokenerror', error, this.#onError);
  }

  #emit(type, detail, callback) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
    try {
      callback?.(detail);
    } catch (error) {
      setTimeout(() => {
        throw error; // reported like any uncaught error, without breaking the refresh cycle
      });
    }
  }
}

export async function readToken(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    if (error.name === 'AbortError') throw error;
  }
  if (response.ok) {
    const { token, guestId, scopes, expiresIn, newSession, deploymentId, webSocketUrl } = body ?? {};
    if (typeof token === 'string' && typeof guestId === 'string' && expiresIn > 0 && (scopes === undefined || Array.isArray(scopes))) {
      // expiresIn, not expiresAt: this device's clock may be wrong.
      const expiresAt = new Date(Date.now() + expiresIn * 1000);
      return { token, guestId, scopes: scopes ?? [], expiresIn, expiresAt, newSession, deploymentId, webSocketUrl };
    }
    throw new GuestTokenError('The token service answered without a token.', {
      status: response.status,
      code: 'invalid_response',
    });
  }
  const error = body?.error ?? {};
  throw new GuestTokenError(error.message ?? `The token service answered ${response.status}.`, {
    status: response.status,
    code: error.code ?? `http_${response.status}`,
    requestId: error.requestId ?? null,
    details: error.details ?? [],
    retryAfter: retryAfterSeconds(response.headers.get('Retry-After')),
  });
}

// Seconds or an HTTP date (RFC 9110).
function retryAfterSeconds(value) {
  if (value === null) return null;
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  return Number.isNaN(seconds) ? null : Math.max(0, seconds);
}

function localStorageOrNull() {
  // Throws where storage is blocked.
  return attempt(() => globalThis.localStorage) ?? null;
}

function attempt(action) {
  try {
    return action();
  } catch {
    return undefined; // storage blocked or full: the id lives in memory for this page
  }
}
