// The demo page: a chat widget on the two modules, showing the conversation and what the token client hands
// it. Like a real widget it never prints the token (only its length) nor the session token. Query parameters:
// endpoint (on the page's origin or the configured endpoint's); with the service's rest source (no chat then)
// also duration and scopes (comma-separated), which the default webmessaging source refuses with 422.
// Sign in (when config.json names an OpenID provider: `make run`'s emulator) is the authorization code flow
// with PKCE; the provider sends the browser back here with ?code=&state=, which the page hands to signIn().
import { createGuestChat } from '../guest-chat.js';
import { createSignInTokenClient } from '../guest-sign-in.js';

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
// The refresh cookie crosses no site: from 127.0.0.1, an API on localhost would sign in and forget it at once.
const apiHost = new URL(apiEndpoint, location.href).hostname;
const canSignIn = Boolean(settings.signIn) && apiHost === location.hostname;
const client = createSignInTokenClient({
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

// Sign-in: PKCE (RFC 7636, S256). The verifier, state and nonce wait in sessionStorage for the provider's
// redirect back, and are deleted as it arrives; only the code and the verifier go to the service.
const SIGN_IN_KEY = 'guest-chat-demo:sign-in';
const redirectUri = location.origin + location.pathname;
let signInProblem = null; // shown until a sign-in succeeds
const random = () => base64url(crypto.getRandomValues(new Uint8Array(32)));

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function signIn() {
  const pending = { state: random(), nonce: random(), verifier: random() };
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(pending.verifier)));
  sessionStorage.setItem(SIGN_IN_KEY, JSON.stringify(pending));
  const url = new URL(settings.signIn.authorizeUrl, location.href);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: settings.signIn.clientId,
    redirect_uri: redirectUri,
    scope: 'openid profile',
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  location.assign(url);
}

// Back from the provider: the code (or its error) and our state, which must be the one we sent.
function returnedFromSignIn() {
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(SIGN_IN_KEY));
  } catch {
    // not ours
  }
  sessionStorage.removeItem(SIGN_IN_KEY); // also a sign-in given up (back from the provider's page)
  if (!params.has('state') && !params.has('code')) return;
  history.replaceState(null, '', redirectUri); // the code leaves the address bar (and the history) at once
  const problem = (code) => {
    signInProblem = code;
    $('account-state').textContent = `Sign-in failed: ${code}`;
    log('error', `sign-in failed: ${code}`, { code, retryIn: '' });
  };
  if (!pending || params.get('state') !== pending.state) return problem('state_mismatch');
  if (!params.has('code')) return problem(params.get('error') ?? 'no_code');
  log('sign-in', 'signing in');
  $('account-state').textContent = 'Signing in…';
  $('messages').replaceChildren();
  client
    .signIn({ code: params.get('code'), redirectUri, codeVerifier: pending.verifier, nonce: pending.nonce })
    .then(() => log('sign-in', 'signed in'), (error) => problem(error.code));
}

function showAccount(token) {
  const signedIn = Boolean(token?.authenticated);
  $('account').dataset.signedIn = String(signedIn);
  if (signedIn) signInProblem = null;
  $('account-state').textContent = signedIn
    ? 'Signed in'
    : signInProblem
      ? `Sign-in failed: ${signInProblem}`
      : 'Anonymous guest';
  $('sign-in').hidden = signedIn || !canSignIn;
  $('sign-out').hidden = !signedIn;
}

client.addEventListener('tokenready', ({ detail: token }) => {
  const was = $('account').dataset.signedIn;
  showAccount(token);
  if (was === 'true' && !token.authenticated) log('sign-in', 'no longer signed in: a new guest');
});
$('sign-in').hidden = !canSignIn;
if (settings.signIn && !canSignIn) log('sign-in', `sign-in needs this page on ${apiHost}, the API's host name`);
$('sign-in').addEventListener('click', () => {
  $('sign-in').disabled = true;
  signIn().catch((error) => {
    $('sign-in').disabled = false;
    log('error', `sign-in failed: ${error.name}`, { code: 'sign_in', retryIn: '' });
  });
});
$('sign-out').addEventListener('click', () => {
  log('sign-in', 'signing out');
  $('messages').replaceChildren();
  $('sign-out').hidden = true;
  client.signOut().then(
    () => log('sign-in', 'signed out'),
    (error) => {
      log('error', `sign-out failed: ${error.code}`, { code: error.code, retryIn: '' });
      // Not told: still signed in, so sign-out stays on offer.
      if (client.signedIn) $('account-state').textContent = `Sign-out failed: ${error.code}`;
      $('sign-out').hidden = !client.signedIn;
    },
  );
});
// Back from the provider's page with the browser's Back button (the page from the back-forward cache).
addEventListener('pageshow', () => ($('sign-in').disabled = false));
if (client.signedIn) $('account-state').textContent = 'Signed in: resuming…';
$('sign-out').hidden = !client.signedIn; // also while resuming fails: the customer can always sign out
returnedFromSignIn();

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
