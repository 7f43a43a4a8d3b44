import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Operation names are chosen by clients: at most this many distinct ones become labels, the rest "other". */
const MAX_OPERATION_NAMES = 200;
/** A longer operation name is "other" too: each label value is held, and sent on every scrape. */
const MAX_OPERATION_NAME_LENGTH = 100;

/**
 * The server's Prometheus metrics, one registry per app (tests run several apps in one process),
 * served at /metrics in the text format. Gauges that mirror state elsewhere (instances by status,
 * WebSocket connections, leadership) are read when scraped, through the sources set by createApp.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly operationNames = new Set<string>();
  private sources: {
    instancesByStatus?: () => Promise<Record<string, number>>;
    webSockets?: () => { connections: number; subscriptions: number };
    leader?: () => boolean;
  } = {};

  readonly instanceStartSeconds = new Histogram({
    name: 'lab_orchestrator_instance_start_seconds',
    help: 'Time from startLab to READY, per instance that reached READY (observed by the replica that wrote READY).',
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });

  readonly startFailures = new Counter({
    name: 'lab_orchestrator_instance_start_failures_total',
    help: 'Starts that ended FAILED, by reason: kubernetes_error (startLab rolled back), vm_failed, start_timeout, interrupted (taken over by crash recovery).',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly watchRestarts = new Counter({
    name: 'lab_orchestrator_watch_restarts_total',
    help: 'Watches restarted after an error or a stall, by kind.',
    labelNames: ['kind', 'cause'],
    registers: [this.registry],
  });

  readonly watchRelists = new Counter({
    name: 'lab_orchestrator_watch_relists_total',
    help: 'Full lists of a kind (the first one, and after 410 Gone or a failure).',
    labelNames: ['kind'],
    registers: [this.registry],
  });

  readonly reconcileSeconds = new Histogram({
    name: 'lab_orchestrator_reconcile_pass_seconds',
    help: 'Duration of one reconcile pass: reading, deriving, writing and publishing the dirty instances.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly operations = new Counter({
    name: 'lab_orchestrator_graphql_operations_total',
    help: 'GraphQL operations by operation name, type, transport (http, ws, ws-legacy) and outcome (OK or the error code of the first error); a subscription counts once, when set up.',
    labelNames: ['operation', 'type', 'transport', 'code'],
    registers: [this.registry],
  });

  readonly operationSeconds = new Histogram({
    name: 'lab_orchestrator_graphql_operation_seconds',
    help: 'Duration of GraphQL operations (of a subscription: its set-up), by operation name, type and transport.',
    labelNames: ['operation', 'type', 'transport'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly refusals = new Counter({
    name: 'lab_orchestrator_refusals_total',
    help: 'Errors answered RATE_LIMITED (a rate limit) or QUOTA_EXCEEDED (a quota, named by the quota label), over any transport.',
    labelNames: ['code', 'quota'],
    registers: [this.registry],
  });

  readonly dutyRuns = new Counter({
    name: 'lab_orchestrator_duty_runs_total',
    help: 'Passes of the periodic duties run by this replica (only while it leads), by duty.',
    labelNames: ['duty'],
    registers: [this.registry],
  });

  constructor() {
    const sources = () => this.sources;
    new Gauge({
      name: 'lab_orchestrator_instances',
      help: 'Lab instances by status (from the database, when scraped).',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const counts = (await sources().instancesByStatus?.()) ?? {};
        this.reset();
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'lab_orchestrator_websocket_connections',
      help: 'Open GraphQL WebSocket connections (both subprotocols).',
      registers: [this.registry],
      collect() {
        this.set(sources().webSockets?.().connections ?? 0);
      },
    });
    new Gauge({
      name: 'lab_orchestrator_subscriptions',
      help: 'Running GraphQL subscriptions over WebSocket.',
      registers: [this.registry],
      collect() {
        this.set(sources().webSockets?.().subscriptions ?? 0);
      },
    });
    new Gauge({
      name: 'lab_orchestrator_leader',
      help: '1 while this replica holds the leader lease and runs the periodic duties, else 0.',
      registers: [this.registry],
      collect() {
        this.set(sources().leader?.() ? 1 : 0);
      },
    });
  }

  /** Where the scraped gauges read from (set once by createApp). */
  setSources(sources: Metrics['sources']): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** A bounded label for a client-chosen operation name. */
  operationLabel(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    if (this.operationNames.has(name)) return name;
    if (this.operationNames.size >= MAX_OPERATION_NAMES || name.length > MAX_OPERATION_NAME_LENGTH) return 'other';
    this.operationNames.add(name);
    return name;
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
