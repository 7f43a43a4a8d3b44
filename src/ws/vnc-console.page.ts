/**
 * The console page's own files, kept as strings so that the build (tsc, dist/ only) carries them.
 * The page loads nothing from outside this server: noVNC's ES modules come from the @novnc/novnc
 * package under ./novnc/, GraphQL (instruction pages, live status, renewal) from this server.
 */

export const CONSOLE_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>VM console</title>
<link rel="stylesheet" href="console.css">
<script type="module" src="console.js"></script>
</head>
<body data-state="starting">
<header>
  <strong id="lab-name">Lab</strong>
  <nav id="vms" aria-label="Virtual machines"></nav>
  <span id="status" role="status"></span>
  <span class="spacer"></span>
  <span id="access"></span>
  <button id="fullscreen" type="button" title="Full screen">Full screen</button>
  <button id="cad" type="button" title="Send Ctrl+Alt+Del">Ctrl+Alt+Del</button>
  <button id="toggle-pages" type="button" aria-expanded="true">Instructions</button>
</header>
<main>
  <section id="console">
    <div id="screen"></div>
    <div id="message" hidden><p id="message-text"></p><div id="message-actions"></div></div>
    <form id="send-text">
      <label for="text">Send text as key strokes</label>
      <textarea id="text" rows="2" spellcheck="false" placeholder="Text to type into the VM"></textarea>
      <button type="submit">Type it</button>
    </form>
  </section>
  <aside id="pages">
    <nav id="page-list" aria-label="Instruction pages"></nav>
    <article id="page"></article>
    <form id="sign-in" hidden>
      <p>Sign in to see each VM's live status and keep the console open beyond <span id="until"></span>.</p>
      <input id="email" type="email" autocomplete="username" placeholder="E-mail" required>
      <input id="password" type="password" autocomplete="current-password" placeholder="Password" required>
      <button type="submit">Sign in</button>
      <p id="sign-in-error" role="alert"></p>
    </form>
  </aside>
</main>
</body>
</html>
`;

export const CONSOLE_CSS = String.raw`
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font: 14px/1.4 system-ui, sans-serif; background: #1b1f27; color: #e6e6e6; }
body { display: flex; flex-direction: column; }
header { display: flex; align-items: center; gap: .6rem; padding: .4rem .8rem; background: #262b36; flex-wrap: wrap; }
header .spacer { flex: 1; }
button { font: inherit; background: #3a4254; color: #fff; border: 1px solid #4c5670; border-radius: 4px; padding: .25rem .6rem; cursor: pointer; }
button:hover { background: #4a5470; }
#vms { display: flex; gap: .3rem; }
#vms button[aria-current="true"] { background: #2f6fdb; border-color: #2f6fdb; }
#vms .dot { display: inline-block; width: .6rem; height: .6rem; border-radius: 50%; margin-right: .35rem; background: #888; }
#vms .dot.ready { background: #3c3; } #vms .dot.starting { background: #fb3; } #vms .dot.failed { background: #e44; }
#status { color: #bbb; }
#access { color: #999; font-size: 12px; }
main { flex: 1; display: flex; min-height: 0; }
#console { flex: 1; display: flex; flex-direction: column; min-width: 0; position: relative; }
#screen { flex: 1; min-height: 0; background: #111; }
#message { position: absolute; inset: 0 0 4.5rem 0; display: flex; flex-direction: column; align-items: center; justify-content: center; background: rgba(17, 17, 17, .85); text-align: center; padding: 2rem; }
#message[hidden] { display: none; }
#message p { font-size: 1.2rem; max-width: 40rem; }
#send-text { display: flex; gap: .5rem; align-items: center; padding: .4rem .8rem; background: #262b36; }
#send-text label { white-space: nowrap; color: #bbb; }
#send-text textarea { flex: 1; font: 13px monospace; background: #11151c; color: #eee; border: 1px solid #4c5670; border-radius: 4px; }
#pages { width: 34%; min-width: 16rem; max-width: 40rem; display: flex; flex-direction: column; background: #f7f7f4; color: #222; overflow: auto; }
#pages[hidden] { display: none; }
#page-list { display: flex; flex-wrap: wrap; gap: .3rem; padding: .5rem; border-bottom: 1px solid #ddd; }
#page-list button { background: #e4e4df; color: #222; border-color: #ccc; }
#page-list button[aria-current="true"] { background: #2f6fdb; color: #fff; }
#page { flex: 1; padding: .5rem 1rem; min-height: 12rem; }
#page iframe { width: 100%; height: 100%; min-height: 24rem; border: 0; background: #fff; }
#page pre { white-space: pre-wrap; font: 14px/1.5 system-ui, sans-serif; }
#sign-in { padding: .8rem 1rem; border-top: 1px solid #ddd; display: grid; gap: .4rem; }
#sign-in[hidden], #send-text[hidden] { display: none; }
#sign-in input { font: inherit; padding: .3rem; }
#sign-in-error { color: #b00; margin: 0; }
`;

/** The page's script: an ES module (the only script; no inline code, so the CSP allows 'self' only). */
export const CONSOLE_JS = String.raw`
import RFB from './novnc/core/rfb.js';

const $ = (id) => document.getElementById(id);
const SESSION_KEY = 'lab-orchestrator.session';
const GRAPHQL = new URL('../graphql', location.href).href;
const STATUS_QUERY = 'subscription ($id: ID!) { labInstanceStatus(id: $id) { status at vms { name phase ready reason message } labInstance { expiresAt statusMessage } } }';
const LAB_QUERY = 'query ($id: ID!) { lab(id: $id) { name instructionPages { id title content position } } }';
const RENEW = 'mutation ($id: ID!) { renewVncAccess(labInstanceId: $id) { token expiresAt allowedVms } }';
const LOGIN = 'mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { token } }';

const params = new URLSearchParams(location.hash.length > 1 ? location.hash.slice(1) : location.search.slice(1));
const pathParts = (params.get('path') || '').split('/').filter(Boolean);
const state = {
  prefix: pathParts.slice(0, -2).join('/'),
  token: pathParts.length >= 2 ? pathParts[pathParts.length - 2] : '',
  vm: pathParts.length >= 2 ? decodeURIComponent(pathParts[pathParts.length - 1]) : '',
  vms: (params.get('allowed_vmis') || '').split(',').filter(Boolean),
  wsHost: params.get('host') && params.get('port') ? params.get('host') + ':' + params.get('port') : location.host,
  claims: null,
  attempt: null,
  rfb: null,
  retries: 0,
  retryTimer: null,
  renewTimer: null,
  statuses: {},
  ended: null,
  waitingFor: null,
  session: sessionStorage.getItem(SESSION_KEY),
  statusSocket: null,
};

function decodeClaims(token) {
  try {
    const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
  } catch {
    return null;
  }
}

function setState(name) {
  document.body.dataset.state = name;
  document.body.dataset.vm = state.vm;
}

function showMessage(text, actions) {
  const box = $('message');
  if (!text) {
    box.hidden = true;
    return;
  }
  $('message-text').textContent = text;
  const holder = $('message-actions');
  holder.replaceChildren();
  for (const [label, run] of actions || []) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.addEventListener('click', run);
    holder.append(b);
  }
  box.hidden = false;
}

function setStatus(text) {
  $('status').textContent = text;
}

function endAccess(text) {
  state.ended = text;
  clearTimeout(state.retryTimer);
  clearTimeout(state.renewTimer);
  disconnect();
  showMessage(text);
  setStatus('Access ended');
  setState('ended');
  if (state.statusSocket) state.statusSocket.close(1000);
}

function proxyUrl(vm) {
  const path = [state.prefix, state.token, encodeURIComponent(vm)].filter(Boolean).join('/');
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + state.wsHost + '/' + path;
}

function remember() {
  const path = [state.prefix, state.token, state.vm].filter(Boolean).join('/');
  const hash = 'path=' + encodeURIComponent(path) + '&allowed_vmis=' + encodeURIComponent(state.vms.join(',')) + '&autoconnect=1';
  history.replaceState(null, '', location.pathname + location.search + '#' + hash);
}

function disconnect() {
  const attempt = state.attempt;
  state.attempt = null;
  if (state.rfb) {
    try {
      state.rfb.disconnect();
    } catch {
      // already closed
    }
  }
  state.rfb = null;
  if (attempt && attempt.ws.readyState < 2) attempt.ws.close(1000);
  $('screen').replaceChildren();
}

function connect(vm) {
  if (state.ended) return;
  clearTimeout(state.retryTimer);
  disconnect();
  state.vm = vm;
  state.waitingFor = null;
  renderVms();
  remember();
  setState('connecting');
  setStatus('Connecting to ' + vm + '...');
  const ws = new WebSocket(proxyUrl(vm), ['binary']);
  const attempt = { ws, vm, opened: false, token: state.token };
  state.attempt = attempt;
  ws.addEventListener('open', () => (attempt.opened = true));
  ws.addEventListener('close', (e) => closed(attempt, e));
  const rfb = new RFB($('screen'), ws, { shared: true });
  rfb.scaleViewport = true;
  rfb.background = '#111';
  rfb.addEventListener('connect', () => {
    if (state.attempt !== attempt) return;
    state.retries = 0;
    showMessage(null);
    setStatus('Connected to ' + vm);
    setState('connected');
    rfb.focus();
  });
  rfb.addEventListener('desktopname', (e) => (document.title = e.detail.name + ' - console'));
  state.rfb = rfb;
}

function retry(text) {
  const delay = Math.min(15000, 1000 * 2 ** state.retries++);
  showMessage(text + ' Trying again in ' + Math.round(delay / 1000) + ' s.', [['Try now', () => connect(state.vm)]]);
  setState('retrying');
  state.retryTimer = setTimeout(() => connect(state.vm), delay);
}

function closed(attempt, e) {
  if (state.attempt !== attempt || state.ended) return;
  state.attempt = null;
  state.rfb = null;
  const vm = attempt.vm;
  const why = e.reason ? e.reason + '.' : '';
  switch (e.code) {
    case 4400:
      state.waitingFor = vm;
      setState('waiting');
      setStatus(vm + ' is starting');
      showMessage('The VM ' + vm + ' is not running yet. The console opens as soon as it runs.');
      // The live status says when; without it (or should it be late), try again now and then.
      state.retryTimer = setTimeout(() => connect(vm), state.session ? 5000 : 3000);
      return;
    case 4401:
      if (state.token !== attempt.token) return connect(vm); // renewed meanwhile: carry on with the new token
      return endAccess('Access ended: the console link has expired. Open the console again from the lab.');
    case 4403:
    case 4410:
      return endAccess(why || 'Access ended.');
    case 4404:
      setState('missing');
      return showMessage('The VM ' + vm + ' does not exist (any more).', otherVmActions(vm));
    case 4409:
      setState('taken-over');
      setStatus('Opened elsewhere');
      return showMessage('This console was opened in another window or tab.', [['Use it here', () => connect(vm)]]);
    case 4502:
    case 4504:
    case 1001:
    case 1011:
      return retry((why || 'The console could not be reached.') + '');
    default:
      if (!attempt.opened) {
        // Refused before the WebSocket opened: the browser is not told why (401/403/409).
        if (state.claims && state.claims.exp * 1000 <= Date.now()) {
          return endAccess('Access ended: the console link has expired. Open the console again from the lab.');
        }
        return endAccess('The console cannot be opened: the link is no longer valid, the lab was stopped, or access ended.');
      }
      return retry('The connection to the console was lost.');
  }
}

function otherVmActions(current) {
  return state.vms.filter((v) => v !== current).map((v) => ['Open ' + v, () => connect(v)]);
}

function renderVms() {
  const nav = $('vms');
  nav.replaceChildren();
  for (const vm of state.vms) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.vm = vm;
    const s = state.statuses[vm];
    const dot = document.createElement('span');
    dot.className = 'dot' + (s ? (s.ready ? ' ready' : s.phase === 'FAILED' || s.message ? ' failed' : ' starting') : '');
    b.append(dot, vm);
    b.title = s ? (s.ready ? 'running' : (s.reason || s.phase.toLowerCase()) + (s.message ? ': ' + s.message : '')) : '';
    b.setAttribute('aria-current', String(vm === state.vm));
    b.addEventListener('click', () => connect(vm));
    nav.append(b);
  }
}

async function graphql(query, variables, auth) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (auth && state.session) headers.authorization = 'Bearer ' + state.session;
  const res = await fetch(GRAPHQL, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors && body.errors.length) throw Object.assign(new Error(body.errors[0].message), { code: body.errors[0].extensions && body.errors[0].extensions.code });
  return body.data;
}

async function loadPages() {
  if (!state.claims) return;
  try {
    const { lab } = await graphql(LAB_QUERY, { id: String(state.claims.lab_instance.lab_id) });
    if (!lab) return;
    $('lab-name').textContent = lab.name;
    const pages = [...lab.instructionPages].sort((a, b) => a.position - b.position);
    const list = $('page-list');
    list.replaceChildren();
    pages.forEach((p, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = p.title;
      b.addEventListener('click', () => showPage(pages, i));
      list.append(b);
    });
    if (pages.length) showPage(pages, 0);
    else $('page').textContent = 'This lab has no instruction pages.';
  } catch (err) {
    $('page').textContent = 'The instructions could not be loaded: ' + err.message;
  }
}

function showPage(pages, index) {
  [...$('page-list').children].forEach((b, i) => b.setAttribute('aria-current', String(i === index)));
  const content = pages[index].content || '';
  const holder = $('page');
  holder.replaceChildren();
  if (/<[a-z][\s\S]*>/i.test(content)) {
    // HTML as the author wrote it, in a sandbox: no scripts, no access to this page.
    const frame = document.createElement('iframe');
    frame.setAttribute('sandbox', '');
    frame.title = pages[index].title;
    frame.srcdoc = content;
    holder.append(frame);
  } else {
    const h = document.createElement('h2');
    h.textContent = pages[index].title;
    const pre = document.createElement('pre');
    pre.textContent = content;
    holder.append(h, pre);
  }
}

function onStatus(event) {
  if (!event) return;
  for (const vm of event.vms) state.statuses[vm.name] = vm;
  renderVms();
  if (event.status === 'STOPPING' || event.status === 'STOPPED') {
    return endAccess('Access ended: the lab instance was ' + (event.status === 'STOPPED' ? 'stopped' : 'stopped (shutting down)') + '.');
  }
  const current = state.statuses[state.vm];
  if (state.waitingFor && current && current.ready && current.name === state.waitingFor) connect(state.waitingFor);
  else if (state.waitingFor && current && !current.ready) {
    showMessage('The VM ' + state.vm + ' is not running yet (' + (current.message || current.reason || current.phase.toLowerCase()) + '). The console opens as soon as it runs.');
  }
}

function subscribeStatus() {
  if (!state.session || !state.claims || state.ended) return;
  const url = GRAPHQL.replace(/^http/, 'ws');
  const ws = new WebSocket(url, 'graphql-transport-ws');
  state.statusSocket = ws;
  ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer ' + state.session } })));
  ws.addEventListener('message', (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === 'connection_ack') {
      ws.send(JSON.stringify({ id: 'status', type: 'subscribe', payload: { query: STATUS_QUERY, variables: { id: String(state.claims.lab_instance.lab_instance_id) } } }));
    } else if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
    else if (msg.type === 'next') {
      if (msg.payload.errors) signedOut('Sign in again to see the live status (' + msg.payload.errors[0].message + ').');
      else onStatus(msg.payload.data.labInstanceStatus);
    } else if (msg.type === 'error') signedOut('Sign in again to see the live status (' + msg.payload[0].message + ').');
  });
  ws.addEventListener('close', (e) => {
    if (state.statusSocket !== ws || state.ended) return;
    state.statusSocket = null;
    if (e.code === 4403 || e.code === 4401) return signedOut('Your sign-in ended; sign in again to see the live status.');
    setTimeout(subscribeStatus, 3000);
  });
}

function signedOut(text) {
  state.session = null;
  sessionStorage.removeItem(SESSION_KEY);
  if (state.statusSocket) state.statusSocket.close(1000);
  state.statusSocket = null;
  $('sign-in-error').textContent = text || '';
  showSignIn();
}

function showSignIn() {
  const form = $('sign-in');
  form.hidden = Boolean(state.session);
  if (state.claims) $('until').textContent = new Date(state.claims.exp * 1000).toLocaleTimeString();
}

function showAccess() {
  if (!state.claims) return;
  const until = new Date(state.claims.exp * 1000).toLocaleTimeString();
  $('access').textContent = state.session ? 'Access renewed automatically' : 'Access until ' + until;
}

/** Renews the token a minute before it expires (halfway, for short lifetimes), while signed in. */
function scheduleRenewal() {
  clearTimeout(state.renewTimer);
  if (!state.session || !state.claims || state.ended) return;
  const exp = state.claims.exp * 1000;
  const lifetime = exp - (state.claims.iat ? state.claims.iat * 1000 : Date.now());
  const at = exp - Math.min(60000, lifetime / 2);
  state.renewTimer = setTimeout(renew, Math.max(0, at - Date.now()));
}

async function renew() {
  try {
    const { renewVncAccess } = await graphql(RENEW, { id: String(state.claims.lab_instance.lab_instance_id) }, true);
    state.token = renewVncAccess.token;
    state.claims = decodeClaims(state.token);
    state.vms = renewVncAccess.allowedVms;
    remember();
    showAccess();
    scheduleRenewal();
  } catch (err) {
    if (err.code === 'UNAUTHENTICATED') return signedOut('Your sign-in ended; the console stays open until ' + new Date(state.claims.exp * 1000).toLocaleTimeString() + '.');
    if (err.code === 'CONFLICT') return endAccess('Access ended: the lab instance was stopped.');
    state.renewTimer = setTimeout(renew, 10000);
  }
}

function useSession(token) {
  state.session = token;
  sessionStorage.setItem(SESSION_KEY, token);
  showSignIn();
  showAccess();
  subscribeStatus();
  scheduleRenewal();
}

// Keysyms: Latin-1 is its own code, others 0x01000000 + the code point; US layout shifted symbols.
const SHIFTED = '~!@#$%^&*()_+{}|:"<>?';
function typeText(text) {
  const rfb = state.rfb;
  if (!rfb) return;
  for (const ch of text.replace(/\r\n/g, '\n')) {
    const code = ch.codePointAt(0);
    const keysym = ch === '\n' ? 0xff0d : ch === '\t' ? 0xff09 : code < 0x100 ? code : 0x01000000 + code;
    const shift = (ch >= 'A' && ch <= 'Z') || SHIFTED.includes(ch);
    if (shift) rfb.sendKey(0xffe1, 'ShiftLeft', true);
    rfb.sendKey(keysym, null, true);
    rfb.sendKey(keysym, null, false);
    if (shift) rfb.sendKey(0xffe1, 'ShiftLeft', false);
  }
}

function wire() {
  $('fullscreen').addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else $('console').requestFullscreen().catch(() => undefined);
  });
  $('cad').addEventListener('click', () => state.rfb && state.rfb.sendCtrlAltDel());
  $('toggle-pages').addEventListener('click', () => {
    const pages = $('pages');
    pages.hidden = !pages.hidden;
    $('toggle-pages').setAttribute('aria-expanded', String(!pages.hidden));
  });
  $('send-text').addEventListener('submit', (e) => {
    e.preventDefault();
    typeText($('text').value);
    $('text').value = '';
    if (state.rfb) state.rfb.focus();
  });
  $('sign-in').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('sign-in-error').textContent = '';
    try {
      const { login } = await graphql(LOGIN, { email: $('email').value, password: $('password').value });
      if (!login.token) throw new Error('this account cannot sign in yet');
      $('password').value = '';
      useSession(login.token);
    } catch (err) {
      $('sign-in-error').textContent = err.message;
    }
  });
  // A page that opened this one may hand over its sign-in (same origin only).
  window.addEventListener('message', (e) => {
    if (e.origin === location.origin && e.data && e.data.type === 'lab-orchestrator-session' && typeof e.data.token === 'string') useSession(e.data.token);
  });
}

function main() {
  wire();
  state.claims = state.token ? decodeClaims(state.token) : null;
  if (!state.claims || !state.vm) {
    setState('ended');
    showMessage('This link opens no console: it carries no access token. Open the console from the lab.');
    return;
  }
  if (!state.vms.length) state.vms = state.claims.lab_instance.allowed_vmi_names || [state.vm];
  renderVms();
  showAccess();
  showSignIn();
  void loadPages();
  if (state.session) {
    subscribeStatus();
    scheduleRenewal();
  }
  if (params.get('autoconnect') === '0') {
    setState('idle');
    showMessage('Choose a VM to open its console.', state.vms.map((v) => ['Open ' + v, () => connect(v)]));
  } else connect(state.vm);
}

main();
`;
