// The demo page: a stand-in chat widget that shows what the client hands it. Like a real widget it never
// prints the token: only its length. Query parameters: endpoint; with the service's rest source also duration
// and scopes (comma-separated), which the default webmessaging source refuses with 422.
import { createGuestTokenClient } from '../guest-token-client.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

// `make run` serves config.json with its endpoint; a page hosted elsewhere passes ?endpoint=.
async function endpoint() {
  if (params.get('endpoint')) return params.get('endpoint');
  try {
    return (await (await fetch('config.json', { cache: 'no-store' })).json()).endpoint;
  } catch {
    return new URL('/guest-tokens', location.origin).href;
  }
}

const apiEndpoint = await endpoint();
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

$('origin').textContent = location.origin;
$('endpoint').textContent = String(new URL(apiEndpoint, location.href));
$('guest-id').textContent = client.guestId ?? '— (a new guest)';
$('refresh').addEventListener('click', () => client.refresh());
$('reset').addEventListener('click', () => {
  log('reset', 'new guest requested');
  client.reset();
});
setInterval(countdown, 250);
client.start();
