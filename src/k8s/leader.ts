import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../logger.js';
import { KubernetesRequestError, type KubeClient } from './client.js';

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
 * it: every replica tries to acquire or renew the lease every `retryMs`; a lease held by another is
 * taken only once it has not changed for its whole duration, timed on this replica's own clock from the
 * moment the change was seen (no clock comparison between machines); every write carries the
 * resourceVersion read, so of two replicas racing for it one gets 409 Conflict. A leader that cannot
 * renew within `renewDeadlineMs` (shorter than the lease) stops leading before another may start.
 * On a graceful stop the leader releases the lease, so another replica takes over at its next try.
 */
export class LeaderElector {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private leading = false;
  private lastRenew = 0;
  private observed: { key: string; at: number } | undefined;
  private running: Promise<void> | undefined;
  private readonly listeners = new Set<(leading: boolean) => void>();

  constructor(
    private readonly kube: KubeClient,
    readonly options: LeaderOptions,
    private readonly logger: Logger,
  ) {}

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
    const loop = () => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
        if (!this.stopped) {
          this.timer = setTimeout(loop, this.options.retryMs);
          this.timer.unref();
        }
      });
    };
    loop();
  }

  /** Stops trying; a leader releases the lease (holder cleared) so that another takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (this.leading) {
      await this.release().catch((err) => this.logger.warn('could not release the leader lease', { error: (err as Error).message }));
      this.setLeading(false);
    }
  }

  private async tick(): Promise<void> {
    let renewed = false;
    try {
      renewed = await this.tryAcquireOrRenew();
    } catch (err) {
      this.logger.warn('leader lease: request failed', { error: (err as Error).message });
    }
    if (renewed) {
      this.lastRenew = Date.now();
      this.setLeading(true);
    } else if (this.leading && Date.now() - this.lastRenew >= this.options.renewDeadlineMs) {
      this.setLeading(false);
    }
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.logger.info(leading ? 'became the leader' : 'stopped leading', { identity: this.options.identity, lease: this.options.name });
    for (const listener of this.listeners) listener(leading);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = Date.now();
    const lease = await this.kube.readLease(namespace, name);
    if (!lease) {
      try {
        await this.kube.createLease(namespace, this.leaseBody(undefined, now));
        return true;
      } catch (err) {
        if (err instanceof KubernetesRequestError && err.status === 409) return false;
        throw err;
      }
    }
    const spec = lease.spec ?? {};
    const key = `${spec.holderIdentity ?? ''}|${String(spec.renewTime ?? '')}|${lease.metadata?.resourceVersion ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    const holder = spec.holderIdentity;
    const durationMs = (spec.leaseDurationSeconds ?? Math.ceil(this.options.leaseDurationMs / 1000)) * 1000;
    if (holder && holder !== identity && this.observed.at + durationMs > now) {
      if (this.leading) this.setLeading(false); // someone else holds it now
      return false;
    }
    try {
      await this.kube.replaceLease(namespace, name, this.leaseBody(lease, now));
      return true;
    } catch (err) {
      if (err instanceof KubernetesRequestError && err.status === 409) return false;
      throw err;
    }
  }

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
