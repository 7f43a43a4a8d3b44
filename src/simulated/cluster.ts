import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Faults, type FaultInjector } from './faults.js';
import { ClusterLifecycle, type LifecycleOptions } from './lifecycle.js';
import { ceilValue, parseQuantity } from './quantity.js';
import { ResourceOperations } from './operations.js';
import { resourceByPlural, SYSTEM_NAMESPACES, type KubeObject } from './resources.js';
import { createRequestHandler, type Logger } from './server.js';
import { ObjectStore } from './store.js';
import type { NetworkInterfaceDefault } from './virt-handler.js';
import { NODE_NAME, type VmiPhase } from './virt-launcher.js';
import { SimulatedVnc, type VncFramebuffer, type VncInputEvent, type VncOptions } from './vnc.js';
import { WatchHub } from './watch-hub.js';

export interface SimulatedClusterOptions {
  host?: string;               // default '127.0.0.1'
  port?: number;               // default 0 (ephemeral)
  /**
   * Seconds from VMI creation until the VMI is Running and Ready=True; default 3; may be 0. The steps fall
   * in KubeVirt's order within it: pod bound at 10 %, pod Running and Ready (VMI Scheduled) at 50 %,
   * VMI Running then Ready=True at 100 %.
   */
  vmReadySeconds?: number;
  /**
   * The namespace controller's own pass: a deleted namespace stays Terminating at least this long, and
   * until its content (pods, VMIs, network policies) is gone; default 2000.
   */
  namespaceTerminationMs?: number;
  /** How long a pod marked for deletion takes to stop (never more than its grace period); default 1000. */
  podTerminationMs?: number;
  /** The kubelet's image pull back-off: ErrImagePull turns into ImagePullBackOff after it, and it doubles per retry (up to 30x); default 10000. */
  imagePullBackOffMs?: number;
  /** Globs (`*`, `?`) of containerDisk images that cannot be pulled; default ['*:does-not-exist']. */
  unpullableImages?: string | string[];
  /** The one node: name and allocatable resources (quantities); default { name: 'sim-node-1', cpu: '16', memory: '64Gi' }. */
  node?: { name?: string; cpu?: string | number; memory?: string | number };
  /** The cluster's default interface for VMIs that name none (KubeVirt's default is bridge); decides LiveMigratable. */
  defaultNetworkInterface?: NetworkInterfaceDefault;
  /** Image of virt-launcher's containers; default 'quay.io/kubevirt/virt-launcher:v1.5.0'. */
  launcherImage?: string;
  /** Interval between BOOKMARK events on watches that allow them (the API server's watch cache: about once a minute); default 60000. */
  bookmarkIntervalMs?: number;
  /** Events kept per resource for watches resuming from a resourceVersion; default 10,000. */
  historyLimit?: number;
  /** The VNC subresource's framebuffer size; default 800x600. */
  vnc?: VncOptions;
  logger?: Logger;
}

export interface SimulatedCluster {
  readonly url: string;
  readonly faults: FaultInjector;
  /** Snapshot of stored objects, for assertions: resource is 'namespaces' | 'networkpolicies' | 'virtualmachineinstances' | 'pods' | 'leases'. */
  list(resource: string, namespace?: string): KubeObject[];
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Count of requests served, by `${verb} ${resource}` e.g. 'create virtualmachineinstances', 'watch pods', 'list pods'. */
  requestCounts(): Record<string, number>;
  /** Number of currently open watch connections (optionally for one resource). */
  openWatches(resource?: string): number;
  /**
   * Cluster-side actions; each stops the automatic start of the VMI concerned so that it cannot undo them
   * (KubeVirt's controllers still react: a pod made Ready hands its VMI over, Scheduled).
   */
  setPodReady(namespace: string, podName: string, ready: boolean): void;
  /** Sets the VMI's phase (and status.reason to `message`), as virt-handler would report it. */
  setVmiPhase(namespace: string, name: string, phase: VmiPhase, message?: string): void;
  /** Pause/resume the automatic start steps (binding, containers, domain); deletions and namespace purges go on. */
  setAutoProgress(enabled: boolean): void;
  /**
   * Takes every VMI that has not ended through the rest of its start at once (a burst), in KubeVirt's
   * order: pod Running and Ready, VMI Scheduled, Running, Ready=True. VMIs that cannot start stay.
   */
  readyAll(): void;
  /** As if someone ran kubectl delete; throws the API's NotFound (a namespace already Terminating is left as it is). */
  deleteObject(resource: string, namespace: string | undefined, name: string): void;
  /** Key and pointer events the VM's VNC console received (RFB client messages 4 and 5), oldest first. */
  vncInput(namespace: string, name: string): VncInputEvent[];
  /** Open connections to the VNC subresource (of one namespace, or one VM). */
  vncConnections(namespace?: string, name?: string): number;
  /** What the VM's console shows now: the test pattern naming the VM, and the text typed into it. */
  vncFramebuffer(namespace: string, name: string): VncFramebuffer;
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
  vnc: SimulatedVnc;
}

function quantityOption(value: string | number | undefined, fallback: string, what: string): number {
  const q = parseQuantity(value ?? fallback);
  if (!q || q.value <= 0) throw new Error(`simulated cluster: invalid ${what} quantity ${String(value)}`);
  return what === 'node cpu' ? q.value : ceilValue(q);
}

export function lifecycleOptions(opts: SimulatedClusterOptions): LifecycleOptions {
  const unpullable = opts.unpullableImages ?? ['*:does-not-exist'];
  return {
    vmReadySeconds: opts.vmReadySeconds ?? 3,
    namespaceTerminationMs: opts.namespaceTerminationMs ?? 2000,
    podTerminationMs: opts.podTerminationMs ?? 1000,
    imagePullBackOffMs: opts.imagePullBackOffMs ?? 10_000,
    unpullableImages: Array.isArray(unpullable) ? unpullable : [unpullable],
    node: {
      name: opts.node?.name ?? NODE_NAME,
      cpu: quantityOption(opts.node?.cpu, '16', 'node cpu'),
      memory: quantityOption(opts.node?.memory, '64Gi', 'node memory'),
    },
    defaultNetworkInterface: opts.defaultNetworkInterface ?? 'bridge',
    launcherImage: opts.launcherImage ?? 'quay.io/kubevirt/virt-launcher:v1.5.0',
  };
}

function buildParts(opts: SimulatedClusterOptions): Parts {
  const store = new ObjectStore(opts.historyLimit ?? 10_000);
  // The watch hub listens to the store first, so that a change is on the wire before the reactions to it.
  const hub = new WatchHub(store, opts.bookmarkIntervalMs ?? 60_000);
  const lifecycle = new ClusterLifecycle(store, lifecycleOptions(opts));
  const namespaces = resourceByPlural('namespaces');
  for (const name of SYSTEM_NAMESPACES) {
    store.insert(namespaces, { metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  }
  const faults = new Faults(store, hub);
  return { store, hub, lifecycle, faults, counts: new Map(), vnc: new SimulatedVnc(store, faults, opts.vnc) };
}

function handle(parts: Parts, url: string, server: Server, sockets: Set<Socket>): SimulatedCluster {
  const { store, hub, lifecycle, faults, counts, vnc } = parts;
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
    vncInput: (namespace, name) => vnc.inputEvents(namespace, name),
    vncConnections: (namespace, name) => vnc.connectionCount(namespace, name),
    vncFramebuffer: (namespace, name) => vnc.framebuffer(namespace, name),
    stop: async () => {
      lifecycle.stop();
      hub.stop();
      vnc.stop();
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
  // WebSocket upgrades: KubeVirt's VNC subresource; any other path is not served.
  server.on('upgrade', (req, socket, head) => {
    if (!parts.vnc.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
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
