/**
 * The leader-election tests' own view of the lease: a watch of their own (as the elector's, on one
 * name), every version with the moment it reached the test. A takeover is timed from the SIGKILL to the
 * new holder's write as seen here, because the child replicas report their state only every 100 ms.
 */
import { CoordinationV1Api, KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { expect } from 'vitest';
import { watch } from '../../src/k8s/watch.js';
import type { Replica } from './replica/index.js';

export interface LeaseSighting {
  index: number;
  /** Date.now() when the event reached the test. */
  at: number;
  type: string;
  holder: string | undefined;
  version: string;
  /** spec.acquireTime: when the holder began the try that acquired the lease, by its clock (this machine's). */
  acquired: number;
}

/** A KubeConfig for a plain-HTTP API server without authentication (the simulated cluster). */
export function plainKubeConfig(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

export class LeaseLog {
  readonly sightings: LeaseSighting[] = [];
  private readonly waiters = new Set<() => void>();
  private failure: Error | undefined;

  private constructor(private controller?: AbortController) {}

  /** Watches the lease `name` (fieldSelector metadata.name) until close(). */
  static async open(kc: KubeConfig, namespace: string, name: string): Promise<LeaseLog> {
    const log = new LeaseLog();
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
    log.controller = await watch(
      kc,
      path,
      { fieldSelector: `metadata.name=${name}` },
      (type, object) => {
        const lease = object as V1Lease;
        const index = log.sightings.length;
        const { holderIdentity: holder, acquireTime } = lease?.spec ?? {};
        const acquired = acquireTime ? Date.parse(String(acquireTime)) : NaN;
        log.sightings.push({ index, at: Date.now(), type, holder, version: lease?.metadata?.resourceVersion ?? '', acquired });
        for (const wake of log.waiters) wake();
      },
      (err) => {
        log.failure = err ?? new Error('the lease watch ended');
        for (const wake of log.waiters) wake();
      },
    );
    return log;
  }

  /** The first sighting at or after index `from` (by default: the next one) that passes `test`. */
  async next(test: (s: LeaseSighting) => boolean, timeoutMs: number, from = this.sightings.length): Promise<LeaseSighting> {
    const deadline = Date.now() + timeoutMs;
    for (let i = from; ; ) {
      for (; i < this.sightings.length; i++) if (test(this.sightings[i])) return this.sightings[i];
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such lease event within ${timeoutMs} ms; seen: ${JSON.stringify(this.sightings.slice(from))}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  close(): void {
    this.controller?.abort();
  }
}

export interface Takeover {
  /** From the SIGKILL to the new holder's write, as seen by the test. */
  takeoverMs: number;
  /** From the dead leader's last renewal to the new holder's write, both as seen by the test. */
  sinceRenewalMs: number;
  /** From the SIGKILL to the start of the new holder's acquiring try (its spec.acquireTime). */
  triedMs: number;
  holder: string | undefined;
}

/**
 * SIGKILLs the leading replica right after the test sees one of its renewals, so that its lease runs a
 * whole duration from about the kill (a kill just before a renewal would flatter any elector by up to a
 * retry period), and resolves once another replica's write of the lease is seen.
 */
export async function killLeader(log: LeaseLog, leader: Replica, timeoutMs: number): Promise<Takeover> {
  const renewal = await log.next((s) => s.type === 'MODIFIED' && s.holder === leader.identity, timeoutMs);
  const killedAt = Date.now();
  const exited = leader.kill();
  const taken = await log.next((s) => s.holder !== leader.identity, timeoutMs, renewal.index + 1);
  await exited;
  const last = log.sightings.slice(0, taken.index).reverse().find((s) => s.holder === leader.identity)!;
  return { takeoverMs: taken.at - killedAt, sinceRenewalMs: taken.at - last.at, triedMs: taken.acquired - killedAt, holder: taken.holder };
}

/**
 * The watch of one lease, as the elector makes it, against the API server: the lease as it is first
 * (a synthetic ADDED), then its changes and its deletion, and nothing of another lease in the namespace.
 * `watcher` watches (the server's service account on a real cluster: RBAC must allow it), `admin` writes.
 */
export async function expectOneLeaseWatched(watcher: KubeConfig, admin: KubeConfig, namespace: string, name: string): Promise<void> {
  const api = admin.makeApiClient(CoordinationV1Api);
  const other = `${name}-other`;
  await api.deleteNamespacedLease({ namespace, name }).catch(() => undefined);
  const created = await api.createNamespacedLease({ namespace, body: { metadata: { name }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } } });
  const log = await LeaseLog.open(watcher, namespace, name);
  try {
    await log.next((s) => s.type === 'ADDED', 5000, 0);
    await api.createNamespacedLease({ namespace, body: { metadata: { name: other }, spec: { holderIdentity: 'x' } } });
    const renewed = await api.replaceNamespacedLease({ namespace, name, body: { ...created, spec: { ...created.spec, holderIdentity: 'b' } } });
    await api.deleteNamespacedLease({ namespace, name: other });
    await api.deleteNamespacedLease({ namespace, name });
    await log.next((s) => s.type === 'DELETED', 5000, 0);
    expect(log.sightings.map((s) => [s.type, s.holder])).toEqual([['ADDED', 'a'], ['MODIFIED', 'b'], ['DELETED', 'b']]);
    expect(log.sightings.slice(0, 2).map((s) => s.version)).toEqual([created.metadata?.resourceVersion, renewed.metadata?.resourceVersion]);
  } finally {
    log.close();
  }
}
