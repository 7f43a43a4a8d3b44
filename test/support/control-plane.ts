/**
 * A real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager of the
 * release built by test/control-plane/build.sh, on loopback ports of this machine, with KubeVirt's
 * VirtualMachineInstance CRD (its real schema, generated from KubeVirt's Go code) installed.
 *
 * - Everything lives in a fresh temp folder: certificates (made with the `openssl` program), etcd's
 *   data, kubeconfigs and one log file per component (`etcd.log`, `kube-apiserver.log`, …), whose tail
 *   is put into the errors this module throws.
 * - Authentication is by client certificates from a throwaway CA; the admin user is in `system:masters`.
 *   Authorization is RBAC. No nodes, no scheduler, no kubelet: pods are stored but never run.
 * - The aggregation layer is set up as kubeadm does it: a front-proxy CA of its own, the API server's
 *   front-proxy client certificate (CN `front-proxy-client`) and the `--requestheader-*` flags, which the
 *   API server publishes in kube-system/extension-apiserver-authentication. With `virtApiTls` (a serving
 *   certificate for `virt-api.kubevirt.svc`) an aggregated API server can be registered by an APIService:
 *   test/support/virt-api.ts does so for KubeVirt's subresources.
 * - kube-controller-manager runs the namespace, garbage-collector and service-account controllers, so a
 *   deleted namespace really goes away and objects with deleted owners are collected.
 * - The API server's watch cache is off by default, so watches are served by etcd itself and `compact()`
 *   makes a watch from an older resourceVersion fail with a real 410 (Expired) at once.
 * - `stop()` ends every process and removes the folder. A process exit without `stop()` kills them too,
 *   and a watchdog process does so if this process dies without running exit handlers (SIGKILL, …).
 *
 * Built to be called from a vitest globalSetup as well as from a test file: hand `kubeconfigPath` (a
 * self-contained file) to the workers, e.g. through `project.provide` or an environment variable.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/control-plane/build.sh, from this file's folder. */
export const BUILD_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../control-plane/build.sh');

/** The programs build.sh provides (or KUBEBUILDER_ASSETS must hold). */
const PROGRAMS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const;

export interface KubectlResult {
  stdout: string;
  stderr: string;
  /** Exit code (non-zero is not thrown: the caller decides). */
  code: number;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface ControlPlane {
  /** Admin kubeconfig (client certificate of group system:masters, certificates inline). */
  readonly kubeconfigPath: string;
  /** `https://127.0.0.1:PORT` */
  readonly server: string;
  /** Folder of etcd, kube-apiserver, kube-controller-manager and kubectl. */
  readonly binDir: string;
  /** The temp folder: certificates, etcd data, kubeconfigs, `<component>.log`. */
  readonly dir: string;
  /** `http://127.0.0.1:PORT` of etcd (plain HTTP, loopback only). */
  readonly etcdUrl: string;
  /** PEM of the cluster CA and of the admin client certificate and key, for HTTPS clients. */
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  /** PEM serving certificate and key of `virt-api.kubevirt.svc`, signed by the cluster CA (`tls.ca`). */
  readonly virtApiTls: { readonly cert: string; readonly key: string };
  /** Runs the built kubectl as admin against this control plane. `input` goes to its standard input. */
  kubectl(args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<KubectlResult>;
  /** One HTTPS request to the API server as admin; a JSON `body` is sent as application/json unless told. */
  request(
    method: string,
    path: string,
    options?: { body?: unknown; contentType?: string; timeoutMs?: number },
  ): Promise<ApiResponse>;
  /** Stops kube-apiserver (SIGTERM) and starts it again on the same port; resolves when /readyz is ok. */
  restartApiServer(): Promise<void>;
  /** Compacts etcd at its current revision (physically); returns that revision. */
  compact(): Promise<number>;
  /** Stops every process and removes the folder. Idempotent. */
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /**
   * Folder holding the programs; default: what build.sh prints (which honours KUBEBUILDER_ASSETS and
   * otherwise builds into, or reuses, its cache).
   */
  binDir?: string;
  /** KubeVirt VMI CRD file; default: env KUBEVIRT_VMI_CRD, else `kubevirt-vmi-crd.json` in binDir. */
  kubevirtCrd?: string;
  /** Keep the API server's watch cache on (off by default, see the module comment). */
  watchCache?: boolean;
  /** Where build progress and start-up lines go; default standard error. */
  log?: (line: string) => void;
  /** Limit for build.sh (default 60 min: the first build compiles Kubernetes). */
  buildTimeoutMs?: number;
  /** Limit for each component to become ready (default 120 s). */
  startTimeoutMs?: number;
}

/** Runs build.sh and returns the folder it prints last (the programs and the generated CRDs). */
export async function buildControlPlane(
  options: Pick<ControlPlaneOptions, 'log' | 'buildTimeoutMs'> = {},
): Promise<string> {
  const log = options.log ?? defaultLog;
  const timeoutMs = options.buildTimeoutMs ?? 60 * 60_000;
  const { code, stdout, stderr, timedOut } = await runProcess('bash', [BUILD_SCRIPT], {
    timeoutMs,
    onStderrLine: log,
  });
  const lines = stdout.trim().split('\n');
  const folder = lines[lines.length - 1]?.trim() ?? '';
  if (code !== 0 || !folder) {
    throw new Error(
      `${BUILD_SCRIPT} ${timedOut ? `timed out after ${timeoutMs} ms` : `failed (exit ${code})`}:\n${tail(stderr)}`,
    );
  }
  for (const program of PROGRAMS) {
    if (!existsSync(join(folder, program))) throw new Error(`${BUILD_SCRIPT} printed ${folder}, which has no ${program}`);
  }
  return folder;
}

/** Builds (or finds) the programs, then starts a control plane as the module comment describes. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = options.log ?? defaultLog;
  const binDir = options.binDir ?? (await buildControlPlane(options));
  const crdFile = options.kubevirtCrd ?? process.env.KUBEVIRT_VMI_CRD ?? join(binDir, 'kubevirt-vmi-crd.json');
  if (!existsSync(crdFile)) {
    throw new Error(
      `KubeVirt's VirtualMachineInstance CRD is not at ${crdFile}: run ${BUILD_SCRIPT} without KUBEBUILDER_ASSETS ` +
        'to generate it, and copy kubevirt-vmi-crd.json from the folder it prints, or set KUBEVIRT_VMI_CRD',
    );
  }
  const openssl = findOpenssl();
  const dir = await mkdtemp(join(tmpdir(), 'lo-control-plane-'));
  const plane = new Plane(binDir, dir, options.startTimeoutMs ?? 120_000, options.watchCache ?? false, log);
  try {
    const started = Date.now();
    await plane.writeCertificates(openssl);
    await plane.startEtcd();
    await plane.startApiServer();
    await plane.startControllerManager();
    await plane.installCrd(crdFile);
    log(`[control-plane] ${plane.server} ready in ${Date.now() - started} ms (folder ${dir})`);
    return plane.handle();
  } catch (error) {
    await plane.stop();
    throw error;
  }
}

const defaultLog = (line: string) => process.stderr.write(`${line}\n`);

class Plane {
  server = '';
  etcdUrl = '';
  tls = { ca: '', cert: '', key: '' };
  virtApiTls = { cert: '', key: '' };
  private readonly children = new Map<string, ChildProcess>();
  private apiServerArgs: string[] = [];
  private watchdog: ChildProcess | undefined;
  private stopped: Promise<void> | undefined;
  private readonly kubeconfigPath: string;
  private readonly onExit = () => this.killAllSync();

  constructor(
    readonly binDir: string,
    readonly dir: string,
    private readonly startTimeoutMs: number,
    private readonly watchCache: boolean,
    private readonly log: (line: string) => void,
  ) {
    this.kubeconfigPath = join(dir, 'admin.kubeconfig');
    process.once('exit', this.onExit);
    this.startWatchdog();
  }

  handle(): ControlPlane {
    return {
      kubeconfigPath: this.kubeconfigPath,
      server: this.server,
      binDir: this.binDir,
      dir: this.dir,
      etcdUrl: this.etcdUrl,
      tls: this.tls,
      virtApiTls: this.virtApiTls,
      kubectl: (args, options) => this.kubectl(args, options),
      request: (method, path, options) => this.request(method, path, options),
      restartApiServer: () => this.restartApiServer(),
      compact: () => this.compact(),
      stop: () => this.stop(),
    };
  }

  // ---- certificates and kubeconfigs ----

  async writeCertificates(openssl: string) {
    const pki = join(this.dir, 'pki');
    await mkdir(pki);
    const run = async (args: string[]) => {
      const result = await runProcess(openssl, args, { cwd: pki, timeoutMs: 60_000 });
      if (result.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (exit ${result.code}):\n${tail(result.stderr)}`);
    };
    const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    const makeCa = (name: string, cn: string) =>
      run([
        'req', '-x509', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '7',
        '-subj', `/CN=${cn}-${randomBytes(4).toString('hex')}`,
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      ]);
    const issue = async (name: string, subject: string, extensions: string[], ca = 'ca') => {
      await run(['req', '-new', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
      await writeFile(join(pki, `${name}.ext`), [...extensions, 'basicConstraints=critical,CA:FALSE', ''].join('\n'));
      await run([
        'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
        '-out', `${name}.crt`, '-days', '7', '-extfile', `${name}.ext`,
      ]);
    };
    const server = ['keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth'];
    const client = ['keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth'];
    // Three independent chains at once (each CA has its own serial file).
    await Promise.all([
      (async () => {
        await makeCa('ca', 'lab-orchestrator-test-ca');
        await issue('apiserver', '/CN=kube-apiserver', [
          ...server,
          // 10.0.0.1: the `kubernetes` Service's address in --service-cluster-ip-range.
          'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,' +
            'DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
        ]);
        await issue('admin', '/O=system:masters/CN=lab-orchestrator-test-admin', client);
        await issue('controller-manager', '/CN=system:kube-controller-manager', client);
        // The aggregator verifies an APIService's server as <service>.<namespace>.svc (kube-aggregator
        // pkg/controllers/status/remote BuildTransportConfig), against the APIService's caBundle.
        await issue('virt-api', '/CN=virt-api.kubevirt.svc', [...server, 'subjectAltName=DNS:virt-api.kubevirt.svc']);
      })(),
      (async () => {
        // kubeadm's names: front-proxy-ca signs the API server's client certificate for aggregated servers.
        await makeCa('front-proxy-ca', 'lab-orchestrator-test-front-proxy-ca');
        await issue('front-proxy-client', '/CN=front-proxy-client', client, 'front-proxy-ca');
      })(),
      (async () => {
        // The service-account token signing key.
        await run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key']);
        await run(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
      })(),
    ]);
    const read = (file: string) => readFile(join(pki, file), 'utf8');
    this.tls = { ca: await read('ca.crt'), cert: await read('admin.crt'), key: await read('admin.key') };
    this.virtApiTls = { cert: await read('virt-api.crt'), key: await read('virt-api.key') };
  }

  private async writeKubeconfig(file: string, server: string, user: string) {
    const b64 = async (name: string) => (await readFile(join(this.dir, 'pki', name))).toString('base64');
    await writeFile(
      file,
      JSON.stringify(
        {
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': await b64('ca.crt') } }],
          users: [
            {
              name: user,
              user: {
                'client-certificate-data': await b64(`${user}.crt`),
                'client-key-data': await b64(`${user}.key`),
              },
            },
          ],
          contexts: [{ name: 'test', context: { cluster: 'test', user } }],
          'current-context': 'test',
        },
        null,
        2,
      ),
      { mode: 0o600 },
    );
  }

  // ---- components ----

  async startEtcd() {
    await this.withPorts(2, 'etcd', async ([clientPort, peerPort]) => {
      this.etcdUrl = `http://127.0.0.1:${clientPort}`;
      const peerUrl = `http://127.0.0.1:${peerPort}`;
      const child = this.spawnComponent('etcd', [
        '--name=test',
        `--data-dir=${join(this.dir, 'etcd')}`,
        `--listen-client-urls=${this.etcdUrl}`,
        `--advertise-client-urls=${this.etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
        '--initial-cluster-state=new',
        // Throwaway data: no fsync. The API server compacts on its own schedule; nothing else does.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ]);
      await this.waitFor('etcd', child, async () => {
        const response = await plainHttp('GET', `${this.etcdUrl}/health`);
        return response.status === 200 && /"health":\s*"true"/.test(response.body);
      });
    });
  }

  async startApiServer() {
    await this.withPorts(1, 'kube-apiserver', async ([port]) => {
      this.server = `https://127.0.0.1:${port}`;
      const pki = (file: string) => join(this.dir, 'pki', file);
      this.apiServerArgs = [
        `--etcd-servers=${this.etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${join(this.dir, 'apiserver-certs')}`,
        `--tls-cert-file=${pki('apiserver.crt')}`,
        `--tls-private-key-file=${pki('apiserver.key')}`,
        `--client-ca-file=${pki('ca.crt')}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki('sa.pub')}`,
        `--service-account-signing-key-file=${pki('sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        // The `kubernetes` Service's endpoints may not be a loopback address: leave them out.
        '--endpoint-reconciler-type=none',
        // On SIGTERM, end open watches within this time instead of waiting for them (restartApiServer).
        '--shutdown-watch-termination-grace-period=2s',
        `--watch-cache=${this.watchCache}`,
        // The aggregation layer (kubeadm's flags). Aggregator routing stays off: the default resolver
        // (ResolveCluster, k8s.io/apiserver pkg/util/proxy) dials an ExternalName Service's name, which is
        // how test/support/virt-api.ts reaches a server on loopback (an EndpointSlice may not hold
        // 127.0.0.1, and no kube-proxy serves a ClusterIP).
        `--requestheader-client-ca-file=${pki('front-proxy-ca.crt')}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${pki('front-proxy-client.crt')}`,
        `--proxy-client-key-file=${pki('front-proxy-client.key')}`,
        '--profiling=false',
      ];
      await this.writeKubeconfig(this.kubeconfigPath, this.server, 'admin');
      await this.runApiServer();
    });
  }

  private async runApiServer() {
    const child = this.spawnComponent('kube-apiserver', this.apiServerArgs);
    await this.waitFor('kube-apiserver', child, async () => (await this.request('GET', '/readyz', { timeoutMs: 5000 })).status === 200);
  }

  async startControllerManager() {
    const kubeconfig = join(this.dir, 'controller-manager.kubeconfig');
    await this.writeKubeconfig(kubeconfig, this.server, 'controller-manager');
    const pki = (file: string) => join(this.dir, 'pki', file);
    const child = this.spawnComponent('kube-controller-manager', [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,' +
        'serviceaccount-token-controller,root-ca-certificate-publisher-controller',
      `--service-account-private-key-file=${pki('sa.key')}`,
      `--root-ca-file=${pki('ca.crt')}`,
      // Each controller as its own service account with its bootstrap RBAC role, as kubeadm sets it up
      // (system:kube-controller-manager itself may do little more than that).
      '--use-service-account-credentials=true',
      '--leader-elect=false',
      // No HTTPS endpoint of its own (its health is seen through what its controllers do).
      '--secure-port=0',
      '--profiling=false',
    ]);
    // The serviceaccount controller makes `default` in every namespace: proof that it runs and syncs.
    await this.waitFor(
      'kube-controller-manager',
      child,
      async () => (await this.request('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
    );
  }

  async installCrd(file: string) {
    const created = await this.kubectl(['create', '-f', file]);
    if (created.code !== 0) throw new Error(`kubectl create -f ${file} failed (exit ${created.code}): ${created.stderr}`);
    const name = created.stdout.match(/customresourcedefinition\.apiextensions\.k8s\.io\/(\S+)/)?.[1];
    if (!name) throw new Error(`kubectl create -f ${file} printed no CRD name: ${created.stdout}`);
    // (Polled here: `kubectl wait` fails at once while the new CRD has no conditions yet.)
    const deadline = Date.now() + 60_000;
    for (;; await sleep(200)) {
      const response = await this.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const last = response.body;
      if (response.status === 200) {
        const crd = JSON.parse(response.body) as { status?: { conditions?: { type: string; status: string }[] } };
        if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
      }
      if (Date.now() > deadline) throw new Error(`CRD ${name} did not become Established within 60 s: ${tail(last, 2000)}`);
    }
  }

  private spawnComponent(name: string, args: string[]): ChildProcess {
    const logFile = join(this.dir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      writeFileSync(fd, `\n==> ${new Date().toISOString()} ${name} ${args.join(' ')}\n`);
      // Own process group (detached), so that it and anything it starts are killed together.
      child = spawn(join(this.binDir, name), args, { cwd: this.dir, detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    child.on('error', () => {}); // reported through waitFor (exit/spawn failure)
    this.children.set(name, child);
    child.once('exit', () => {
      if (this.children.get(name) === child) this.children.delete(name);
      this.writePids();
    });
    this.writePids();
    return child;
  }

  /** Calls `ready` until it returns true; fails early with the log tail if the process exits. */
  private async waitFor(name: string, child: ChildProcess, ready: () => Promise<boolean>) {
    const deadline = Date.now() + this.startTimeoutMs;
    let lastError = '';
    let spawnError: Error | undefined;
    child.once('error', (error) => (spawnError = error));
    for (;;) {
      if (spawnError) throw new Error(`${name} could not be started: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new ComponentError(
          `${name} exited (${child.exitCode ?? child.signalCode}) before it was ready`,
          await this.logTail(name),
        );
      }
      try {
        if (await ready()) return;
      } catch (error) {
        lastError = (error as Error).message;
      }
      if (Date.now() > deadline) {
        throw new ComponentError(
          `${name} was not ready within ${this.startTimeoutMs} ms${lastError ? ` (last: ${lastError})` : ''}`,
          await this.logTail(name),
        );
      }
      await sleep(250);
    }
  }

  /** Picks free ports and runs `start`; tries again with other ports if one was taken meanwhile. */
  private async withPorts(count: number, name: string, start: (ports: number[]) => Promise<void>) {
    for (let attempt = 1; ; attempt++) {
      const ports = await freePorts(count);
      try {
        await start(ports);
        return;
      } catch (error) {
        const taken = error instanceof ComponentError && /address already in use/i.test(error.logTail);
        if (!taken || attempt >= 3) throw error;
        this.log(`[control-plane] ${name}: port taken, trying others`);
        await this.killComponent(name);
      }
    }
  }

  private async logTail(name: string) {
    return tail(await readFile(join(this.dir, `${name}.log`), 'utf8').catch(() => ''));
  }

  // ---- operations ----

  kubectl(args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<KubectlResult> {
    return runProcess(
      join(this.binDir, 'kubectl'),
      ['--kubeconfig', this.kubeconfigPath, '--cache-dir', join(this.dir, 'kubectl-cache'), ...args],
      { input: options.input, timeoutMs: options.timeoutMs ?? 120_000 },
    );
  }

  request(
    method: string,
    path: string,
    options: { body?: unknown; contentType?: string; timeoutMs?: number } = {},
  ): Promise<ApiResponse> {
    const body =
      options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    return new Promise((resolvePromise, reject) => {
      const req = httpsRequest(
        new URL(path, this.server),
        {
          method,
          ca: this.tls.ca,
          cert: this.tls.cert,
          key: this.tls.key,
          timeout: options.timeoutMs ?? 30_000,
          headers: {
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${options.timeoutMs ?? 30_000} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  async restartApiServer() {
    if (this.stopped) throw new Error('the control plane is stopped');
    await this.killComponent('kube-apiserver');
    await this.runApiServer();
  }

  async compact(): Promise<number> {
    // etcd's JSON gateway (gRPC-gateway) on the client URL: any read tells the current revision.
    const range = await plainHttp('POST', `${this.etcdUrl}/v3/kv/range`, JSON.stringify({ key: Buffer.from('/').toString('base64') }));
    const revision = Number((JSON.parse(range.body) as { header?: { revision?: string } }).header?.revision);
    if (range.status !== 200 || !Number.isInteger(revision) || revision < 1) {
      throw new Error(`etcd range failed (${range.status}): ${range.body}`);
    }
    const compaction = await plainHttp(
      'POST',
      `${this.etcdUrl}/v3/kv/compaction`,
      JSON.stringify({ revision: String(revision), physical: true }),
    );
    if (compaction.status !== 200 && !/already been compacted/.test(compaction.body)) {
      throw new Error(`etcd compaction at ${revision} failed (${compaction.status}): ${compaction.body}`);
    }
    return revision;
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      process.removeListener('exit', this.onExit);
      for (const name of ['kube-controller-manager', 'kube-apiserver', 'etcd']) await this.killComponent(name);
      if (this.watchdog?.pid) killGroup(this.watchdog.pid, 'SIGKILL');
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.stopped;
  }

  /** SIGTERM to the component's process group, SIGKILL after 10 s; resolves once it has exited. */
  private async killComponent(name: string) {
    const child = this.children.get(name);
    if (!child?.pid) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      this.children.delete(name);
      return;
    }
    const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
    killGroup(child.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    killGroup(child.pid, 'SIGKILL'); // anything left in its group
  }

  /** For process 'exit': no awaiting there, so kill at once and remove the folder synchronously. */
  private killAllSync() {
    for (const child of this.children.values()) if (child.pid) killGroup(child.pid, 'SIGKILL');
    if (this.watchdog?.pid) killGroup(this.watchdog.pid, 'SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The watchdog reads the process groups to kill from this file. */
  private writePids() {
    const pids = [...this.children.values()].map((child) => child.pid).filter(Boolean);
    try {
      writeFileSync(join(this.dir, 'pgids'), pids.join('\n') + '\n');
    } catch {
      // the folder is being removed
    }
  }

  /**
   * A detached bash (dash's kill takes no process groups) that outlives this process: once this
   * process is gone (even by SIGKILL, when no exit handler runs) and the folder is still there, it
   * kills the components' process groups and removes the folder. It ends by itself when the folder
   * goes away (stop()).
   */
  private startWatchdog() {
    const script = [
      'parent=$1 dir=$2',
      'while [ -d "$dir" ] && kill -0 "$parent" 2>/dev/null; do sleep 1; done',
      '[ -d "$dir" ] || exit 0',
      'for g in $(cat "$dir/pgids" 2>/dev/null); do kill -TERM -- "-$g" 2>/dev/null; done',
      'sleep 5',
      'for g in $(cat "$dir/pgids" 2>/dev/null); do kill -KILL -- "-$g" 2>/dev/null; done',
      'rm -rf "$dir"',
    ].join('\n');
    this.watchdog = spawn('bash', ['-c', script, 'lo-control-plane-watchdog', String(process.pid), this.dir], {
      detached: true,
      stdio: 'ignore',
    });
    this.watchdog.on('error', () => {});
    this.watchdog.unref();
  }
}

/** An error from a component, with the tail of its log. */
class ComponentError extends Error {
  constructor(
    message: string,
    readonly logTail: string,
  ) {
    super(`${message}\n--- log tail ---\n${logTail}`);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function findOpenssl(): string {
  const found = spawnSync('openssl', ['version'], { stdio: 'ignore' });
  if (found.error || found.status !== 0) {
    throw new Error('The control plane needs the openssl program to make its certificates (Debian: apt-get install openssl)');
  }
  return 'openssl';
}

function tail(text: string, chars = 4000): string {
  return text.length > chars ? `…${text.slice(-chars)}` : text;
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs a program to its end; never throws for a non-zero exit. */
function runProcess(
  file: string,
  args: string[],
  options: { cwd?: string; input?: string; timeoutMs: number; onStderrLine?: (line: string) => void },
): Promise<KubectlResult & { timedOut: boolean }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (!options.onStderrLine) return;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) options.onStderrLine(line);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`Cannot run ${file}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (pending && options.onStderrLine) options.onStderrLine(pending);
      resolvePromise({ stdout, stderr, code: code ?? (signal ? 128 : 1), timedOut });
    });
    child.stdin.on('error', () => {}); // the program may not read its input
    child.stdin.end(options.input ?? '');
  });
}

/** A plain-HTTP request (etcd on loopback). */
function plainHttp(method: string, url: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(url, { method, timeout: 5000, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 5000 ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** `count` ports that were free on 127.0.0.1 a moment ago (held together so they differ). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolveServer, reject) => {
          const server = createServer();
          server.unref();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolveServer(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    return typeof address === 'object' && address ? address.port : 0;
  });
  await Promise.all(servers.map((server) => new Promise((r) => server.close(r))));
  if (ports.some((port) => !port)) throw new Error('Could not pick free ports');
  return ports;
}
