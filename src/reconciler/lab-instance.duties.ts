import type { Config } from '../config.js';
import type { Orm } from '../db.js';
import { AdoptionClient } from '../k8s/adoption.js';
import type { Logger } from '../logger.js';
import { pruneExpired } from '../services/housekeeping.js';
import { adoptNamespaces } from '../services/lab-instance.adoption.js';
import { collectOrphans, expireInstances, recoverInstances } from '../services/lab-instance.recovery.js';
import type { LabInstanceDeps } from '../services/lab-instance.service.js';
import type { Reconciler } from './lab-instance.reconciler.js';

export type Duty = 'expiry' | 'recovery' | 'adoption' | 'gc' | 'housekeeping';

const HOUSEKEEPING_EVERY_MS = 3600_000;

/** What the duties need to know of leadership (the Lease elector). */
export interface Leadership {
  readonly isLeader: boolean;
}

/**
 * The periodic duties, run by the leader only, every STATUS_RESYNC_SECONDS: expiry (lifetimes, in any
 * status but STOPPING and STOPPED), crash recovery (PENDING and STOPPING for too long; PENDING past the
 * start deadline), adoption of an older server's unlabelled namespaces that this deployment's instances
 * name, garbage collection of orphaned namespaces, and hourly housekeeping of expired rows.
 * Watches, status writes and subscriptions stay on every replica (the reconciler).
 */
export class Duties {
  /** Passes run by this replica, per duty (the tests and the metrics read them). */
  readonly runs: Record<Duty, number> = { expiry: 0, recovery: 0, adoption: 0, gc: 0, housekeeping: 0 };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastHousekeeping = Date.now();
  private stopped = true;
  private readonly adoption: AdoptionClient;
  /** Unlabelled namespaces left alone, with why: each is logged once. */
  private readonly leftAlone = new Map<string, string>();

  constructor(
    private readonly orm: Orm,
    private readonly deps: LabInstanceDeps,
    private readonly reconciler: Reconciler,
    private readonly leadership: Leadership,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly observe?: (duty: Duty, seconds: number, result: number) => void,
  ) {
    this.adoption = new AdoptionClient(deps.kube.kubeConfig, config.kubernetes.requestTimeoutMs);
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.pass().finally(() => (this.running = undefined));
    }, this.config.kubernetes.resyncMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass of every duty that is due, if this replica leads and its watches have listed. */
  async pass(): Promise<void> {
    if (this.stopped || !this.leadership.isLeader || !this.reconciler.synced) return;
    const em = () => this.orm.em.fork();
    await this.run('expiry', () => expireInstances(em(), this.deps));
    await this.run('recovery', () => recoverInstances(em(), this.deps, (name) => this.reconciler.informers.namespaces.get(undefined, name)));
    await this.run('adoption', () => adoptNamespaces(em(), this.deps, this.adoption, this.reconciler.unadoptedNamespaces(), this.leftAlone));
    await this.run('gc', () => collectOrphans(em(), this.deps, this.reconciler.namespaces()));
    if (Date.now() - this.lastHousekeeping >= HOUSEKEEPING_EVERY_MS) {
      this.lastHousekeeping = Date.now();
      await this.run('housekeeping', async () => {
        const pruned = await pruneExpired(this.orm);
        this.logger.info('expired rows pruned', { ...pruned });
        return pruned.sessions + pruned.accountTokens + pruned.rateLimits;
      });
    }
  }

  private async run(duty: Duty, fn: () => Promise<number>): Promise<void> {
    if (!this.leadership.isLeader) return;
    const started = performance.now();
    this.runs[duty]++;
    try {
      const result = await fn();
      this.observe?.(duty, (performance.now() - started) / 1000, result);
    } catch (err) {
      this.logger.warn(`${duty} pass failed; will retry`, { error: (err as Error).message });
    }
  }
}
