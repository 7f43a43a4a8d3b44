import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { NetConnectOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AccountChange } from '../services/account.events.js';
import type { AppDeps } from '../services/index.js';
import { verifyVncToken } from '../services/lab-instance.vnc.js';
import { ActivityRecorder, instanceEnded, openVncAccess, reviewVncHolders, type VncEnd, type VncHolder } from '../services/lab-instance.vnc-access.js';
import { closeFrame, FrameReader, OPCODE } from './vnc-frames.js';
import { UpstreamReads } from './vnc-reads.js';
import { RfbClientStream } from './vnc-rfb.js';

/**
 * The VNC console proxy, wire-compatible with the original websocket proxy: a WebSocket on
 * `/[WS_PROXY_PATH_PREFIX/]<token>/<vm>` of this server's port. The token, the VM, the Origin and the
 * instance are checked during the HTTP upgrade (401/403/409 before any handshake; the token is never
 * repeated), then KubeVirt's VNC subresource is opened with the server's own credentials and relayed,
 * binary frames both ways, with backpressure. The session ends when access ends.
 */

/** Close codes sent to the browser (also in the README's "VNC console" section). */
export const VNC_CLOSE = {
  normal: 1000,
  shutdown: 1001,
  notRunning: 4400,
  expired: 4401,
  accessEnded: 4403,
  notFound: 4404,
  takenOver: 4409,
  stopped: 4410,
  clusterRefused: 4502,
  clusterUnavailable: 4504,
} as const;

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Bytes that may wait for a slow side before the other side is paused. */
const HIGH_WATER = 2 ** 20;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const SUBPROTOCOLS = ['binary', 'plain.kubevirt.io'];
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface VncProxy {
  /** Whether an upgrade to this path is for the proxy (the original's path shape). */
  matches(path: string): boolean;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Open console sessions on this replica. */
  sessionCount(): number;
  /** Ends every session (1001) and writes pending activity. */
  close(): Promise<void>;
}

interface Target {
  token: string;
  vm: string;
}

/** `/[prefix/]<token>/<vm>`: the prefix is optional, so LabVNC works with or without a rewriting proxy in front. */
export function parseProxyPath(path: string, prefix: string): Target | undefined {
  let rest = path.startsWith('/') ? path.slice(1) : path;
  if (prefix && rest.startsWith(`${prefix}/`)) rest = rest.slice(prefix.length + 1);
  const parts = rest.split('/');
  if (parts.length !== 2) return undefined;
  const [token, rawVm] = parts;
  let vm: string;
  try {
    vm = decodeURIComponent(rawVm);
  } catch {
    return undefined;
  }
  return JWT.test(token) && vm.length > 0 && vm.length <= 253 ? { token, vm } : undefined;
}

const REASONS: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 500: 'Internal Server Error' };

/** Answers the upgrade with a plain HTTP status; the socket never becomes a WebSocket. */
function refuse(socket: Duplex, code: number, message: string): void {
  if (socket.destroyed) return;
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${code} ${REASONS[code] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Cache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

const END_MESSAGES: Record<VncEnd, { http: number; code: number; text: string }> = {
  'not-found': { http: 403, code: VNC_CLOSE.accessEnded, text: 'Access ended: the lab instance does not exist' },
  stopped: { http: 403, code: VNC_CLOSE.stopped, text: 'Access ended: the lab instance was stopped' },
  deactivated: { http: 403, code: VNC_CLOSE.accessEnded, text: 'Access ended: the account was deactivated' },
  'session-ended': { http: 403, code: VNC_CLOSE.accessEnded, text: 'Access ended: the login session that gave it has ended' },
  expired: { http: 401, code: VNC_CLOSE.expired, text: 'Access ended: the VNC token expired' },
};


/** Whether a browser page from this Origin may open consoles. */
function originAllowed(deps: AppDeps, req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin) return true; // not a browser: Origin guards against other sites' pages only
  const allowed = deps.config.vnc.allowedOrigins;
  if (allowed.includes('*')) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (allowed.length) return allowed.includes(url.origin);
  const forwarded = deps.config.http.useXForwardedHost ? req.headers['x-forwarded-host'] : undefined;
  const host = String(forwarded ?? req.headers.host ?? '').split(',')[0].trim().toLowerCase();
  return url.host.toLowerCase() === host || url.hostname.toLowerCase() === deps.config.vnc.labVncHost.toLowerCase();
}

/** Accepts the browser's WebSocket handshake by hand: the socket then carries frames we relay as they are. */
function acceptHandshake(req: IncomingMessage, socket: Duplex): string | false {
  const key = req.headers['sec-websocket-key'];
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  if (req.method !== 'GET' || upgrade !== 'websocket' || typeof key !== 'string' || !/^[A-Za-z0-9+/]{22}==$/.test(key)) {
    refuse(socket, 400, 'Bad Request: not a WebSocket handshake');
    return false;
  }
  if (req.headers['sec-websocket-version'] !== '13') {
    socket.end('HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return false;
  }
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const protocol = SUBPROTOCOLS.find((p) => offered.includes(p));
  if (offered.length && !protocol) {
    refuse(socket, 400, `Bad Request: none of the subprotocols ${SUBPROTOCOLS.join(', ')} offered`);
    return false;
  }
  const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`,
  );
  return protocol ?? '';
}

/**
 * Writes `chunk` to `to` (through `reads` when it lies in one of their buffers); while more than
 * HIGH_WATER bytes wait to be sent there, `from` is paused, and resumed when they have drained (TCP
 * backpressure both ways, a bounded buffer in between).
 */
function forward(from: Duplex, to: Duplex, chunk: Buffer, reads?: UpstreamReads): void {
  if (!chunk.length || to.destroyed) return;
  if (reads) reads.write(to, chunk);
  else to.write(chunk);
  if (to.writableLength > HIGH_WATER && !from.isPaused()) {
    from.pause();
    to.once('drain', () => from.resume());
  }
}

/**
 * One console: the browser's socket and KubeVirt's, relayed frame for frame (as KubeVirt's own raw
 * streamer does), reading only the browser's frames for input events and the frame boundaries of
 * KubeVirt's, so that a close frame of the proxy's can be put between two frames.
 */
class Session {
  upstream?: Duplex;
  private ended = false;
  private timer?: NodeJS.Timeout;
  private readonly rfb = new RfbClientStream();
  /** Browser to KubeVirt: payloads read for the RFB input events. */
  private readonly fromClient = new FrameReader((data, opcode) => {
    if (opcode === OPCODE.binary && !this.rfb.lost && this.rfb.feed(data) > 0) this.proxy.recorder.touch(this.holder.instanceId);
  });
  /** KubeVirt to browser: boundaries only. */
  private readonly fromUpstream = new FrameReader();
  /** KubeVirt's socket reads into these buffers. */
  private readonly reads = new UpstreamReads();
  /** The close frame to send once the frame under way has been relayed. */
  private closing?: Buffer;

  constructor(
    readonly client: Duplex,
    private readonly head: Buffer,
    readonly holder: VncHolder,
    readonly namespace: string,
    readonly vm: string,
    private readonly proxy: Proxy,
  ) {}

  get key() {
    return `${this.namespace}/${this.vm}`;
  }

  start(): void {
    // Nothing from the browser is read until KubeVirt's side is open (RFB: the server speaks first).
    this.client.pause();
    this.client.on('error', () => this.drop());
    this.client.on('close', () => this.drop());
    this.client.on('end', () => this.drop());
    this.schedule();
    void this.connect();
  }

  /** Ends the session at its deadline unless a renewal through the same session moved it. */
  schedule(): void {
    clearTimeout(this.timer);
    if (this.ended) return;
    this.timer = setTimeout(() => void this.proxy.recheck(this, true), Math.min(MAX_TIMER_MS, Math.max(0, this.holder.deadline - Date.now())));
    this.timer.unref();
  }

  private async connect(): Promise<void> {
    const { deps } = this.proxy;
    const kc = deps.kube.kubeConfig;
    const server = kc.getCurrentCluster()?.server;
    if (!server) return this.end(VNC_CLOSE.clusterUnavailable, 'Kubernetes is not configured');
    const path = `/apis/subresources.kubevirt.io/v1/namespaces/${encodeURIComponent(this.namespace)}/virtualmachineinstances/${encodeURIComponent(this.vm)}/vnc`;
    const url = new URL(server.replace(/\/+$/, '') + path);
    const options: https.RequestOptions = { headers: {} };
    try {
      await kc.applyToHTTPSOptions(options);
    } catch (err) {
      deps.logger.warn('VNC proxy: no Kubernetes credentials', { error: (err as Error).message });
      return this.end(VNC_CLOSE.clusterUnavailable, 'Kubernetes credentials could not be loaded');
    }
    if (this.ended) return;
    const key = randomBytes(16).toString('base64');
    const requestOptions: https.RequestOptions & Pick<NetConnectOpts, 'onread'> = {
      ...options,
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: url.pathname + url.search,
      method: 'GET',
      headers: {
        ...(options.headers as Record<string, string>),
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Protocol': 'plain.kubevirt.io',
      },
      // The agent passes it on to net.connect or tls.connect (UpstreamReads says why).
      onread: this.reads.onread,
    };
    const request = (url.protocol === 'https:' ? https : http).request(requestOptions);
    request.on('socket', (socket) => this.reads.handshakeOn(socket));
    const timeout = setTimeout(() => request.destroy(new Error('no answer in time')), deps.config.vnc.upstreamTimeoutMs);
    request.on('response', (res) => {
      clearTimeout(timeout);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if ((size += c.length) <= 4096) chunks.push(c);
      });
      res.on('end', () => this.refused(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
      res.on('error', () => this.refused(res.statusCode ?? 0, ''));
    });
    request.on('error', (err) => {
      clearTimeout(timeout);
      deps.logger.warn('VNC proxy: KubeVirt VNC subresource unreachable', { namespace: this.namespace, vm: this.vm, error: err.message });
      this.end(VNC_CLOSE.clusterUnavailable, `Kubernetes did not open the console of ${this.vm}`);
    });
    request.on('upgrade', (res, socket, upgradeHead) => {
      clearTimeout(timeout);
      const expected = createHash('sha1').update(key + WS_GUID).digest('base64');
      if (res.headers['sec-websocket-accept'] !== expected || res.headers['sec-websocket-extensions']) {
        socket.destroy();
        return this.end(VNC_CLOSE.clusterUnavailable, 'The cluster answered the console request wrongly');
      }
      if (this.ended) return void socket.destroy();
      this.relay(socket, upgradeHead);
    });
    request.end();
  }

  private relay(upstream: Duplex, upstreamHead: Buffer): void {
    this.upstream = upstream;
    const client = this.client;
    upstream.on('error', () => this.upstreamGone());
    upstream.on('end', () => this.upstreamGone());
    upstream.on('close', () => this.upstreamGone());
    upstream.on('data', (chunk: Buffer) => this.fromKubeVirt(chunk)); // a socket without `onread` (through a proxy agent)
    this.reads.relayTo((chunk) => this.fromKubeVirt(chunk, true));
    client.on('data', (chunk: Buffer) => {
      this.fromClient.consume(chunk);
      forward(client, upstream, chunk);
    });
    if (upstreamHead.length) this.fromKubeVirt(upstreamHead);
    if (this.head.length) {
      this.fromClient.consume(this.head);
      forward(client, upstream, this.head);
    }
    client.resume();
  }

  /** `owned`: `chunk` lies in a buffer of `reads`. */
  private fromKubeVirt(chunk: Buffer, owned = false): void {
    const reads = owned ? this.reads : undefined;
    if (!this.closing) {
      this.fromUpstream.consume(chunk);
      return forward(this.upstream!, this.client, chunk, reads);
    }
    // Ending: finish the frame under way, then the proxy's close frame.
    const n = this.fromUpstream.consume(chunk, true);
    forward(this.upstream!, this.client, chunk.subarray(0, n), reads);
    if (this.fromUpstream.atBoundary) this.sendClose();
  }

  /** KubeVirt's side closed: pass its close on, or say that the console was lost. */
  private upstreamGone(): void {
    if (this.ended) {
      this.upstream?.destroy();
      return;
    }
    if (this.fromUpstream.sawClose || this.fromClient.sawClose) {
      // The close handshake went through the relay: nothing to add.
      this.ended = true;
      clearTimeout(this.timer);
      this.proxy.forget(this);
      this.client.end();
      return;
    }
    this.end(VNC_CLOSE.clusterUnavailable, `The connection to the console of ${this.vm} was lost`);
  }

  /** KubeVirt (or the API server before it) answered the upgrade with an HTTP error. */
  private refused(status: number, body: string): void {
    let message: string;
    try {
      message = String((JSON.parse(body) as { message?: unknown }).message ?? '');
    } catch {
      message = body.slice(0, 200);
    }
    const { logger } = this.proxy.deps;
    if (status === 400) this.end(VNC_CLOSE.notRunning, `The VM ${this.vm} is not running yet`);
    else if (status === 404) this.end(VNC_CLOSE.notFound, `The VM ${this.vm} does not exist`);
    else if (status === 401 || status === 403) {
      logger.error('VNC proxy: Kubernetes refused the VNC subresource; the server needs get on virtualmachineinstances/vnc in subresources.kubevirt.io', {
        namespace: this.namespace,
        vm: this.vm,
        status,
        message,
      });
      this.end(VNC_CLOSE.clusterRefused, 'The cluster refused the console (the server lacks the right to open it)');
    } else {
      logger.warn('VNC proxy: the VNC subresource failed', { namespace: this.namespace, vm: this.vm, status, message });
      this.end(VNC_CLOSE.clusterUnavailable, `The cluster could not open the console (HTTP ${status})`);
    }
  }

  /** Ends the session with a close frame of the proxy's, between two of KubeVirt's frames. */
  end(code: number, text: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.proxy.forget(this);
    this.closing = closeFrame(code, text);
    if (this.fromUpstream.atBoundary) this.sendClose();
    // A frame that never completes, or a browser that never reads: drop the connection after a grace period.
    setTimeout(() => {
      this.client.destroy();
      this.upstream?.destroy();
    }, 5000).unref();
  }

  private sentClose = false;

  private sendClose(): void {
    if (this.sentClose) return;
    this.sentClose = true;
    this.upstream?.destroy();
    if (this.client.destroyed || this.fromClient.sawClose) return void this.client.destroy();
    this.client.end(this.closing);
  }

  /** The browser went away: nothing to tell it. */
  private drop(): void {
    this.upstream?.destroy();
    // The HTTP server's sockets allow half-open: without our FIN a browser that closed first waits for its timeout.
    this.client.end();
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.proxy.forget(this);
  }
}

class Proxy implements VncProxy {
  readonly recorder: ActivityRecorder;
  private readonly sessions = new Set<Session>();
  private readonly byVm = new Map<string, Session>();
  private readonly byInstance = new Map<number, { sessions: Set<Session>; unlisten: () => void }>();
  private readonly stopAccount: () => void;
  private readonly periodic: NodeJS.Timeout;
  private checking = false;

  constructor(readonly deps: AppDeps) {
    this.recorder = new ActivityRecorder(deps.orm.em, deps.config.vnc.activityWriteMs, deps.logger);
    this.stopAccount = deps.accountEvents.listen((change) => this.accountChanged(change));
    this.periodic = setInterval(() => void this.recheckAll(), deps.config.graphql.sessionCheckMs);
    this.periodic.unref();
  }

  matches(path: string): boolean {
    return parseProxyPath(path, this.deps.config.vnc.wsProxyPathPrefix) !== undefined;
  }

  sessionCount(): number {
    return this.sessions.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    this.admit(req, socket, head).catch((err: Error) => {
      this.deps.logger.error('VNC proxy: upgrade failed', { error: err.message });
      refuse(socket, 500, 'Internal server error');
    });
  }

  private async admit(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { config } = this.deps;
    const target = parseProxyPath((req.url ?? '').split('?')[0], config.vnc.wsProxyPathPrefix)!;
    if (!originAllowed(this.deps, req)) return refuse(socket, 403, 'Forbidden: this page may not open consoles (Origin not allowed)');
    const claims = await verifyVncToken(config.vnc, target.token);
    if ('invalid' in claims) {
      return refuse(socket, 401, claims.invalid === 'expired' ? 'Unauthorized: the VNC token has expired' : 'Unauthorized: the VNC token is not valid');
    }
    if (!claims.allowedVms.includes(target.vm)) return refuse(socket, 403, 'Forbidden: the VNC token does not open this VM');
    const access = await openVncAccess(this.deps.orm.em, claims, target.token);
    if ('refused' in access) {
      const end = END_MESSAGES[access.refused];
      return refuse(socket, end.http, end.text);
    }
    const key = `${claims.namespace}/${target.vm}`;
    if (config.vnc.secondConnection === 'refuse' && this.byVm.has(key)) {
      return refuse(socket, 409, 'Conflict: this VM console is already open in another window');
    }
    if (socket.destroyed) return;
    if (acceptHandshake(req, socket) === false) return;
    // KubeVirt's own rule (preserveSession=false): the newer connection takes the console over.
    this.byVm.get(key)?.end(VNC_CLOSE.takenOver, 'The console was opened in another window');
    const session = new Session(socket, head, access, claims.namespace, target.vm, this);
    this.register(session);
    session.start();
  }

  private register(session: Session): void {
    this.sessions.add(session);
    this.byVm.set(session.key, session);
    const id = session.holder.instanceId;
    let entry = this.byInstance.get(id);
    if (!entry) {
      const unlisten = this.deps.events.listen(id, (snapshot) => {
        if (!instanceEnded(snapshot.status)) return;
        for (const s of [...(this.byInstance.get(id)?.sessions ?? [])]) s.end(VNC_CLOSE.stopped, END_MESSAGES.stopped.text);
      });
      this.byInstance.set(id, (entry = { sessions: new Set(), unlisten }));
    }
    entry.sessions.add(session);
  }

  forget(session: Session): void {
    this.sessions.delete(session);
    if (this.byVm.get(session.key) === session) this.byVm.delete(session.key);
    const id = session.holder.instanceId;
    const entry = this.byInstance.get(id);
    if (!entry) return;
    entry.sessions.delete(session);
    if (!entry.sessions.size) {
      entry.unlisten();
      this.byInstance.delete(id);
      this.recorder.forget(id);
    }
  }

  /** This replica's own account changes act at once (as for GraphQL connections). */
  private accountChanged(change: AccountChange): void {
    for (const s of [...this.sessions]) {
      const h = s.holder;
      if (h.userId !== change.userId) continue;
      if (change.kind === 'sessions-ended') {
        const ended = change.sessionId ? h.sessionId === change.sessionId : change.keep === undefined || (h.sessionId !== null && h.sessionId !== change.keep);
        if (ended) s.end(VNC_CLOSE.accessEnded, END_MESSAGES['session-ended'].text);
      } else if (!change.isActive) {
        s.end(VNC_CLOSE.accessEnded, END_MESSAGES.deactivated.text);
      }
    }
  }

  /** Reads the access of these sessions again: ends those whose access ended, moves deadlines. */
  async recheck(session: Session, atDeadline = false): Promise<void> {
    try {
      await this.review([session]);
    } catch (err) {
      this.deps.logger.warn('VNC session check failed', { error: (err as Error).message });
    }
    if (atDeadline && session.holder.deadline <= Date.now()) session.end(VNC_CLOSE.expired, END_MESSAGES.expired.text);
  }

  private async recheckAll(): Promise<void> {
    if (this.checking || !this.sessions.size) return;
    this.checking = true;
    try {
      await this.review([...this.sessions]);
    } catch (err) {
      this.deps.logger.warn('VNC session check failed', { error: (err as Error).message });
    } finally {
      this.checking = false;
    }
  }

  private async review(sessions: Session[]): Promise<void> {
    const results = await reviewVncHolders(this.deps.orm.em, sessions.map((s) => s.holder));
    sessions.forEach((s, i) => {
      const r = results.get(i);
      if (!r) return;
      if ('end' in r) {
        const end = END_MESSAGES[r.end];
        s.end(end.code, end.text);
      } else if (r.deadline !== s.holder.deadline) {
        s.holder.deadline = r.deadline;
        s.schedule();
      } else if (r.deadline <= Date.now()) s.end(VNC_CLOSE.expired, END_MESSAGES.expired.text);
    });
  }

  async close(): Promise<void> {
    clearInterval(this.periodic);
    this.stopAccount();
    for (const s of [...this.sessions]) s.end(VNC_CLOSE.shutdown, 'Server shutting down');
    await this.recorder.flush();
  }
}

export function createVncProxy(deps: AppDeps): VncProxy {
  return new Proxy(deps);
}
