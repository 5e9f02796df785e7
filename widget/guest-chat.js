// Guest chat over Genesys' Web Messaging Guest API with the service's session. Docs and types: guest-chat.d.ts.

import { backoff, bounded } from './guest-token-client.js';

const MAX_REPLACEMENTS = 5;
// Expired, not found: a new session is needed.
const SESSION_GONE = new Set([4006, 4007]);
const TOO_MANY_REQUESTS = 4029;

export class GuestChatError extends Error {
  constructor(message, { code, retryAfter = null, status = null }) {
    super(message);
    this.name = 'GuestChatError';
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
    this.retryInSeconds = null;
  }
}

export function createGuestChat(options) {
  return new GuestChat(options);
}

class GuestChat extends EventTarget {
  #tokens;
  #apiBaseUrl;
  #keepAliveMs;
  #pageSize;
  #autoStart;
  #token; // the socket's
  #joined; // the token whose session got a Join
  #ws = null;
  #sessionToken = null;
  #state = 'idle';
  #following = false;
  #attempts = 0; // since the chat was last healthy, as #replacements
  #replacements = 0;
  #reauths = 0;
  #timer;
  #deadline;
  #healthy;
  #keepAlive;
  #echoing = false; // no frame since the last echo
  #pending = new Map(); // tracingId -> request, oldest first
  #outbox = [];
  #live; // shown while the history loads
  #ids = 0;

  constructor(options) {
    super();
    if (!options?.tokens) throw new TypeError('createGuestChat: `tokens` (a guest-token client) is required');
    this.#tokens = options.tokens;
    this.#apiBaseUrl = options.apiBaseUrl && String(new URL(options.apiBaseUrl, globalThis.location?.href));
    // The transport SDK's minimum (HealthCheckProvider.kt).
    this.#keepAliveMs = Math.max(30, options.keepAliveSeconds ?? 60) * 1000;
    this.#pageSize = options.historyPageSize ?? 25;
    this.#autoStart = options.autoStart;
  }

  get state() {
    return this.#state;
  }

  start() {
    if (!this.#following) {
      this.#following = true;
      this.#tokens.addEventListener('tokenready', this.#onToken);
      if (this.#tokens.current) this.#onToken({ detail: this.#tokens.current });
    }
    return this;
  }

  send(text) {
    return new Promise((resolve, reject) => {
      const request = { frame: { action: 'onMessage', message: { type: 'Text', text } }, resolve, reject };
      if (this.#state === 'closed') reject(closedError());
      else if (this.#state === 'unavailable') reject(unavailableError());
      else if (this.#state === 'open') this.#request(request);
      else this.#outbox.push(request);
    });
  }

  async loadHistory() {
    const token = this.#tokens.current ?? (await this.#nextToken());
    const url = new URL('api/v2/webmessaging/messages', this.#restBase(token));
    url.searchParams.set('pageSize', String(this.#pageSize));
    // Every failure a GuestChatError with a code: no answer (network, CORS), an HTTP error, no JSON.
    const fail = (code, status = null) => {
      throw new GuestChatError(`The history call failed: ${code}.`, { code, status });
    };
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${token.token}` },
      credentials: 'omit',
      cache: 'no-store',
    }).catch(() => fail('network_error'));
    if (!response.ok) fail(`http_${response.status}`, response.status);
    const entities = (await response.json().catch(() => fail('invalid_response', response.status)))?.entities;
    return (Array.isArray(entities) ? entities : [])
      .reverse()
      .flatMap((body) => (body?.type === 'Text' ? [toMessage(body, true)] : []));
  }

  close() {
    this.#following = false;
    this.#tokens.removeEventListener('tokenready', this.#onToken);
    this.#drop();
    for (const request of this.#outbox.splice(0)) request.reject(closedError());
    this.#setState('closed');
  }

  #onToken = ({ detail: token }) => {
    if (!token.webSocketUrl) return this.#giveUp(null);
    // A renewed JWT for the same session needs nothing.
    if (token.guestId === this.#sessionToken && (this.#state === 'open' || this.#ws)) return;
    this.#sessionToken = token.guestId;
    this.#connect(token);
  };

  #connect(token) {
    this.#drop();
    this.#token = token;
    this.#setState(this.#attempts ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = this.#ws = new WebSocket(token.webSocketUrl);
    } catch (error) {
      // Not a WebSocket URL, or ws:// from an https page: it will not pass by itself.
      return this.#giveUp(new GuestChatError(error.message, { code: 'websocket_refused' }));
    }
    this.#expect(); // the handshake
    const code = token.authToken; // a signed-in customer's auth JWT
    const action = code ? 'configureAuthenticatedSession' : 'configureSession';
    const frame = { action, deploymentId: token.deploymentId, data: code && { code } };
    ws.onopen = () => this.#request({ frame, configure: true });
    ws.onmessage = (event) => this.#onFrame(event.data);
    ws.onclose = () => this.#lost('The chat connection was lost.', 'connection_lost');
  }

  // A dead path never completes a close: drop the socket, open another.
  #lost(message, code) {
    this.#drop();
    this.#retry(new GuestChatError(message, { code }), backoff(++this.#attempts, 30), () => {
      const current = this.#tokens.current;
      if (current) this.#connect(current);
      else this.#tokens.refresh(); // its tokenready reconnects
    });
    this.#setState('reconnecting');
  }

  #expect() {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => this.#lost('Genesys did not answer in time.', 'timeout'), 15000);
  }

  #drop() {
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    clearTimeout(this.#healthy);
    clearInterval(this.#keepAlive);
    this.#echoing = false;
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      ws.close(1000);
    }
    // Unanswered sends, and those waiting out a 4029, go out again on the next socket.
    for (const request of this.#pending.values()) {
      clearTimeout(request.timer);
      if (request.resolve) this.#outbox.push(request);
    }
    this.#pending.clear();
  }

  #request(request) {
    const tracingId = globalThis.crypto?.randomUUID?.() ?? `t${Date.now()}-${++this.#ids}`;
    request.timer = 0;
    this.#pending.set(tracingId, request);
    if (request.configure) this.#expect();
    this.#ws?.send(JSON.stringify({ ...request.frame, token: this.#sessionToken, tracingId }));
  }

  // By class, as Genesys' SDKs read frames (transport SDK shyrka/WebMessagingJson.kt): `type` tells nothing.
  #onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // a proxy's error page: the socket's close says what happened
    }
    if (typeof frame !== 'object' || !frame) return;
    const { tracingId, body, class: kind } = frame;
    const failed = kind === 'string' || kind === 'TooManyRequestsErrorMessage' || frame.code > 200;
    const reply = failed || kind === 'SessionResponse';
    this.#echoing = false; // any frame after an echo proves the path
    // Only echoes of own messages come tagged. An untagged reply (or Inbound message) answers the oldest
    // request it fits: our tolerant reading, that Genesys answers a socket's requests in order.
    const same = (sent) => body?.direction === 'Inbound' && sent?.type === body.type && sent.text === body.text;
    const mine = (r) => failed || (reply ? r.configure : same(r.frame.message));
    const id = tracingId ?? [...this.#pending].find(([, r]) => !r.timer && mine(r))?.[0];
    const request = (reply || kind === 'StructuredMessage') && this.#pending.get(id);
    if (request) {
      this.#pending.delete(id);
      if (request.configure) clearTimeout(this.#deadline);
    } else if (reply && tracingId != null) return; // an answer to someone else's request
    if (failed) this.#onErrorFrame(frame, request || {}, id);
    else if (kind === 'SessionResponse') request?.configure && this.#onSession(body);
    // Or signed out: the token client says who the guest is now.
    else if (kind === 'SessionExpiredEvent' || kind === 'LogoutEvent') this.#replace();
    // Another tab or device closed the session's connections to start anew: join it.
    else if (kind === 'ConnectionClosedEvent') this.#lost('Closed by another tab.', 'connection_lost');
    else if (kind === 'StructuredMessage' && typeof body === 'object' && body) {
      // Unmatched: the agent's, or this guest's from another tab or device.
      if (body.type === 'Text' && !request?.echo) {
        const message = toMessage(body, false);
        request?.resolve?.(message);
        this.#live?.push(message);
        this.#emit('message', message);
      }
      for (const event of Array.isArray(body.events) ? body.events : []) {
        const kind = String(event?.eventType).toLowerCase();
        if (kind === 'typing' || kind === 'presence') this.#emit(kind, event[kind] ?? {});
        // Only a read-only Disconnect ends the conversation (transport SDK core/MessagingClientImpl.kt).
        if (event?.presence?.type === 'Disconnect' && /^true$/i.test(body.metadata?.readOnly)) this.#replace();
      }
    }
  }

  #onSession(body) {
    // Ended by the agent: the service starts a new conversation.
    if (body?.readOnly) return this.#replace();
    this.#setState('open');
    this.#reauths = 0;
    // Backoffs restart only once a socket has proven healthy.
    this.#healthy = setTimeout(() => this.#settle(), 30000);
    this.#keepAlive = setInterval(() => this.#echo(), this.#keepAliveMs);
    // As Genesys' SDKs autostart; the service configured the session first, so its token says if it is new.
    const token = this.#token;
    if (this.#autoStart && token.newSession && this.#joined !== token) {
      this.#joined = token;
      const join = { type: 'Event', events: [{ eventType: 'Presence', presence: { type: 'Join' } }] };
      this.#request({ frame: { action: 'onMessage', message: join } });
    }
    for (const request of this.#outbox.splice(0)) this.#request(request);
    const ws = this.#ws;
    const live = (this.#live = []);
    this.loadHistory().then(
      // Not for a replaced or closed session.
      (messages) => {
        const ids = new Set(messages.map((m) => m.id));
        this.#ws === ws && this.#emit('history', [...messages, ...live.filter((m) => !ids.has(m.id))]);
      },
      (error) => this.#ws === ws && this.#emit('chaterror', error),
    );
  }

  #settle() {
    this.#attempts = this.#replacements = 0;
  }

  #onErrorFrame(frame, request, tracingId) {
    const body = frame.body;
    const code = body?.errorCode ?? frame.code ?? 'guest_api_error';
    const error = new GuestChatError(body?.errorMessage ?? (typeof body === 'string' ? body : 'Guest API error'), {
      code,
      retryAfter: body?.retryAfter ?? null,
    });
    const throttled = code === TOO_MANY_REQUESTS && request.frame && !request.echo;
    if (throttled) error.retryInSeconds = bounded(error.retryAfter ?? 1);
    // An auth JWT refused: refreshed and configured again, 3 times at most (transport SDK).
    const reauth = request.configure && code === 401 && ++this.#reauths < 4;
    // A 5xxx on configureSession: the reconnect reports it.
    if (!(request.configure && code >= 5000) && !reauth) this.#emit('chaterror', error);
    if (throttled) {
      // Still pending: a lost socket resends it, close() rejects it.
      this.#pending.set(tracingId, request);
      request.timer = setTimeout(() => {
        this.#pending.delete(tracingId);
        this.#request(request);
      }, error.retryInSeconds * 1000);
    } else if (SESSION_GONE.has(code) || reauth) {
      if (request.resolve) this.#outbox.push(request); // sent again in the new session
      this.#replace();
    } else if (request.configure && code === 4017) {
      this.#replace(true); // a signed-in customer's session: begin a new guest
    } else if (request.configure) {
      // A 5xxx may pass, so reconnect; a 4xxx will not.
      if (code >= 5000) this.#lost(error.message, code);
      else this.#giveUp(null);
    } else {
      request.reject?.(error);
    }
  }

  #retry(error, seconds, action) {
    error.retryInSeconds = seconds;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(action, seconds * 1000);
    this.#emit('chaterror', error);
  }

  #replace(newGuest) {
    if (this.#state === 'replacing') return;
    this.#drop();
    this.#sessionToken = null;
    this.#setState('replacing');
    // Refused again and again: back off, then give up.
    const count = ++this.#replacements;
    if (count > MAX_REPLACEMENTS) {
      return this.#giveUp(new GuestChatError('No usable chat session.', { code: 'session_unavailable' }));
    }
    const next = () => (newGuest ? this.#tokens.reset() : this.#tokens.refresh());
    this.#timer = setTimeout(next, count > 1 ? backoff(count - 1, 30) * 1000 : 0);
  }

  // Until the next token: sends are rejected, not left hanging.
  #giveUp(error) {
    this.#drop();
    this.#sessionToken = null;
    this.#setState('unavailable');
    for (const request of this.#outbox.splice(0)) request.reject(unavailableError());
    if (error) this.#emit('chaterror', error);
  }

  #echo() {
    if (this.#echoing) return this.#lost('Genesys stopped answering.', 'connection_lost');
    this.#echoing = true;
    // Unanswered, it must not take an untagged answer meant for another request.
    for (const [id, request] of this.#pending) if (request.echo) this.#pending.delete(id);
    this.#request({ frame: { action: 'echo', message: { text: 'ping', type: 'Text' } }, echo: true });
  }

  #nextToken() {
    return new Promise((resolve) => {
      this.#tokens.addEventListener('tokenready', ({ detail }) => resolve(detail), { once: true });
      this.#tokens.refresh();
    });
  }

  #restBase(token) {
    if (this.#apiBaseUrl) return this.#apiBaseUrl.replace(/\/?$/, '/');
    // wss://webmessaging.<region> -> https://api.<region>
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
    // Nothing after close() but its own statechange.
    if (this.#following || type === 'statechange') this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

const closedError = () => new GuestChatError('The chat was closed.', { code: 'closed' });
const unavailableError = () => new GuestChatError('No chat session.', { code: 'unavailable' });

function toMessage(body, fromHistory) {
  return {
    id: body.id,
    text: body.text,
    from: body.direction === 'Inbound' ? 'guest' : 'agent',
    time: body.channel?.time ? new Date(body.channel.time) : null,
    fromHistory,
  };
}
