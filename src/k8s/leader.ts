import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../logger.js';
import { KubernetesRequestError, type KubeClient } from './client.js';
import { LeaseWatch } from './lease-watch.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  /** A leader that has not renewed for this long stops acting as leader (before anyone may take over). */
  renewDeadlineMs: number;
  retryMs: number;
}

/**
 * Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does
 * it: a lease held by another is taken only once it has not changed for its whole duration, timed on
 * this replica's own clock from the moment the change was seen (no clock comparison between machines);
 * every write carries the resourceVersion seen, so of two replicas racing for it one gets 409 Conflict.
 * The leader renews every `retryMs`; one that cannot renew within `renewDeadlineMs` (shorter than the
 * lease) stops leading before another may start. On a graceful stop it releases the lease (holder
 * cleared), so that another takes over at once.
 *
 * Unlike client-go, which sees a renewal only when it polls, a follower watches the lease: it sees each
 * renewal as it is written and tries to acquire exactly one lease duration after the last one, not at
 * its next poll, so a leader that dies is replaced within the lease duration of its death. It polls
 * every `retryMs` only while the watch is down. Still never two leaders: the old one acts until
 * `renewDeadlineMs` after it SENT its last renewal; a follower saw that renewal only after it was
 * written, and writes no sooner than a whole lease duration later, under that renewal's resourceVersion.
 */
export class LeaderElector {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private leading = false;
  /** When the last successful renewal was sent. */
  private lastRenew = 0;
  /** When the last try began: the leader renews, and a follower without a watch polls, retryMs after it. */
  private lastTry = 0;
  /** The lease as last read, written or watched, and when this version of it was first seen here. */
  private seen: { lease: V1Lease | undefined; version: string; at: number } | undefined;
  /** The version the last try began with: a try that learnt nothing new is not repeated before retryMs. */
  private tried: string | undefined;
  /** When the timer set is meant to fire. */
  private due = 0;
  private running: Promise<void> | undefined;
  private readonly listeners = new Set<(leading: boolean) => void>();
  private readonly watch: LeaseWatch;

  constructor(
    private readonly kube: KubeClient,
    readonly options: LeaderOptions,
    private readonly logger: Logger,
  ) {
    const { namespace, name, retryMs, leaseDurationMs } = options;
    this.watch = new LeaseWatch(
      kube,
      namespace,
      name,
      { backoffMinMs: retryMs, backoffMaxMs: leaseDurationMs, connectTimeoutMs: leaseDurationMs },
      { onRecord: (lease) => this.onWatched(lease), onOpen: () => this.schedule() },
      logger,
    );
  }

  /** True while this replica holds a lease it renewed within the renew deadline. */
  get isLeader(): boolean {
    return this.leading && Date.now() - this.lastRenew < this.options.renewDeadlineMs;
  }

  get identity(): string {
    return this.options.identity;
  }

  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.watch.start();
    this.wake();
  }

  /** Stops trying; a leader releases the lease (holder cleared) so that another takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.watch.stop();
    await this.running;
    if (this.leading) {
      await this.release().catch((err) => this.logger.warn('could not release the leader lease', { error: (err as Error).message }));
      this.setLeading(false);
    }
  }

  private readonly wake = (): void => {
    this.timer = undefined;
    if (this.stopped || this.running) return;
    // A timer can fire a little before its time by Date.now() (libuv times it from the loop's cached
    // clock); a try even 1 ms early would find the lease not yet free and wait a whole retry.
    if (Date.now() < this.due) return this.arm(this.due);
    this.running = this.tick().finally(() => {
      this.running = undefined;
      this.schedule();
    });
  };

  /** Sets the timer for the next try from what is known now (a try under way does it when it ends). */
  private schedule(): void {
    if (this.stopped || this.running) return;
    this.arm(this.nextTry());
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.due = at;
    this.timer = setTimeout(this.wake, Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  /** A leader renews every retryMs; a follower tries when the lease it saw may be taken, and polls while the watch is down. */
  private nextTry(): number {
    const poll = this.lastTry + this.options.retryMs;
    if (this.leading) return poll;
    const free = this.tried === this.seen?.version ? Math.max(this.freeAt(), poll) : this.freeAt();
    return this.watch.open ? free : Math.min(free, poll);
  }

  /** When the lease seen may be taken: at once when it is absent, free or this replica's own. */
  private freeAt(): number {
    const lease = this.seen?.lease;
    const holder = lease?.spec?.holderIdentity;
    if (!this.seen || !holder || holder === this.options.identity) return 0;
    return this.seen.at + (lease?.spec?.leaseDurationSeconds ?? Math.ceil(this.options.leaseDurationMs / 1000)) * 1000;
  }

  private async tick(): Promise<void> {
    this.lastTry = Date.now();
    this.tried = this.seen?.version;
    let renewed = false;
    try {
      renewed = await this.tryAcquireOrRenew();
    } catch (err) {
      this.logger.warn('leader lease: request failed', { error: (err as Error).message });
    }
    if (renewed) this.setLeading(true);
    else if (this.leading && Date.now() - this.lastRenew >= this.options.renewDeadlineMs) this.setLeading(false);
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.logger.info(leading ? 'became the leader' : 'stopped leading', { identity: this.options.identity, lease: this.options.name });
    for (const listener of this.listeners) listener(leading);
  }

  /** A follower's view follows the watch; a leader's only its own reads and writes (an event may be older than its last write). */
  private onWatched(lease: V1Lease | undefined): void {
    if (this.leading || this.stopped) return;
    this.see(lease, Date.now());
    this.schedule();
  }

  /** Records the lease as seen at `at`; a version seen before keeps the time it was first seen. */
  private see(lease: V1Lease | undefined, at: number): void {
    const version = lease?.metadata?.resourceVersion ?? '';
    if (this.seen?.version !== version) this.seen = { lease, version, at };
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = Date.now();
    // Fast path (client-go's for the leader, here for a watching follower too): write over the version
    // seen, presumed current. If it is not, 409 Conflict (or 404), and the slow path reads it.
    const known = this.seen?.lease;
    if (known && (this.leading || (this.watch.open && this.freeAt() <= now))) {
      if (await this.write(known, now)) return true;
      if (!this.leading) this.watch.restart(); // it showed an old version: it may lag behind
    }
    const lease = await this.kube.readLease(this.options.namespace, this.options.name);
    this.see(lease, Date.now());
    if (!lease) return this.create(now);
    if (this.freeAt() > Date.now()) {
      if (this.leading) this.setLeading(false); // someone else holds it now
      return false;
    }
    return this.write(lease, now);
  }

  private async create(now: number): Promise<boolean> {
    try {
      this.see(await this.kube.createLease(this.options.namespace, this.leaseBody(undefined, now)), Date.now());
      this.lastRenew = now;
      return true;
    } catch (err) {
      if (err instanceof KubernetesRequestError && err.status === 409) return false;
      throw err;
    }
  }

  /** Writes this replica's record over `current`, under its resourceVersion: false when it changed (409) or went (404) since. */
  private async write(current: V1Lease, now: number): Promise<boolean> {
    try {
      this.see(await this.kube.replaceLease(this.options.namespace, this.options.name, this.leaseBody(current, now)), Date.now());
      this.lastRenew = now; // when it was sent, not answered: the deadline errs on the early side
      return true;
    } catch (err) {
      if (err instanceof KubernetesRequestError && (err.status === 409 || err.status === 404)) return false;
      throw err;
    }
  }

  /** `current` may be a watch event's plain JSON (times as strings) or a read's V1Lease. */
  private leaseBody(current: V1Lease | undefined, now: number): V1Lease {
    const spec = current?.spec ?? {};
    const mine = spec.holderIdentity === this.options.identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.options.name, namespace: this.options.namespace, resourceVersion: current?.metadata?.resourceVersion },
      spec: {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: Math.ceil(this.options.leaseDurationMs / 1000),
        acquireTime: mine && spec.acquireTime ? new V1MicroTime(spec.acquireTime) : new V1MicroTime(now),
        renewTime: new V1MicroTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (current && !mine ? 1 : 0),
      },
    };
  }

  /** client-go's release: the holder cleared and a one-second duration, under the resourceVersion read. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    const lease = await this.kube.readLease(namespace, name);
    if (!lease || lease.spec?.holderIdentity !== identity) return;
    const now = new V1MicroTime(Date.now());
    await this.kube.replaceLease(namespace, name, {
      ...lease,
      spec: { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
    });
  }
}
