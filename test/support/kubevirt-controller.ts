/**
 * KubeVirt's and the kubelet's part of a cluster, played against a REAL API server (the control plane
 * of test/support/control-plane.ts, which has KubeVirt's VMI CRD but no KubeVirt, no scheduler and no
 * kubelet). The logic is the simulated cluster's own (src/simulated: virt-controller.ts, kubelet.ts,
 * virt-handler.ts, virt-launcher.ts, kubevirt-api.ts, scheduler.ts), in the order lifecycle.ts runs it;
 * only the transport differs: here every read comes from a list+watch and every write is an API request.
 *
 * - virt-api's mutating webhook: a VMI seen for the first time without KubeVirt's finalizer and without
 *   a phase gets them (finalizer, phase Pending, runtimeUser) in one update. (A real webhook does that
 *   before the VMI is stored; here the VMI is visible without them for a moment.) The validating
 *   webhook's refusals are not played: the CRD's schema is the real one, the webhooks are
 *   `npm run test:cluster`'s business.
 * - virt-controller: one reconcileVmi() pass per VMI event, on a queue that never runs two passes of
 *   the same VMI at once. The pass is planned against the watch caches; its writes are then sent in
 *   order (pod create with generateName and a controller owner reference, pod status through
 *   `pods/status`, the VMI by update: KubeVirt's CRD has no status subresource). A pass that creates a
 *   pod stops there and runs again with the pod in its cache. A 409 (stale cache) runs the pass again.
 * - the scheduler: binding through `pods/binding` (or PodScheduled=False, Unschedulable, when the pod
 *   does not fit the one node); the kubelet: the pod's status through `pods/status` (admitted, then
 *   containers started, or an image that cannot be pulled); virt-handler: the domain running (Running).
 * - deletion: there is no kubelet to finish a graceful deletion, so a pod with a deletionTimestamp is
 *   deleted with gracePeriodSeconds=0 after `podTerminationMs` (for a VMI being deleted while Running,
 *   virt-handler first reports Succeeded); the VMI's finalizer is removed by the pass once its pods are
 *   gone, and the API server then removes the VMI.
 *
 * Timings as the simulated cluster's options (`vmReadySeconds`, `podTerminationMs`, ...).
 *
 * What the API server did differently from what was sent is recorded in `differences` (a field pruned
 * by the CRD's schema, a value normalised), unexpected API answers in `problems`, and the expected
 * refusals a real API server gives (stale caches, namespaces being terminated, ...) counted in `notes`.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { lifecycleOptions, type SimulatedClusterOptions } from '../../src/simulated/cluster.js';
import { mutateNewVmi, VMI_FINALIZER } from '../../src/simulated/kubevirt-api.js';
import {
  bindPod, containerRunning, errImagePullMessage, getCondition, imagePullBackOffMessage, kubeletAdmitted, kubeletPullFailing,
  kubeletStarted, markUnschedulable, waitingReasons,
} from '../../src/simulated/kubelet.js';
import { globToRegExp, MAX_BACKOFF_FACTOR, STEP, type LifecycleOptions } from '../../src/simulated/lifecycle.js';
import type { KubeObject } from '../../src/simulated/resources.js';
import { unschedulableMessage } from '../../src/simulated/scheduler.js';
import { isFinalPhase, reconcileVmi, type ControllerApi } from '../../src/simulated/virt-controller.js';
import { domainStarted, setPhase } from '../../src/simulated/virt-handler.js';
import { buildLauncherPod, COMPUTE, containerDisks } from '../../src/simulated/virt-launcher.js';

// ---- a small HTTPS client of the Kubernetes API ----------------------------------------------------

/** Where the API server is and how to authenticate (client certificate or bearer token). */
export interface ApiConnection {
  server: string;
  ca: string;
  cert?: string;
  key?: string;
  token?: string;
}

/** The connection a kubeconfig's current context describes (inline data or files). */
export function connectionFromKubeconfig(path: string): ApiConnection {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster) throw new Error(`${path}: no current cluster`);
  const data = (inline: string | undefined, file: string | undefined) =>
    inline ? Buffer.from(inline, 'base64').toString('utf8') : file ? readFileSync(file, 'utf8') : undefined;
  return {
    server: cluster.server,
    ca: data(cluster.caData, cluster.caFile) ?? '',
    cert: data(user?.certData, user?.certFile),
    key: data(user?.keyData, user?.keyFile),
    token: user?.token,
  };
}

export interface ApiAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any Kubernetes JSON
  body: any;
  text: string;
}

/** A non-2xx answer, or no answer. `status` is 0 when the request did not get an HTTP answer. */
export class ApiRequestError extends Error {
  constructor(
    readonly what: string,
    readonly status: number,
    readonly reason: string,
    readonly detail: string,
  ) {
    super(`${what}: ${status ? `HTTP ${status} ${reason}` : 'no answer'}: ${detail}`);
  }
}

/** HTTPS with the connection's CA and credentials; plain HTTP for an http:// server (the simulated cluster). */
export class KubeApi {
  private readonly agent: Agent | HttpAgent;
  private readonly send: typeof httpsRequest;

  constructor(readonly connection: ApiConnection) {
    const plain = connection.server.startsWith('http:');
    this.agent = plain
      ? new HttpAgent({ keepAlive: true, maxSockets: 32 })
      : new Agent({ keepAlive: true, maxSockets: 32, ca: connection.ca, cert: connection.cert, key: connection.key });
    this.send = plain ? (httpRequest as typeof httpsRequest) : httpsRequest;
  }

  static fromKubeconfig(path: string): KubeApi {
    return new KubeApi(connectionFromKubeconfig(path));
  }

  private headers(body: string | undefined, contentType: string): Record<string, string> {
    return {
      accept: 'application/json',
      ...(this.connection.token ? { authorization: `Bearer ${this.connection.token}` } : {}),
      // (Node sends a DELETE's body neither chunked nor with a length unless told: the length, always.)
      ...(body === undefined ? {} : { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) }),
    };
  }

  /** One request; never throws for an HTTP status (see `call` for that). */
  request(method: string, path: string, body?: unknown, options: { contentType?: string; timeoutMs?: number } = {}): Promise<ApiAnswer> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const timeoutMs = options.timeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      const req = this.send(
        new URL(path, this.connection.server),
        { method, agent: this.agent, timeout: timeoutMs, headers: this.headers(payload, options.contentType ?? 'application/json') },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              // not JSON: only the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, text });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A request that must succeed (2xx); anything else is thrown as an ApiRequestError. */
  async call(method: string, path: string, body?: unknown, options: { contentType?: string; timeoutMs?: number } = {}): Promise<ApiAnswer> {
    const what = `${method} ${path}`;
    let answer: ApiAnswer;
    try {
      answer = await this.request(method, path, body, options);
    } catch (error) {
      const cause = (error as { code?: string }).code ?? (error as Error).message;
      throw new ApiRequestError(what, 0, 'Unreachable', cause);
    }
    if (answer.status < 200 || answer.status > 299) {
      throw new ApiRequestError(what, answer.status, String(answer.body?.reason ?? ''), String(answer.body?.message ?? answer.text.slice(0, 300)));
    }
    return answer;
  }

  /**
   * A watch: GET with watch=1, each event to `onEvent`; `onEnd` once, with the error (a non-200 answer
   * included) or nothing when the server ended it. Returns the function that ends it.
   */
  watch(
    path: string,
    query: Record<string, string>,
    onEvent: (type: string, object: KubeObject & { code?: number }) => void,
    onEnd: (error?: Error) => void,
  ): () => void {
    const url = new URL(path, this.connection.server);
    url.searchParams.set('watch', '1');
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    let ended = false;
    const end = (error?: Error) => {
      if (ended) return;
      ended = true;
      onEnd(error);
    };
    const req = this.send(url, { method: 'GET', agent: this.agent, headers: this.headers(undefined, '') }, (res) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => end(new ApiRequestError(`watch ${path}`, res.statusCode ?? 0, '', text.slice(0, 300))));
        return;
      }
      let rest = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.trim()) continue;
          try {
            const event = JSON.parse(line) as { type: string; object: KubeObject & { code?: number } };
            onEvent(event.type, event.object);
          } catch {
            // a line that is not JSON: skipped
          }
        }
      });
      res.on('end', () => end());
      res.on('error', (error) => end(error));
      res.on('close', () => end());
    });
    req.on('error', (error) => end(error));
    req.end();
    return () => {
      ended = true;
      req.destroy();
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

// ---- list+watch caches -------------------------------------------------------------------------------

const keyOf = (obj: KubeObject) => `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;

/** Whether resourceVersion a is older than b (etcd revisions: numbers). */
function older(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

type Change = (type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject) => void;

/** One kind, all namespaces: list, then watch from the list's resourceVersion; relist after any failure. */
class Reflector {
  readonly cache = new Map<string, KubeObject>();
  private readonly deletedUids = new Set<string>();
  private rv = '';
  private abort: (() => void) | undefined;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private resolveSynced!: () => void;
  readonly synced = new Promise<void>((resolve) => (this.resolveSynced = resolve));

  constructor(
    private readonly api: KubeApi,
    private readonly path: string,
    private readonly typeMeta: { apiVersion: string; kind: string },
    private readonly onChange: Change,
    private readonly note: (what: string) => void,
  ) {}

  start(): void {
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.abort?.();
  }

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.cache.get(`${namespace ?? ''}/${name}`);
  }

  /** The answer to our own write: newer than the cache until the watch brings it. */
  observe(obj: KubeObject | undefined): void {
    if (!obj?.metadata?.name || this.deletedUids.has(obj.metadata.uid ?? '')) return;
    const typed = { ...this.typeMeta, ...obj };
    const cached = this.cache.get(keyOf(typed));
    if (cached && cached.metadata.uid === typed.metadata.uid && !older(cached.metadata.resourceVersion, typed.metadata.resourceVersion)) return;
    if (cached && cached.metadata.uid !== typed.metadata.uid && older(typed.metadata.resourceVersion, cached.metadata.resourceVersion)) return;
    this.cache.set(keyOf(typed), typed);
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    try {
      const answer = await this.api.call('GET', this.path);
      if (this.stopped) return;
      const items = ((answer.body?.items ?? []) as KubeObject[]).map((item) => ({ ...this.typeMeta, ...item }));
      const fresh = new Map(items.map((item) => [keyOf(item), item]));
      for (const [key, old] of this.cache) {
        if (!fresh.has(key)) {
          this.cache.delete(key);
          this.onChange('DELETED', old);
        }
      }
      for (const [key, item] of fresh) {
        const old = this.cache.get(key);
        if (old && old.metadata.uid === item.metadata.uid && !older(old.metadata.resourceVersion, item.metadata.resourceVersion)) continue;
        this.cache.set(key, item);
        this.onChange(old ? 'MODIFIED' : 'ADDED', item);
      }
      this.rv = String(answer.body?.metadata?.resourceVersion ?? '');
      this.failures = 0;
      this.resolveSynced();
      this.watch();
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private watch(): void {
    if (this.stopped) return;
    let expired = false;
    let errorEvent: string | undefined;
    this.abort = this.api.watch(
      this.path,
      { resourceVersion: this.rv, allowWatchBookmarks: 'true', timeoutSeconds: '60' },
      (type, obj) => {
        if (this.stopped) return;
        if (type === 'ERROR') {
          expired = obj?.code === 410;
          if (!expired) errorEvent = JSON.stringify(obj).slice(0, 300);
          return;
        }
        if (obj?.metadata?.resourceVersion) this.rv = obj.metadata.resourceVersion;
        if (type === 'BOOKMARK') return;
        const typed = { ...this.typeMeta, ...obj };
        const key = keyOf(typed);
        if (type === 'DELETED') {
          this.deletedUids.add(typed.metadata.uid ?? '');
          const cached = this.cache.get(key);
          if (!cached || cached.metadata.uid === typed.metadata.uid) this.cache.delete(key);
          this.onChange('DELETED', typed);
          return;
        }
        const cached = this.cache.get(key);
        if (!(cached && cached.metadata.uid === typed.metadata.uid && older(typed.metadata.resourceVersion, cached.metadata.resourceVersion))) {
          this.cache.set(key, typed);
        }
        this.onChange(type === 'ADDED' ? 'ADDED' : 'MODIFIED', typed);
      },
      (error) => {
        if (this.stopped) return;
        if (expired) {
          this.note('watch: 410 Expired, relisting');
          void this.relist();
        } else if (error || errorEvent) {
          this.fail(error ?? new Error(`watch ERROR event ${errorEvent}`));
        } else {
          this.watch(); // the server ended it (timeoutSeconds): resume from the last resourceVersion
        }
      },
    );
  }

  private fail(error: Error): void {
    if (this.stopped) return;
    this.note(`list/watch ${this.path} failed, relisting: ${error.message.slice(0, 120)}`);
    const delay = Math.min(2000, 50 * 2 ** this.failures++);
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.relist(), delay);
  }
}

// ---- the controller ------------------------------------------------------------------------------------

export type KubeVirtControllerOptions = Pick<
  SimulatedClusterOptions,
  'vmReadySeconds' | 'podTerminationMs' | 'imagePullBackOffMs' | 'unpullableImages' | 'node' | 'defaultNetworkInterface' | 'launcherImage'
> & {
  /** Passes and steps running at once (each for a different VMI); default 8. */
  concurrency?: number;
  /** Where notes on failures go as they happen; default nowhere. */
  log?: (line: string) => void;
};

/** A failure the next pass takes care of: run the key again after `delayMs`. */
class Retry extends Error {
  constructor(readonly delayMs: number, message: string) {
    super(message);
  }
}

type Step = 'bind' | 'containers' | 'pull' | 'domain' | `terminate ${string}`;

const VMIS = '/apis/kubevirt.io/v1/virtualmachineinstances';
const PODS = '/api/v1/pods';
const vmiPath = (ns: string, name: string) => `/apis/kubevirt.io/v1/namespaces/${ns}/virtualmachineinstances/${name}`;
const podPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/pods/${name}`;
const clone = <T>(value: T): T => structuredClone(value);

function controllerRef(pod: KubeObject): { name: string; uid: string } | undefined {
  const ref = (pod.metadata.ownerReferences ?? []).find((r) => r.controller === true && r.kind === 'VirtualMachineInstance');
  return ref ? { name: String(ref.name), uid: String(ref.uid) } : undefined;
}

/** JSON with sorted keys, to compare what was sent with what was stored. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

/** The paths at which two JSON values differ (array indices written as []). */
function differingPaths(sent: unknown, stored: unknown, path: string, out: Array<{ path: string; sent: unknown; stored: unknown }>): void {
  if (canonical(sent) === canonical(stored)) return;
  const bothObjects = sent && stored && typeof sent === 'object' && typeof stored === 'object';
  if (bothObjects && Array.isArray(sent) === Array.isArray(stored)) {
    if (Array.isArray(sent) && Array.isArray(stored)) {
      if (sent.length !== stored.length) {
        out.push({ path, sent: `${sent.length} items`, stored: `${stored.length} items` });
        return;
      }
      sent.forEach((item, i) => differingPaths(item, stored[i], `${path}[]`, out));
      return;
    }
    const a = sent as Record<string, unknown>;
    const b = stored as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) differingPaths(a[key], b[key], `${path}.${key}`, out);
    return;
  }
  out.push({ path, sent, stored });
}

export class KubeVirtController {
  /** Unexpected API answers (a refused pod, an invalid VMI, ...): a test expects none. */
  readonly problems: string[] = [];
  /** Where the API server stored something other than what was written: `<what> <path>: sent …, stored …`. */
  readonly differences: string[] = [];
  /** Expected refusals and failures (stale cache, namespace terminating, API server away), counted. */
  readonly notes = new Map<string, number>();

  private readonly opts: LifecycleOptions;
  private readonly unpullable: RegExp[];
  private readonly concurrency: number;
  private readonly log: (line: string) => void;
  private api: KubeApi | undefined;
  private vmis: Reflector | undefined;
  private pods: Reflector | undefined;
  private stopped = false;

  private readonly ready = new Set<string>();
  private readonly active = new Set<string>();
  private readonly again = new Set<string>();
  private readonly delayed = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly due = new Map<string, Set<Step>>();
  private readonly pulls = new Map<string, number>();
  private readonly differenceKeys = new Set<string>();
  private ips = 0;

  constructor(options: KubeVirtControllerOptions = {}) {
    this.opts = lifecycleOptions({ vmReadySeconds: 1, podTerminationMs: 200, ...options });
    this.unpullable = this.opts.unpullableImages.map(globToRegExp);
    this.concurrency = options.concurrency ?? 8;
    this.log = options.log ?? (() => {});
  }

  /** Connects (admin kubeconfig path, or connection data), lists VMIs and pods, and starts reacting. */
  async start(connection: string | ApiConnection): Promise<void> {
    if (this.api) throw new Error('the controller is already started');
    this.api = typeof connection === 'string' ? KubeApi.fromKubeconfig(connection) : new KubeApi(connection);
    const note = (what: string) => this.noteOf(what);
    this.vmis = new Reflector(this.api, VMIS, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance' }, (type, obj) => this.onVmi(type, obj), note);
    this.pods = new Reflector(this.api, PODS, { apiVersion: 'v1', kind: 'Pod' }, (type, obj) => this.onPod(type, obj), note);
    this.vmis.start();
    this.pods.start();
    await Promise.all([this.vmis.synced, this.pods.synced]);
  }

  /** Ends the watches and timers and waits for the passes under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.vmis?.stop();
    this.pods?.stop();
    for (const timer of [...this.timers.values(), ...this.delayed.values()]) clearTimeout(timer);
    this.timers.clear();
    this.delayed.clear();
    this.ready.clear();
    await Promise.allSettled([...this.running]);
    this.api?.close();
  }

  /** Resolves once no pass is queued or running (timers may still be set). */
  async idle(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.ready.size || this.active.size || this.delayed.size) {
      if (Date.now() > deadline) throw new Error('the KubeVirt controller did not settle');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** A summary for logs: problems, differences and the counted notes. */
  report(): string {
    const notes = [...this.notes].map(([what, n]) => `  ${n} x ${what}`);
    return [
      `problems (${this.problems.length}):`, ...this.problems.map((p) => `  ${p}`),
      `differences (${this.differences.length}):`, ...this.differences.map((d) => `  ${d}`),
      `notes:`, ...notes,
    ].join('\n');
  }

  // ---- events and the queue ----

  private onVmi(type: string, vmi: KubeObject): void {
    const key = `vmi ${keyOf(vmi)}`;
    if (type === 'DELETED') {
      this.clearTimer(`domain:${vmi.metadata.uid ?? ''}`);
      this.due.delete(key);
    }
    this.enqueue(key);
  }

  private onPod(type: string, pod: KubeObject): void {
    const uid = pod.metadata.uid ?? '';
    const owner = controllerRef(pod);
    if (type === 'DELETED') {
      for (const step of ['bind', 'containers', 'pull', 'terminate']) this.clearTimer(`${step}:${uid}`);
      this.pulls.delete(uid);
    } else if (pod.metadata.deletionTimestamp) {
      this.terminationTimer(pod);
    }
    if (owner) this.enqueue(`vmi ${pod.metadata.namespace ?? ''}/${owner.name}`);
  }

  private enqueue(key: string, delayMs = 0): void {
    if (this.stopped) return;
    if (delayMs > 0) {
      if (!this.delayed.has(key)) {
        this.delayed.set(key, setTimeout(() => {
          this.delayed.delete(key);
          this.enqueue(key);
        }, delayMs));
      }
      return;
    }
    if (this.active.has(key)) {
      this.again.add(key);
      return;
    }
    this.ready.add(key);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.active.size < this.concurrency && this.ready.size) {
      const key = this.ready.values().next().value as string;
      this.ready.delete(key);
      this.active.add(key);
      const work = this.process(key).finally(() => {
        this.active.delete(key);
        this.running.delete(work);
        if (this.again.delete(key)) this.enqueue(key);
        this.pump();
      });
      this.running.add(work);
    }
  }

  private async process(key: string): Promise<void> {
    const space = key.indexOf(' ');
    const slash = key.indexOf('/');
    const [kind, namespace, name] = [key.slice(0, space), key.slice(space + 1, slash), key.slice(slash + 1)];
    try {
      if (kind === 'vmi') await this.syncVmi(key, namespace, name);
      else await this.syncPod(key, namespace, name);
      this.failures.delete(key);
    } catch (error) {
      if (this.stopped) return;
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const backoff = Math.min(2000, 20 * 2 ** (n - 1));
      if (error instanceof Retry) {
        this.noteOf(error.message);
        this.enqueue(key, Math.max(error.delayMs, backoff));
        return;
      }
      const message = `${key}: ${(error as Error).message}`;
      this.problems.push(message);
      this.log(`[kubevirt-controller] ${message}`);
      this.enqueue(key, backoff);
    }
  }

  private noteOf(what: string): void {
    this.notes.set(what, (this.notes.get(what) ?? 0) + 1);
  }

  // ---- API writes (each answer goes into the cache at once) ----

  /** Sends a write; expected refusals of a real API server become Retry (with a note), the rest is thrown. */
  private async write(method: string, path: string, body?: unknown): Promise<KubeObject | undefined> {
    try {
      const answer = await this.api!.call(method, path, body);
      return answer.body as KubeObject | undefined;
    } catch (error) {
      if (!(error instanceof ApiRequestError)) throw error;
      const { status, detail } = error;
      const verb = `${method} ${path.replace(/\/namespaces\/[^/]+/, '/namespaces/*').replace(/\/(pods|virtualmachineinstances)\/[^/]+/, '/$1/*')}`;
      if (status === 0 || status >= 500 || status === 429) throw new Retry(200, `${verb}: API server unavailable (${status || detail})`);
      if (status === 409) throw new Retry(0, `${verb}: 409 ${error.reason} (stale cache or name taken)`);
      if (status === 404) throw new Retry(0, `${verb}: 404 (gone meanwhile)`);
      if (status === 403 && /being terminated/.test(detail)) throw new Retry(500, `${verb}: 403 namespace is being terminated`);
      if (status === 403 && /service account/.test(detail)) {
        // The ServiceAccount admission plugin: the namespace's "default" account is not made yet.
        throw new Retry(100, `${verb}: 403 ${detail.replace(/^.*?(error looking up service account)/, '$1').replace(/\S+\/default/, '<ns>/default')}`);
      }
      throw error;
    }
  }

  /** Records where what the API server stored differs from what was sent. */
  private compare(what: string, sent: unknown, stored: unknown): void {
    const out: Array<{ path: string; sent: unknown; stored: unknown }> = [];
    differingPaths(sent, stored, '', out);
    for (const d of out) {
      const key = `${what} ${d.path}`;
      if (this.differenceKeys.has(key)) continue;
      this.differenceKeys.add(key);
      this.differences.push(`${key}: sent ${JSON.stringify(d.sent)?.slice(0, 200)}, stored ${JSON.stringify(d.stored)?.slice(0, 200)}`);
    }
  }

  private async putVmi(next: KubeObject): Promise<void> {
    const { namespace = '', name = '' } = next.metadata;
    const stored = await this.write('PUT', vmiPath(namespace, name), next);
    if (!stored) return;
    const gone = stored.metadata?.deletionTimestamp && !(stored.metadata.finalizers as string[] | undefined)?.length;
    if (!gone) this.vmis!.observe(stored);
    this.compare('VirtualMachineInstance update', { status: next.status, finalizers: next.metadata.finalizers, labels: next.metadata.labels, annotations: next.metadata.annotations },
      { status: stored.status, finalizers: stored.metadata?.finalizers, labels: stored.metadata?.labels, annotations: stored.metadata?.annotations });
  }

  private async putPodStatus(next: KubeObject): Promise<void> {
    const { namespace = '', name = '' } = next.metadata;
    const stored = await this.write('PUT', `${podPath(namespace, name)}/status`, next);
    if (!stored) return;
    this.pods!.observe(stored);
    this.compare('pods/status', next.status, stored.status);
  }

  private async deletePod(pod: KubeObject, gracePeriodSeconds?: number): Promise<void> {
    const options = { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: pod.metadata.uid }, ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }) };
    const answer = await this.write('DELETE', podPath(pod.metadata.namespace ?? '', pod.metadata.name ?? ''), options);
    if (answer?.kind === 'Pod' && answer.metadata?.deletionTimestamp) {
      this.pods!.observe(answer);
      this.terminationTimer(answer);
    }
  }

  // ---- virt-controller, virt-api's mutating webhook and the steps of a VMI's start ----

  private podsOf(vmi: KubeObject): KubeObject[] {
    const pods = [...this.pods!.cache.values()].filter(
      (p) => p.metadata.namespace === vmi.metadata.namespace && controllerRef(p)?.uid === vmi.metadata.uid,
    );
    // Oldest first (the simulated store's insertion order): by creation time, then by resourceVersion.
    return pods.sort((a, b) =>
      String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)) ||
      (older(a.metadata.resourceVersion, b.metadata.resourceVersion) ? -1 : 1));
  }

  private currentPod(vmi: KubeObject): KubeObject | undefined {
    const pods = this.podsOf(vmi);
    return pods[pods.length - 1];
  }

  private async syncVmi(key: string, namespace: string, name: string): Promise<void> {
    const vmi = this.vmis!.get(namespace, name);
    if (!vmi) {
      this.due.delete(key);
      return;
    }
    const finalizers = (vmi.metadata.finalizers as string[] | undefined) ?? [];
    if (!vmi.metadata.deletionTimestamp && !finalizers.includes(VMI_FINALIZER) && !vmi.status?.phase) {
      // virt-api's mutating webhook (vmi-mutator.go), late: the API server has stored the VMI without it.
      const next = clone(vmi);
      mutateNewVmi(next);
      await this.putVmi(next);
      this.enqueue(key);
      return;
    }
    if (await this.pass(vmi)) {
      this.enqueue(key);
      return;
    }
    await this.runDueSteps(key, namespace, name);
    const now = this.vmis!.get(namespace, name);
    if (now) this.ensureTimers(key, now);
  }

  /**
   * One virt-controller pass (reconcileVmi), planned against the caches, then its writes in order.
   * True when it created a pod: the pass runs again with the pod in its cache.
   */
  private async pass(vmi: KubeObject): Promise<boolean> {
    const writes: Array<() => Promise<void>> = [];
    let toCreate: KubeObject | undefined;
    const api: ControllerApi = {
      get: () => clone(vmi),
      ownedPods: (v) => this.podsOf(v).map(clone),
      createPod: (pod) => {
        toCreate = pod;
        // A stand-in: the pass goes on with it, but nothing it plans after a pod create is sent.
        return { ...pod, metadata: { ...pod.metadata, name: `${String(pod.metadata.generateName)}?????`, uid: '' }, status: { phase: 'Pending' } };
      },
      deletePod: (pod) => void writes.push(() => this.deletePod(pod)),
      patchPod: (pod, mutate) => {
        const next = clone(pod);
        mutate(next);
        writes.push(() => this.putPodStatus(next));
      },
      updateVmi: (next) => void writes.push(() => this.putVmi(clone(next))),
      removeVmi: (last) => void writes.push(() => this.putVmi(clone(last))),
      renderPod: (v) => buildLauncherPod(v, this.opts.launcherImage),
    };
    reconcileVmi(api);
    if (toCreate) {
      const created = await this.write('POST', `/api/v1/namespaces/${vmi.metadata.namespace ?? ''}/pods`, toCreate);
      this.pods!.observe(created);
      if (created) this.compare('pod create', { labels: toCreate.metadata.labels, annotations: toCreate.metadata.annotations, ownerReferences: toCreate.metadata.ownerReferences },
        { labels: created.metadata?.labels, annotations: created.metadata?.annotations, ownerReferences: created.metadata?.ownerReferences });
      return true;
    }
    for (const send of writes) await send();
    return false;
  }

  private timer(key: string, ms: number, fn: () => void): void {
    if (this.timers.has(key) || this.stopped) return;
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      fn();
    }, Math.max(0, ms)));
  }

  private clearTimer(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
  }

  private markDue(key: string, step: Step): void {
    let steps = this.due.get(key);
    if (!steps) this.due.set(key, (steps = new Set()));
    steps.add(step);
    this.enqueue(key);
  }

  /** lifecycle.ts ensureTimers: the next automatic step of the VMI's start, at its fraction of vmReadySeconds. */
  private ensureTimers(key: string, vmi: KubeObject): void {
    if (vmi.metadata.deletionTimestamp || isFinalPhase(vmi.status?.phase)) return;
    const ms = (fraction: number): number => fraction * this.opts.vmReadySeconds * 1000;
    const pod = this.currentPod(vmi);
    if (pod && !pod.metadata.deletionTimestamp) {
      const uid = pod.metadata.uid ?? '';
      const pulling = waitingReasons(pod).find((w) => w.reason === 'ErrImagePull' || w.reason === 'ImagePullBackOff');
      if (!pod.spec?.nodeName) {
        if (getCondition(pod, 'PodScheduled')?.reason !== 'Unschedulable') this.timer(`bind:${uid}`, ms(STEP.bind), () => this.markDue(key, 'bind'));
      } else if (pulling) {
        const base = this.opts.imagePullBackOffMs;
        const attempts = this.pulls.get(uid) ?? 1;
        const delay = pulling.reason === 'ErrImagePull' ? base : Math.min(base * 2 ** (attempts - 1), base * MAX_BACKOFF_FACTOR);
        this.timer(`pull:${uid}`, delay, () => this.markDue(key, 'pull'));
      } else if (!containerRunning(pod, COMPUTE)) {
        this.timer(`containers:${uid}`, ms(STEP.containers), () => this.markDue(key, 'containers'));
      }
    }
    if (vmi.status?.phase === 'Scheduled') this.timer(`domain:${vmi.metadata.uid ?? ''}`, ms(STEP.domain), () => this.markDue(key, 'domain'));
  }

  private async runDueSteps(key: string, namespace: string, name: string): Promise<void> {
    const steps = this.due.get(key);
    if (!steps?.size) return;
    for (const step of [...steps]) {
      const vmi = this.vmis!.get(namespace, name);
      if (!vmi) return;
      // Taken off first: a step that fails with Retry is marked due again, so that it runs on the next pass.
      steps.delete(step);
      try {
        await this.runStep(step, vmi);
      } catch (error) {
        if (error instanceof Retry) steps.add(step);
        throw error;
      }
    }
  }

  private unpullableDisk(vmi: KubeObject): { name: string; image: string } | undefined {
    return containerDisks(vmi).find((d) => this.unpullable.some((re) => re.test(d.image)));
  }

  private async runStep(step: Step, vmi: KubeObject): Promise<void> {
    if (step.startsWith('terminate ')) {
      const [ns, podName] = step.slice('terminate '.length).split('/');
      const pod = this.pods!.get(ns, podName);
      if (pod?.metadata.deletionTimestamp) await this.terminate(pod);
      return;
    }
    if (vmi.metadata.deletionTimestamp || isFinalPhase(vmi.status?.phase)) return;
    if (step === 'domain') {
      // virt-handler: the domain runs.
      if (vmi.status?.phase !== 'Scheduled') return;
      const next = clone(vmi);
      domainStarted(next, this.currentPod(vmi)?.status?.podIP as string | undefined, this.opts.defaultNetworkInterface);
      await this.putVmi(next);
      return;
    }
    const pod = this.currentPod(vmi);
    if (!pod || pod.metadata.deletionTimestamp) return;
    const ns = pod.metadata.namespace ?? '';
    const podName = pod.metadata.name ?? '';
    if (step === 'bind') {
      if (pod.spec?.nodeName) return;
      const message = unschedulableMessage(vmi, this.opts.node);
      if (message) {
        const next = clone(pod);
        markUnschedulable(next, message);
        await this.putPodStatus(next);
        return;
      }
      // The scheduler's binding, then the kubelet's first status.
      const binding = { apiVersion: 'v1', kind: 'Binding', metadata: { name: podName, namespace: ns }, target: { apiVersion: 'v1', kind: 'Node', name: this.opts.node.name } };
      await this.write('POST', `${podPath(ns, podName)}/binding`, binding);
      const bound = (await this.api!.call('GET', podPath(ns, podName))).body as KubeObject;
      const simulated = clone(pod);
      bindPod(simulated, this.opts.node.name);
      // (The times are compared as present or not: the two were taken a moment apart.)
      const scheduled = (p: KubeObject) => ({ ...getCondition(p, 'PodScheduled'), lastTransitionTime: Boolean(getCondition(p, 'PodScheduled')?.lastTransitionTime) });
      this.compare('pods/binding', { nodeName: simulated.spec?.nodeName, PodScheduled: scheduled(simulated) },
        { nodeName: bound.spec?.nodeName, PodScheduled: scheduled(bound) });
      const n = this.ips++;
      const podIP = `10.244.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`;
      const next = { apiVersion: 'v1', kind: 'Pod', ...clone(bound) };
      kubeletAdmitted(next, '10.0.0.1', podIP);
      await this.putPodStatus(next);
      return;
    }
    if (!pod.spec?.nodeName) return;
    const bad = this.unpullableDisk(vmi);
    const container = bad ? `volume${bad.name}-init` : '';
    if (step === 'containers') {
      if (containerRunning(pod, COMPUTE)) return;
      const next = clone(pod);
      if (bad) {
        this.pulls.set(pod.metadata.uid ?? '', 1);
        kubeletPullFailing(next, container, 'ErrImagePull', errImagePullMessage(bad.image));
      } else {
        kubeletStarted(next);
      }
      await this.putPodStatus(next);
      return;
    }
    if (step === 'pull' && bad) {
      const pulling = waitingReasons(pod).find((w) => w.reason === 'ErrImagePull' || w.reason === 'ImagePullBackOff');
      if (!pulling) return;
      const next = clone(pod);
      if (pulling.reason === 'ErrImagePull') {
        kubeletPullFailing(next, container, 'ImagePullBackOff', imagePullBackOffMessage(bad.image));
      } else {
        const uid = pod.metadata.uid ?? '';
        this.pulls.set(uid, (this.pulls.get(uid) ?? 1) + 1);
        kubeletPullFailing(next, container, 'ErrImagePull', errImagePullMessage(bad.image));
      }
      await this.putPodStatus(next);
    }
  }

  // ---- the kubelet's end of a graceful deletion ----

  /** A pod marked for deletion stops after podTerminationMs (never more than its grace period). */
  private terminationTimer(pod: KubeObject): void {
    const grace = Number(pod.metadata.deletionGracePeriodSeconds ?? 0);
    const ref = { namespace: pod.metadata.namespace ?? '', name: pod.metadata.name ?? '', uid: pod.metadata.uid ?? '' };
    this.timer(`terminate:${ref.uid}`, Math.min(this.opts.podTerminationMs, grace * 1000), () => {
      const now = this.pods!.get(ref.namespace, ref.name);
      if (!now || now.metadata.uid !== ref.uid) return;
      const owner = controllerRef(now);
      const vmi = owner && this.vmis!.get(ref.namespace, owner.name);
      // Through the VMI's queue when it has one, so that its writes never race its passes.
      if (vmi && vmi.metadata.uid === owner?.uid) this.markDue(`vmi ${ref.namespace}/${owner.name}`, `terminate ${ref.namespace}/${ref.name}`);
      else this.enqueue(`pod ${ref.namespace}/${ref.name}`);
    });
  }

  private async syncPod(_key: string, namespace: string, name: string): Promise<void> {
    const pod = this.pods!.get(namespace, name);
    if (pod?.metadata.deletionTimestamp && !this.timers.has(`terminate:${pod.metadata.uid ?? ''}`)) await this.terminate(pod);
  }

  /**
   * lifecycle.ts terminateStep: for a VMI being deleted while Running, virt-handler reports the guest's
   * shutdown (Succeeded); then the pod goes (DELETE with gracePeriodSeconds=0, as the kubelet ends it).
   */
  private async terminate(pod: KubeObject): Promise<void> {
    const owner = controllerRef(pod);
    const vmi = owner && this.vmis!.get(pod.metadata.namespace, owner.name);
    if (vmi && vmi.metadata.uid === owner?.uid && vmi.metadata.deletionTimestamp && vmi.status?.phase === 'Running') {
      const next = clone(vmi);
      next.status = { ...(next.status ?? {}) };
      setPhase(next, 'Succeeded');
      await this.putVmi(next);
    }
    await this.deletePod(pod, 0);
  }
}
