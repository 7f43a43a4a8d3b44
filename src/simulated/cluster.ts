import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Faults, type FaultInjector } from './faults.js';
import { ClusterLifecycle } from './lifecycle.js';
import { ResourceOperations } from './operations.js';
import { resourceByPlural, type KubeObject } from './resources.js';
import { createRequestHandler, type Logger } from './server.js';
import { ObjectStore } from './store.js';
import type { VmiPhase } from './virt-launcher.js';
import { WatchHub } from './watch-hub.js';

export interface SimulatedClusterOptions {
  host?: string;               // default '127.0.0.1'
  port?: number;               // default 0 (ephemeral)
  /** Seconds from VMI creation until its pod becomes Ready; default 3; may be 0. */
  vmReadySeconds?: number;
  /** How long a deleted namespace stays Terminating before its contents and itself vanish; default 100. */
  namespaceTerminationMs?: number;
  /** Interval between BOOKMARK events on watches that allow them; default 1000. */
  bookmarkIntervalMs?: number;
  /** Events kept per resource for watches resuming from a resourceVersion; default 10,000. */
  historyLimit?: number;
  logger?: Logger;
}

export interface SimulatedCluster {
  readonly url: string;
  readonly faults: FaultInjector;
  /** Snapshot of stored objects, for assertions: resource is 'namespaces' | 'networkpolicies' | 'virtualmachineinstances' | 'pods'. */
  list(resource: string, namespace?: string): KubeObject[];
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Count of requests served, by `${verb} ${resource}` e.g. 'create virtualmachineinstances', 'watch pods', 'list pods'. */
  requestCounts(): Record<string, number>;
  /** Number of currently open watch connections (optionally for one resource). */
  openWatches(resource?: string): number;
  /** Cluster-side actions; each stops the automatic progression of the VMI concerned so that it cannot undo them. */
  setPodReady(namespace: string, podName: string, ready: boolean): void;
  setVmiPhase(namespace: string, name: string, phase: VmiPhase, message?: string): void;
  /** Pause/resume the automatic progression (VMI phases, pod readiness). */
  setAutoProgress(enabled: boolean): void;
  /** Makes every VMI that has not ended Running and its pod Ready at once (a burst). */
  readyAll(): void;
  /** As if someone ran kubectl delete; throws the API's NotFound (or Conflict for a Terminating namespace). */
  deleteObject(resource: string, namespace: string | undefined, name: string): void;
  /** Closes all connections (open watches and hanging requests included) and the server. */
  stop(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Tracks every socket so that stop() can destroy the ones a hanging request or a watch keeps open. */
function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return sockets;
}

interface Parts {
  store: ObjectStore;
  hub: WatchHub;
  lifecycle: ClusterLifecycle;
  faults: Faults;
  counts: Map<string, number>;
}

function buildParts(opts: SimulatedClusterOptions): Parts {
  const store = new ObjectStore(opts.historyLimit ?? 10_000);
  const hub = new WatchHub(store, opts.bookmarkIntervalMs ?? 1000);
  const lifecycle = new ClusterLifecycle(store, {
    vmReadySeconds: opts.vmReadySeconds ?? 3, namespaceTerminationMs: opts.namespaceTerminationMs ?? 100,
  });
  return { store, hub, lifecycle, faults: new Faults(store, hub), counts: new Map() };
}

function handle(parts: Parts, url: string, server: Server, sockets: Set<Socket>): SimulatedCluster {
  const { store, hub, lifecycle, faults, counts } = parts;
  const copy = <T>(value: T): T => structuredClone(value);
  return {
    url,
    faults,
    list: (resource, namespace) => copy(store.list(resourceByPlural(resource), namespace)),
    get: (resource, namespace, name) => copy(store.get(resourceByPlural(resource), namespace, name)),
    requestCounts: () => Object.fromEntries(counts),
    openWatches: (resource) => hub.count(resource),
    setPodReady: (namespace, podName, ready) => lifecycle.setPodReady(namespace, podName, ready),
    setVmiPhase: (namespace, name, phase, message) => lifecycle.setVmiPhase(namespace, name, phase, message),
    setAutoProgress: (enabled) => lifecycle.setAutoProgress(enabled),
    readyAll: () => lifecycle.readyAll(),
    deleteObject: (resource, namespace, name) => void lifecycle.delete(resourceByPlural(resource), namespace, name),
    stop: async () => {
      lifecycle.stop();
      hub.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** Starts a loopback HTTP server speaking the subset of the Kubernetes API that Lab Orchestrator uses. */
export async function startSimulatedCluster(opts: SimulatedClusterOptions = {}): Promise<SimulatedCluster> {
  const host = opts.host ?? '127.0.0.1';
  const parts = buildParts(opts);
  let address = '';
  const server = createServer(createRequestHandler({
    ops: new ResourceOperations(parts.store, parts.lifecycle), hub: parts.hub, faults: parts.faults,
    counts: parts.counts, logger: opts.logger, address: () => address,
  }));
  // Watches stay open for long; idle keep-alive sockets are closed by stop() anyway.
  server.keepAliveTimeout = 30_000;
  const sockets = trackSockets(server);
  try {
    const info = await listen(server, opts.port ?? 0, host);
    address = `${host.includes(':') ? `[${host}]` : host}:${info.port}`;
  } catch (err) {
    parts.hub.stop();
    throw err;
  }
  const url = `http://${address}`;
  opts.logger?.info(`simulated Kubernetes API listening on ${url}`);
  return handle(parts, url, server, sockets);
}
