import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { buildContext, type Context } from '../graphql/context.js';
import { AppError } from '../errors.js';
import type { AppDeps } from '../services/index.js';
import { rightsOf, type Viewer } from '../services/account.sessions.js';
import { HIGH_WATER_BYTES } from './fanout.js';

/** Close codes, as graphql-ws uses them (4403 Forbidden, 4408 init timeout, 4429 too many). */
export const CLOSE = {
  forbidden: 4403,
  initTimeout: 4408,
  tooManyRequests: 4429,
  /** RFC 6455: a message that violates policy (here: a client that does not read its results). */
  policy: 1008,
} as const;

/**
 * The client's address: the socket's peer, or with TRUST_PROXY the first address of
 * X-Forwarded-For, as Express's `req.ip` gives it to HTTP requests (rate limits key on it).
 */
export function clientAddress(request: IncomingMessage, trustProxy: boolean): string {
  const forwarded = request.headers['x-forwarded-for'];
  const first = trustProxy && typeof forwarded === 'string' ? forwarded.split(',')[0].trim() : '';
  return first || request.socket.remoteAddress || 'unknown';
}

const rightsKey = (viewer: Viewer | null) => (viewer ? `${viewer.sessionId}:${rightsOf(viewer.user)}` : 'anonymous');

/**
 * One WebSocket connection of either protocol: who it was opened by, and what it may still do.
 * Every operation gets a context of its own (fresh EntityManager: no stale reads; viewer and rights
 * read again, so it runs with the rights the account has now). When the session ends, the next
 * operation answers UNAUTHENTICATED and the connection closes (4403); when the rights change, the
 * subscriptions started under the old rights end (complete), so none outlives what allowed it.
 */
export class Connection {
  readonly id = randomUUID();
  /** The viewer the connection was first authenticated as; null: anonymous. */
  granted: Viewer | null | undefined;
  authorization: string | null = null;
  /** Queries and mutations executing now, by operation id. */
  readonly running = new Set<string>();
  /** Subscriptions admitted but not yet tracked (their context is still being built). */
  readonly starting = new Set<string>();
  /** Running subscriptions, with the rights they were started under and how to end them. */
  readonly subscriptions = new Map<string, { rights: string; end: () => void }>();

  constructor(
    readonly socket: WebSocket,
    readonly ip: string,
    private readonly deps: AppDeps,
  ) {}

  /** Errors before an operation has a context (parse, limits) are logged under the connection's id. */
  get scope() {
    return { logger: this.deps.logger.child({ component: 'ws', connectionId: this.id }), requestId: this.id };
  }

  /**
   * A context for one operation. Throws UNAUTHENTICATED, and closes the connection, when the session
   * it was opened with has ended or the account's rights have changed since.
   */
  async contextFor(operationId: string): Promise<Context> {
    const context = await buildContext(this.deps, {
      authorization: this.authorization,
      ip: this.ip,
      requestId: `${this.id}:${operationId}`.slice(0, 128),
      congested: () => this.socket.bufferedAmount > HIGH_WATER_BYTES,
    });
    const was = this.granted;
    const now = context.viewer;
    if (was && (!now || now.sessionId !== was.sessionId)) {
      // Answer this operation first, then close: the client learns why.
      setImmediate(() => this.close(CLOSE.forbidden, 'Forbidden: the session has ended'));
      throw new AppError('Not authenticated: the session has ended', 'UNAUTHENTICATED');
    }
    if (was === undefined || rightsKey(was) !== rightsKey(now)) this.regrant(now);
    return context;
  }

  /** Records the viewer's current rights and ends every subscription started under other rights. */
  regrant(viewer: Viewer | null | undefined): void {
    this.granted = viewer;
    const rights = viewer === undefined ? undefined : rightsKey(viewer);
    for (const [id, sub] of this.subscriptions) {
      if (sub.rights === rights) continue;
      this.subscriptions.delete(id);
      sub.end();
    }
  }

  /** A subscription started with `context` (its viewer's rights); `end` completes it. */
  track(id: string, context: Context, end: () => void): void {
    this.starting.delete(id);
    this.subscriptions.set(id, { rights: rightsKey(context.viewer), end });
  }

  /**
   * Whether one more operation of this kind may start: queries and mutations run at most
   * `wsMaxInFlight` at once per socket (each holds its whole result until sent), subscriptions at most
   * `wsMaxSubscriptions`. Beyond, the operation is refused with RATE_LIMITED.
   */
  /** Admits operation `id` of this kind, synchronously (before any await), or says why not. */
  admit(id: string, kind: string | undefined): Error | undefined {
    const refused = this.refusal(kind);
    if (!refused) (kind === 'subscription' ? this.starting : this.running).add(id);
    return refused;
  }

  /** Forgets an operation, whatever state it was in. */
  release(id: string): void {
    this.running.delete(id);
    this.starting.delete(id);
    this.subscriptions.delete(id);
  }

  private refusal(kind: string | undefined): Error | undefined {
    const g = this.deps.config.graphql;
    if (this.socket.bufferedAmount > HIGH_WATER_BYTES) {
      // Results already wait unread: executing more would only hold more of them in memory.
      return new AppError('The connection has too many unread results; read them before sending more operations', 'RATE_LIMITED');
    }
    if (kind === 'subscription') {
      return this.subscriptions.size + this.starting.size >= g.wsMaxSubscriptions
        ? new AppError(`Too many subscriptions on one connection (at most ${g.wsMaxSubscriptions})`, 'RATE_LIMITED')
        : undefined;
    }
    return this.running.size >= g.wsMaxInFlight
      ? new AppError(`Too many operations in flight on one connection (at most ${g.wsMaxInFlight}); wait for their results`, 'RATE_LIMITED')
      : undefined;
  }

  /** After each message sent: a client that leaves too much unread is cut off rather than buffered for. */
  checkBuffered(): void {
    if (this.socket.bufferedAmount > this.deps.config.graphql.wsMaxBufferedBytes) {
      // The close frame would wait behind what the client does not read: drop the connection now.
      this.close(CLOSE.policy, 'Too much unread data: the client does not read its results');
      this.socket.terminate();
    }
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) this.socket.close(code, reason);
  }
}
