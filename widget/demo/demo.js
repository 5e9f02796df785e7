// The demo page: a chat widget on the two modules, showing the conversation and what the token client hands
// it. Like a real widget it never prints the token (only its length) nor the session token. Query parameters:
// endpoint (on the page's origin or the configured endpoint's); with the service's rest source (no chat then)
// also duration and scopes (comma-separated), which the default webmessaging source refuses with 422.
import { createGuestChat } from '../guest-chat.js';
import { createGuestTokenClient } from '../guest-token-client.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

// `make run` serves config.json with its endpoint and where Genesys' REST API is (for the history); ?endpoint=
// picks another path on this page's origin or the configured endpoint's (the REST API is then found from the
// WebSocket URL, as in production).
async function config() {
  try {
    return await (await fetch('config.json', { cache: 'no-store' })).json();
  } catch {
    return { endpoint: new URL('/guest-tokens', location.origin).href };
  }
}

const settings = await config();
// Any other origin is refused: a link must not send the stored guest's id (the session token) to another site.
const originOf = (url) => URL.parse(url, location.href)?.origin;
const asked = params.get('endpoint');
const allowed = asked && [location.origin, originOf(settings.endpoint)].includes(originOf(asked));
const apiEndpoint = allowed ? asked : settings.endpoint;
const client = createGuestTokenClient({
  endpoint: apiEndpoint,
  duration: params.get('duration') ?? undefined,
  scopes: params.get('scopes')?.split(',') ?? undefined,
});
let received = 0;

function log(kind, text, data = {}) {
  const item = document.createElement('li');
  Object.assign(item.dataset, { kind, ...data });
  item.innerHTML = '<time></time><span></span>';
  item.firstChild.textContent = new Date().toLocaleTimeString();
  item.lastChild.textContent = text;
  $('log').prepend(item);
  while ($('log').children.length > 50) $('log').lastChild.remove();
}

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function countdown() {
  const token = client.current;
  if (!token) {
    $('countdown').textContent = received ? 'expired' : '—';
    // The badge is the token's: a dropped socket leaves it green (the chat's header shows that), expiry does not.
    if (received && $('status').dataset.state === 'ready') setStatus('waiting', 'Token expired');
    return;
  }
  const left = Math.max(0, Math.round((token.expiresAt.getTime() - Date.now()) / 1000));
  const h = Math.floor(left / 3600);
  const m = String(Math.floor((left % 3600) / 60)).padStart(2, '0');
  const s = String(left % 60).padStart(2, '0');
  $('countdown').textContent = h ? `${h}:${m}:${s}` : `${m}:${s}`;
}

client.addEventListener('tokenready', ({ detail: token }) => {
  received += 1;
  $('error').hidden = true;
  setStatus('ready', 'Token ready');
  $('guest-id').textContent = token.guestId;
  $('scopes').textContent =
    token.newSession === undefined ? token.scopes.join(', ') : `session ${token.newSession ? 'new' : 'resumed'}`;
  $('expires-at').textContent = `(at ${token.expiresAt.toLocaleTimeString()})`;
  $('token-summary').textContent = `a JWT of ${token.token.length} characters`;
  $('token-count').textContent = String(received);
  log('token', `${received === 1 ? 'token issued' : 'token refreshed'}: valid for ${token.expiresIn} s`);
  countdown();
  // Never the guest id: with Web Messaging it is the session token, the key to the guest's conversation.
  console.info('guest-token demo: token ready', received === 1 ? '(first)' : '(refreshed)');
});

client.addEventListener('tokenerror', ({ detail: error }) => {
  const retry = error.retryInSeconds === null ? 'Not retrying.' : `Retrying in ${error.retryInSeconds.toFixed(1)} s.`;
  setStatus('error', 'Error');
  $('error').hidden = false;
  $('error-code').textContent = error.code;
  $('error-status').textContent = error.status === null ? '(no answer)' : `(HTTP ${error.status})`;
  $('error-message').textContent = error.message;
  $('error-retry').textContent = retry;
  log('error', `${error.code}: ${retry}`, { code: error.code, retryIn: error.retryInSeconds ?? '' });
  console.warn('guest-token demo:', error.code, error.message);
});

// The chat: the conversation of the session the token client holds.
const chat = createGuestChat({ tokens: client, apiBaseUrl: settings.genesysApi });
const CHAT_STATES = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  replacing: 'Starting a new conversation…',
  unavailable: 'No chat: the service gives no Web Messaging session (rest source)',
  closed: 'Closed',
};
let typingTimer;

function show(message) {
  const shown = message.id && document.querySelector(`#messages li[data-id="${CSS.escape(message.id)}"]`);
  if (shown) return shown;
  const item = document.createElement('li');
  Object.assign(item.dataset, { from: message.from, id: message.id ?? '' });
  item.textContent = message.text;
  $('messages').append(item);
  $('messages').scrollTop = $('messages').scrollHeight;
  if (message.from === 'agent') $('typing').hidden = true;
  return item;
}

chat.addEventListener('statechange', ({ detail: state }) => {
  $('chat').dataset.state = $('chat-state').dataset.state = state;
  $('chat-state').textContent = CHAT_STATES[state] ?? state;
  const usable = state === 'open' || state === 'reconnecting' || state === 'replacing';
  $('message-input').disabled = $('send').disabled = !usable;
  log('chat', `chat ${state}`, { state });
});
chat.addEventListener('history', ({ detail: messages }) => {
  const unsent = $('messages').querySelectorAll('li[data-pending]'); // still waiting: keep them below
  $('messages').replaceChildren();
  messages.forEach(show);
  $('messages').append(...unsent);
  log('chat', `history loaded: ${messages.length} messages`, { history: messages.length });
});
chat.addEventListener('message', ({ detail: message }) => show(message));
chat.addEventListener('typing', ({ detail: typing }) => {
  log('chat', 'the agent is typing', { typing: typing.type });
  $('typing').hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => ($('typing').hidden = true), typing.duration ?? 5000);
});
chat.addEventListener('presence', ({ detail: presence }) => log('chat', `presence: ${presence.type}`));
chat.addEventListener('chaterror', ({ detail: error }) => {
  const retry = error.retryInSeconds === null ? 'Not retrying.' : `Retrying in ${error.retryInSeconds.toFixed(1)} s.`;
  log('error', `chat ${error.code}: ${retry}`, { code: String(error.code), retryIn: error.retryInSeconds ?? '' });
  console.warn('guest chat demo:', error.code, error.message);
});
$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('message-input').value.trim();
  if (!text) return;
  $('message-input').value = '';
  // Shown at once as pending: while the chat (re)connects, send() keeps it and sends it once connected.
  const pending = show({ from: 'guest', text });
  pending.dataset.pending = 'sending';
  chat.send(text).then(
    (message) => {
      pending.remove();
      show(message); // usually shown already, by the `message` event
    },
    (error) => {
      // Refused (`unavailable`: no session; `closed`), or a Genesys error such as 4000 on a read-only session.
      Object.assign(pending.dataset, { pending: 'failed', code: error.code });
      log('error', `message not sent: ${error.code}`, { code: String(error.code), retryIn: '' });
    },
  );
});

$('origin').textContent = location.origin;
$('endpoint').textContent = String(new URL(apiEndpoint, location.href));
$('guest-id').textContent = client.guestId ?? '— (a new guest)';
$('refresh').addEventListener('click', () => client.refresh());
$('reset').addEventListener('click', () => {
  log('reset', 'new guest requested');
  $('messages').replaceChildren();
  client.reset();
});
setInterval(countdown, 250);
chat.start();
client.start();
