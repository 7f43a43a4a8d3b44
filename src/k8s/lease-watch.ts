import type { V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../logger.js';
import type { KubeClient } from './client.js';

export interface LeaseWatchHandlers {
  /** The lease as it now is: on the first event of each watch (the current record), and on every change; undefined once deleted. */
  onRecord(lease: V1Lease | undefined): void;
  /** The watch was established (true) or ended (false). */
  onOpen(open: boolean): void;
}

export interface LeaseWatchOptions {
  /** The first retry after a failure; doubled up to `backoffMaxMs`. */
  backoffMinMs: number;
  backoffMaxMs: number;
  /** A watch request the API server has not answered in this long is abandoned and tried again. */
  connectTimeoutMs: number;
}

/**
 * One watch on one Lease, restarted whenever it ends: at once when the server ended it (its
 * timeoutSeconds), with capped backoff after a failure or an ERROR event. Each watch starts without a
 * resourceVersion, so the API server first sends the lease as it is (a synthetic ADDED), then its
 * changes: nothing is missed across a restart, and no 410 Gone can occur.
 */
export class LeaseWatch {
  private generation = 0;
  private controller: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = true;
  private _open = false;

  constructor(
    private readonly kube: KubeClient,
    private readonly namespace: string,
    private readonly name: string,
    private readonly options: LeaseWatchOptions,
    private readonly handlers: LeaseWatchHandlers,
    private readonly logger: Logger,
  ) {}

  /** True while a watch is established: every change of the lease reaches onRecord as it happens. */
  get open(): boolean {
    return this._open;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    this.controller?.abort();
    this.controller = undefined;
    this.setOpen(false);
  }

  /** Abandons the current watch and opens another at once (when it seems to lag behind the lease). */
  restart(): void {
    if (this.stopped) return;
    this.controller?.abort(); // superseded first: its end is not taken for a failure
    this.connect();
  }

  private connect(): void {
    const generation = ++this.generation;
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    this.setOpen(false);
    this.connectTimer = setTimeout(() => {
      if (generation === this.generation) this.fail(generation, new Error(`no answer within ${this.options.connectTimeoutMs} ms`));
    }, this.options.connectTimeoutMs);
    this.connectTimer.unref();
    // As a reflector does (client-go's tools/cache/reflector.go): ask the server to end the watch after
    // 5 to 10 minutes, so that the connection is renewed.
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    const onEvent = (type: string, object: unknown) => {
      if (generation !== this.generation) return;
      if (type === 'ERROR') return this.fail(generation, new Error(`error event: ${JSON.stringify(object).slice(0, 200)}`));
      this.failures = 0;
      if (type === 'ADDED' || type === 'MODIFIED') this.handlers.onRecord(object as V1Lease);
      else if (type === 'DELETED') this.handlers.onRecord(undefined);
    };
    const done = (err: Error | null) => {
      if (generation !== this.generation) return;
      if (err) this.fail(generation, err);
      else this.connect(); // the server ended it (timeoutSeconds): resume at once
    };
    this.kube
      .watchLease(this.namespace, this.name, timeoutSeconds, onEvent, done)
      .then((controller) => {
        if (generation !== this.generation) return void controller.abort(); // superseded while connecting
        clearTimeout(this.connectTimer);
        this.controller = controller;
        if (!controller.signal.aborted) this.setOpen(true);
      })
      .catch((err: unknown) => generation === this.generation && this.fail(generation, err as Error));
  }

  private fail(generation: number, err: Error): void {
    if (this.stopped || generation !== this.generation) return;
    this.generation++; // whatever the failed watch still delivers is ignored
    this.controller?.abort();
    this.controller = undefined;
    clearTimeout(this.connectTimer);
    this.setOpen(false);
    const delay = Math.min(this.options.backoffMaxMs, this.options.backoffMinMs * 2 ** this.failures++);
    this.logger.warn('leader lease: watch failed; polling until it is back', { error: err.message, retryInMs: delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryTimer.unref();
  }

  private setOpen(open: boolean): void {
    if (open === this._open) return;
    this._open = open;
    this.handlers.onOpen(open);
  }
}
