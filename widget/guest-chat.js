/**
 * Guest chat over Genesys Cloud's Web Messaging Guest API, with the session the guest-token service issued:
 * opens the deployment's WebSocket, configures the session, sends and receives messages, loads the history
 * with the guest JWT and keeps all of it alive (keep-alive, reconnects, replaced sessions, renewed JWTs).
 * A plain ES module: no dependencies, no build step. Types: guest-chat.d.ts.
 * @module guest-chat
 */

const RECONNECT_FIRST_SECONDS = 1;
const RECONNECT_MAX_SECONDS = 30;
// Genesys answers these by replacing the session: expired (4006) or unknown (4007).
const SESSION_GONE = new Set([4006, 4007]);
const TOO_MANY_REQUESTS = 4029;

/** A Guest API failure: its numeric `code` (4000-5000, 4029 rate limited), or a string for others. */
export class GuestChatError extends Error {
  /**
   * @param {string} message
   * @param {{code: number | string, retryAfter?: number | null, status?: number | null}} info
   */
  constructor(message, { code, retryAfter = null, status = null }) {
    super(message);
    this.name = 'GuestChatError';
    this.code = code;
    /** HTTP status of the history call, else null. */
    this.status = status;
    /** Seconds Genesys asked to wait (4029), else null. */
    this.retryAfter = retryAfter;
    /** Seconds until the chat tries again by itself; null: it will not. */
    this.retryInSeconds = null;
  }
}

/**
 * Creates a chat on top of a guest-token client; nothing happens until `start()`.
 * @param {import('./guest-chat.js').GuestChatOptions} options
 * @returns {import('./guest-chat.js').GuestChat}
 */
export function createGuestChat(options) {
  return new GuestChat(options);
}

class GuestChat extends EventTarget {
  #tokens;
  #apiBaseUrl;
  #keepAliveMs;
  #pageSize;
  #ws = null;
  #sessionToken = null;
  #state = 'idle';
  #following = false;
  #attempts = 0;
  #timer;
  #keepAlive;
  #echoes = new Set();
  #pending = new Map(); // tracingId -> {frame, resolve, reject}
  #outbox = [];
  #ids = 0;

  constructor(options) {
    super();
    if (!options?.tokens) throw new TypeError('createGuestChat: `tokens` (a guest-token client) is required');
    this.#tokens = options.tokens;
    this.#apiBaseUrl = options.apiBaseUrl && String(new URL(options.apiBaseUrl, globalThis.location?.href));
    this.#keepAliveMs = (options.keepAliveSeconds ?? 60) * 1000;
    this.#pageSize = options.historyPageSize ?? 25;
  }

  /** `idle`, `connecting`, `open`, `reconnecting`, `unavailable` (no Web Messaging session) or `closed`. */
  get state() {
    return this.#state;
  }

  /** Joins the session of the token client's current (or next) token and follows its renewals. */
  start() {
    if (!this.#following) {
      this.#following = true;
      this.#tokens.addEventListener('tokenready', this.#onToken);
      if (this.#tokens.current) this.#onToken({ detail: this.#tokens.current });
    }
    return this;
  }

  /**
   * Sends a text; resolves with the message as Genesys stored it. Waits for the session while it is
   * (re)connecting, and resends after a 4029 once Genesys' wait is over.
   * @param {string} text
   */
  send(text) {
    return new Promise((resolve, reject) => {
      const frame = { action: 'onMessage', message: { type: 'Text', text } };
      const request = { frame, resolve, reject };
      if (this.#state === 'open') this.#request(request);
      else this.#outbox.push(request);
    });
  }

  /** The conversation so far (oldest first, texts only), through the guest REST call with the current JWT. */
  async loadHistory() {
    const token = this.#tokens.current ?? (await this.#nextToken());
    const url = new URL('api/v2/webmessaging/messages', this.#restBase(token));
    url.searchParams.set('pageSize', String(this.#pageSize));
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${token.token}` },
      credentials: 'omit',
      cache: 'no-store',
    });
    if (!response.ok) {
      throw new GuestChatError(`The history call answered ${response.status}.`, {
        code: `http_${response.status}`,
        status: response.status,
      });
    }
    const { entities = [] } = await response.json();
    return entities.reverse().flatMap((body) => (body.type === 'Text' ? [toMessage(body, true)] : []));
  }

  /** Leaves: closes the socket and stops following the token client (which keeps running). */
  close() {
    this.#following = false;
    this.#tokens.removeEventListener('tokenready', this.#onToken);
    this.#drop();
    for (const request of [...this.#outbox, ...this.#pending.values()]) {
      request.reject?.(new GuestChatError('The chat was closed.', { code: 'closed' }));
    }
    this.#outbox = [];
    this.#pending.clear();
    this.#setState('closed');
  }

  #onToken = ({ detail: token }) => {
    if (!token.webSocketUrl) return this.#setState('unavailable');
    // A renewed JWT for the same open session needs nothing: the next history call reads the current one.
    if (token.guestId === this.#sessionToken && (this.#state === 'open' || this.#ws)) return;
    this.#sessionToken = token.guestId;
    this.#attempts = 0;
    this.#connect(token);
  };

  #connect(token) {
    this.#drop();
    this.#setState(this.#attempts ? 'reconnecting' : 'connecting');
    const ws = (this.#ws = new WebSocket(token.webSocketUrl));
    ws.onopen = () =>
      this.#request({
        frame: { action: 'configureSession', deploymentId: token.deploymentId },
        configure: true,
      });
    ws.onmessage = (event) => this.#onFrame(event.data);
    ws.onclose = () => {
      if (this.#ws !== ws) return; // replaced or closed on purpose
      this.#ws = null;
      this.#stopKeepAlive();
      this.#attempts += 1;
      const error = new GuestChatError('The chat connection was lost.', { code: 'connection_lost' });
      this.#retry(error, Math.min(RECONNECT_MAX_SECONDS, RECONNECT_FIRST_SECONDS * 2 ** (this.#attempts - 1)), () => {
        const current = this.#tokens.current;
        if (current) this.#connect(current);
        else this.#tokens.refresh(); // its tokenready reconnects
      });
      this.#setState('reconnecting');
    };
  }

  #drop() {
    clearTimeout(this.#timer);
    this.#stopKeepAlive();
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      ws.close(1000);
    }
    // Unanswered sends go out again on the next socket.
    for (const request of this.#pending.values()) if (request.resolve) this.#outbox.push(request);
    this.#pending.clear();
  }

  #request(request) {
    const tracingId = globalThis.crypto?.randomUUID?.() ?? `t${Date.now()}-${++this.#ids}`;
    this.#pending.set(tracingId, request);
    this.#ws?.send(JSON.stringify({ ...request.frame, token: this.#sessionToken, tracingId }));
  }

  #onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // a proxy's error page is not the Guest API: the socket's close says what happened
    }
    const { tracingId, body } = frame;
    const request = this.#pending.get(tracingId);
    if (frame.type === 'response') {
      if (this.#echoes.delete(tracingId) && frame.code !== 200) return this.#onErrorFrame(frame, {});
      if (!request) return; // an answer to someone else's request
      this.#pending.delete(tracingId);
      if (frame.code !== 200) return this.#onErrorFrame(frame, request);
      if (request.configure) this.#onSession(body);
      else request.resolve?.(body);
    } else if (frame.class === 'SessionExpiredEvent') {
      this.#replace();
    } else if (frame.class === 'StructuredMessage' && body) {
      if (this.#echoes.delete(tracingId)) return; // the keep-alive's answer
      this.#pending.delete(tracingId);
      if (body.type === 'Text') {
        const message = toMessage(body, false);
        request?.resolve?.(message);
        this.#emit('message', message);
      }
      for (const event of body.events ?? []) {
        const kind = event.eventType?.toLowerCase();
        if (kind === 'typing' || kind === 'presence') this.#emit(kind, event[kind] ?? {});
        if (kind === 'presence' && event.presence?.type === 'Disconnect') this.#replace();
      }
    }
  }

  #onSession(body) {
    // Ended by the agent: a new conversation starts (the service asks Genesys for it with startNew).
    if (body.readOnly) return this.#replace();
    this.#attempts = 0;
    this.#setState('open');
    this.#stopKeepAlive();
    this.#keepAlive = setInterval(() => this.#echo(), this.#keepAliveMs);
    for (const request of this.#outbox.splice(0)) this.#request(request);
    this.loadHistory().then(
      (messages) => this.#emit('history', messages),
      (error) => this.#emit('chaterror', error),
    );
  }

  #onErrorFrame(frame, request) {
    const body = frame.body;
    const code = body?.errorCode ?? frame.code;
    const error = new GuestChatError(body?.errorMessage ?? (typeof body === 'string' ? body : 'Guest API error'), {
      code,
      retryAfter: body?.retryAfter ?? null,
    });
    if (code === TOO_MANY_REQUESTS && request.frame) {
      this.#retry(error, error.retryAfter ?? RECONNECT_FIRST_SECONDS, () => this.#request(request));
    } else if (SESSION_GONE.has(code)) {
      this.#replace();
      if (request.resolve) this.#outbox.push(request); // sent again in the new session
      this.#emit('chaterror', error);
    } else {
      request.reject?.(error);
      this.#emit('chaterror', error);
    }
  }

  #retry(error, seconds, action) {
    error.retryInSeconds = seconds;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(action, seconds * 1000);
    this.#emit('chaterror', error);
  }

  /** The session expired or its conversation ended: the token client gets the guest a new one. */
  #replace() {
    if (this.#state === 'replacing') return;
    this.#drop();
    this.#sessionToken = null;
    this.#setState('replacing');
    this.#tokens.refresh();
  }

  #echo() {
    if (this.#echoes.size) {
      this.#ws?.close(); // the last keep-alive went unanswered: a dead socket, so reconnect
      return;
    }
    const tracingId = `echo-${++this.#ids}`;
    this.#echoes.add(tracingId);
    const frame = { action: 'echo', message: { type: 'Text', text: 'ping' }, token: this.#sessionToken, tracingId };
    this.#ws?.send(JSON.stringify(frame));
  }

  #stopKeepAlive() {
    clearInterval(this.#keepAlive);
    this.#echoes.clear();
  }

  #nextToken() {
    return new Promise((resolve) => {
      this.#tokens.addEventListener('tokenready', ({ detail }) => resolve(detail), { once: true });
      this.#tokens.refresh();
    });
  }

  #restBase(token) {
    if (this.#apiBaseUrl) return this.#apiBaseUrl.replace(/\/?$/, '/');
    // Genesys serves the Guest API at wss://webmessaging.<region> and the REST API at https://api.<region>.
    const url = new URL(token.webSocketUrl);
    return `https://${url.host.replace(/^webmessaging\./, 'api.')}/`;
  }

  #setState(state) {
    if (state !== this.#state) {
      this.#state = state;
      this.#emit('statechange', state);
    }
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function toMessage(body, fromHistory) {
  return {
    id: body.id,
    text: body.text,
    from: body.direction === 'Inbound' ? 'guest' : 'agent',
    time: body.channel?.time ? new Date(body.channel.time) : null,
    fromHistory,
  };
}
