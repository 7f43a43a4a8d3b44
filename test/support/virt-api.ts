/**
 * KubeVirt's virt-api on a real control plane (test/support/control-plane.ts), as far as the VNC
 * console needs it: an aggregated API server for `subresources.kubevirt.io/v1`, registered and reached
 * the way a KubeVirt cluster does it, with the simulated cluster's VNC subresource (src/simulated/vnc.ts,
 * an RFB 3.8 server drawing a test pattern) behind it.
 *
 * - Registration: the APIService `v1.subresources.kubevirt.io` for the Service `kubevirt/virt-api`,
 *   group priority 1000, version priority 15, caBundle the CA of virt-api's certificate (kubevirt
 *   pkg/virt-operator/resource/generate/components/apiservices.go). Here the Service is of type
 *   ExternalName, naming 127.0.0.1, and the APIService's port is this server's: kube-apiserver's default
 *   resolver (ResolveCluster, k8s.io/apiserver pkg/util/proxy/proxy.go) dials an ExternalName Service's
 *   name at the APIService's port, whereas an EndpointSlice may not hold a loopback address
 *   (ValidateEndpointIP) and a ClusterIP needs kube-proxy. The availability controller then GETs
 *   `/apis/subresources.kubevirt.io/v1` here (kube-aggregator pkg/controllers/status/remote) and marks
 *   the APIService Available; until then kube-apiserver answers 503.
 * - kube-apiserver authenticates and authorizes each request first (RBAC: get on
 *   virtualmachineinstances/vnc in subresources.kubevirt.io), then proxies it, WebSocket upgrade
 *   included, with its front-proxy client certificate and the user in X-Remote-User, X-Remote-Group and
 *   X-Remote-Extra-* (kube-aggregator pkg/apiserver/handler_proxy.go), checking this server's certificate
 *   for `virt-api.kubevirt.svc` against the caBundle. An answer of 400 and above to an upgrade is passed
 *   back as it is (k8s.io/apimachinery pkg/util/proxy/upgradeaware.go).
 * - Like virt-api (kubevirt pkg/virt-api/api.go, pkg/util/tls/tls.go): the requestheader CA, allowed
 *   names and header names come from kube-system/extension-apiserver-authentication; a client
 *   certificate is asked for but optional, one that does not verify or whose CN is not allowed ends the
 *   connection. Discovery paths are open to all (pkg/virt-api/rest/authorizer.go `noAuthEndpoints`);
 *   anything else needs the front proxy's certificate, then a SubjectAccessReview of the X-Remote user
 *   must allow it; a refusal is 401 with the reason as text.
 * - The VNC handler reads the VMI from the API server (as virt-api does on each request) into a store of
 *   its own, where src/simulated/vnc.ts finds it: 404 when it is missing, 400 `VMI is not running`, else
 *   the upgrade.
 *
 * For tests, `inspectUrl` (plain HTTP, loopback) answers `GET /vnc/<namespace>/<vm>` with the key and
 * pointer events the guest received and its open connections (see `vncConsoleOf`).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Faults } from '../../src/simulated/faults.js';
import { resourceByPlural, type KubeObject } from '../../src/simulated/resources.js';
import { ObjectStore } from '../../src/simulated/store.js';
import { SimulatedVnc, type VncInputEvent } from '../../src/simulated/vnc.js';
import { WatchHub } from '../../src/simulated/watch-hub.js';
import type { ControlPlane } from './control-plane.js';
import { KubeApi } from './kubevirt-controller.js';

const GROUP = 'subresources.kubevirt.io';
const VERSION = 'v1';
const API_SERVICE = `${VERSION}.${GROUP}`;
const API_SERVICE_PATH = `/apis/apiregistration.k8s.io/v1/apiservices/${API_SERVICE}`;
const NAMESPACE = 'kubevirt';
const SERVICE = 'virt-api';
const VNC_PATH = /^\/apis\/subresources\.kubevirt\.io\/v1\/namespaces\/([^/]+)\/virtualmachineinstances\/([^/]+)\/vnc$/;
const VMIS = resourceByPlural('virtualmachineinstances');
const APPLY = { contentType: 'application/apply-patch+yaml' };

const groupVersion = (version: string) => ({ groupVersion: `${GROUP}/${version}`, version });
/** What virt-api answers on its open paths (kubevirt pkg/virt-api/api.go), the group's name misspelt as there. */
const APIGROUP = {
  kind: 'APIGroup',
  name: 'subresource.kubevirt.io',
  versions: [groupVersion('v1'), groupVersion('v1alpha3')],
  preferredVersion: groupVersion('v1'),
  serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }],
};
const DISCOVERY: Record<string, unknown> = {
  '/apis': { kind: 'APIGroupList', groups: [APIGROUP] },
  [`/apis/${GROUP}`]: APIGROUP,
  // Only the subresource served here (virt-api lists all of its own, each without verbs).
  [`/apis/${GROUP}/v1`]: {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: `${GROUP}/v1`,
    resources: [{ name: 'virtualmachineinstances/vnc', singularName: '', namespaced: true, kind: '', verbs: null }],
  },
  // The aggregator's OpenAPI controllers fetch this (and convert it for /openapi/v3, which virt-api leaves 404).
  '/openapi/v2': { swagger: '2.0', info: { title: 'KubeVirt API', version: 'stand-in' }, paths: {} },
};

export interface VncConsole {
  input: VncInputEvent[];
  connections: number;
}

export interface VirtApiStandIn {
  /** `https://127.0.0.1:PORT`, the address the APIService names. */
  readonly url: string;
  /** `http://127.0.0.1:PORT` of the inspection listener (see the module comment). */
  readonly inspectUrl: string;
  /** Deletes the APIService, then ends every console and closes both listeners. */
  stop(): Promise<void>;
}

/** What kube-apiserver publishes for aggregated servers (its --requestheader-* flags). */
interface RequestHeader {
  ca: string;
  allowedNames: string[];
  userHeaders: string[];
  groupHeaders: string[];
  extraPrefixes: string[];
}

/**
 * Starts the stand-in on loopback, registers it as the module comment describes, and resolves once a
 * request through kube-apiserver reaches it (the APIService is Available and the proxy knows it).
 */
export async function startVirtApi(plane: ControlPlane, options: { timeoutMs?: number } = {}): Promise<VirtApiStandIn> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const api = KubeApi.fromKubeconfig(plane.kubeconfigPath);
  const standIn = new StandIn(api, await readRequestHeader(api, deadline), plane.virtApiTls);
  try {
    const port = await standIn.listen();
    await standIn.register(port, plane.tls.ca);
    await standIn.available(deadline);
    return { url: `https://127.0.0.1:${port}`, inspectUrl: standIn.inspectUrl, stop: () => standIn.stop() };
  } catch (error) {
    await standIn.stop();
    throw error;
  }
}

/** The guest's received input and open connections, from the inspection listener of a stand-in. */
export async function vncConsoleOf(inspectUrl: string, namespace: string, vm: string): Promise<VncConsole> {
  const response = await fetch(`${inspectUrl}/vnc/${encodeURIComponent(namespace)}/${encodeURIComponent(vm)}`);
  if (!response.ok) throw new Error(`${inspectUrl}: HTTP ${response.status}`);
  return (await response.json()) as VncConsole;
}

async function readRequestHeader(api: KubeApi, deadline: number): Promise<RequestHeader> {
  const path = '/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication';
  // Written by kube-apiserver's cluster-authentication-trust controller just after it starts.
  for (;; await sleep(100)) {
    const answer = await api.request('GET', path);
    const data = answer.body?.data as Record<string, string> | undefined;
    if (answer.status === 200 && data?.['requestheader-client-ca-file']) {
      const list = (key: string) => JSON.parse(data[key] ?? '[]') as string[];
      return {
        ca: data['requestheader-client-ca-file'],
        allowedNames: list('requestheader-allowed-names'),
        userHeaders: list('requestheader-username-headers'),
        groupHeaders: list('requestheader-group-headers'),
        extraPrefixes: list('requestheader-extra-headers-prefix'),
      };
    }
    if (Date.now() > deadline) throw new Error(`${path} holds no requestheader-client-ca-file (${answer.status}): ${answer.text.slice(0, 300)}`);
  }
}

class StandIn {
  readonly store = new ObjectStore();
  readonly vnc = new SimulatedVnc(this.store, new Faults(this.store, new WatchHub(this.store, 60_000)));
  inspectUrl = '';
  private readonly https: Server;
  private readonly inspect: Server;
  private registered = false;

  constructor(
    private readonly api: KubeApi,
    private readonly header: RequestHeader,
    tls: { cert: string; key: string },
  ) {
    // VerifyClientCertIfGiven: a certificate is asked for, not required (the availability check sends one,
    // other clients may not); one that is given must verify against the requestheader CA.
    this.https = createHttpsServer({ ...tls, ca: header.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => this.serve(req, res));
    this.https.on('secureConnection', (socket: TLSSocket) => {
      const cert = socket.getPeerCertificate();
      const given = Boolean(cert && Object.keys(cert).length);
      const cn = given ? String(cert.subject?.CN ?? '') : '';
      if (given && (!socket.authorized || (header.allowedNames.length > 0 && !header.allowedNames.includes(cn)))) socket.destroy();
    });
    this.https.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => undefined);
      this.upgrade(req, socket, head).catch((error: Error) => writeRaw(socket, 500, 'text/plain', `internal error: ${error.message}`));
    });
    this.inspect = createHttpServer((req, res) => this.inspection(req, res));
  }

  async listen(): Promise<number> {
    const port = await listenOn(this.https);
    this.inspectUrl = `http://127.0.0.1:${await listenOn(this.inspect)}`;
    return port;
  }

  /** Namespace, ExternalName Service and APIService, by server-side apply (a second start re-points them). */
  async register(port: number, caPem: string): Promise<void> {
    const labels = { 'kubevirt.io': 'virt-api-aggregator', 'app.kubernetes.io/managed-by': 'lab-orchestrator-tests' };
    const apply = (path: string, body: unknown) => this.api.call('PATCH', `${path}?fieldManager=virt-api-stand-in&force=true`, body, APPLY);
    await apply(`/api/v1/namespaces/${NAMESPACE}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
    await apply(`/api/v1/namespaces/${NAMESPACE}/services/${SERVICE}`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: SERVICE, namespace: NAMESPACE, labels },
      spec: { type: 'ExternalName', externalName: '127.0.0.1' },
    });
    this.registered = true;
    await apply(API_SERVICE_PATH, {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: API_SERVICE, labels },
      spec: {
        service: { namespace: NAMESPACE, name: SERVICE, port },
        group: GROUP,
        version: VERSION,
        caBundle: Buffer.from(caPem).toString('base64'),
        groupPriorityMinimum: 1000,
        versionPriority: 15,
      },
    });
  }

  /** Polls the group's discovery through kube-apiserver: 503 until the APIService is Available. */
  async available(deadline: number): Promise<void> {
    for (;; await sleep(100)) {
      const answer = await this.api.request('GET', `/apis/${GROUP}/${VERSION}`);
      if (answer.status === 200 && answer.body?.groupVersion === `${GROUP}/${VERSION}`) return;
      if (Date.now() > deadline) {
        const status = await this.api.request('GET', API_SERVICE_PATH);
        throw new Error(`APIService ${API_SERVICE} did not become Available: ${JSON.stringify(status.body?.status ?? status.text)}`);
      }
    }
  }

  async stop(): Promise<void> {
    // First: an APIService whose server is gone fails discovery, which holds namespace deletions.
    if (this.registered) await this.api.request('DELETE', API_SERVICE_PATH, undefined, { timeoutMs: 5000 }).catch(() => undefined);
    this.vnc.stop();
    for (const server of [this.https, this.inspect]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    this.api.close();
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'https://virt-api').pathname;
    if (path in DISCOVERY) return writeJson(res, 200, DISCOVERY[path]);
    if (!hasClientCertificate(req)) return writeText(res, 401, 'request is not authenticated');
    // The VNC route without an upgrade: gorilla/websocket's refusal, after the VMI checks.
    if (VNC_PATH.test(path)) return writeText(res, 400, "websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header");
    writeText(res, 404, '404 page not found');
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const match = VNC_PATH.exec(new URL(req.url ?? '/', 'https://virt-api').pathname);
    if (!match) return writeRaw(socket, 404, 'text/plain', '404 page not found');
    if (!hasClientCertificate(req)) return writeRaw(socket, 401, 'text/plain', 'request is not authenticated');
    const [namespace, name] = [decodeURIComponent(match[1]), decodeURIComponent(match[2])];
    const refusal = await this.authorize(req, namespace, name);
    if (refusal !== undefined) return writeRaw(socket, 401, 'text/plain', refusal);
    const vmi = await this.api.request('GET', `/apis/kubevirt.io/v1/namespaces/${match[1]}/virtualmachineinstances/${match[2]}`);
    if (vmi.status === 404) this.store.remove(VMIS, namespace, name);
    else if (vmi.status === 200) this.mirror(namespace, name, vmi.body as KubeObject);
    else {
      const message = `unable to retrieve vmi [${name}]: ${vmi.text.slice(0, 200)}`;
      const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 };
      return writeRaw(socket, 500, 'application/json', JSON.stringify(status));
    }
    if (!socket.destroyed) this.vnc.handleUpgrade(req, socket, head);
  }

  /** virt-api's authorizer: a SubjectAccessReview of the front proxy's user; the refusal's reason, if any. */
  private async authorize(req: IncomingMessage, namespace: string, name: string): Promise<string | undefined> {
    const values = (names: string[]) => names.flatMap((n) => req.headersDistinct[n.toLowerCase()] ?? []);
    const [user] = values(this.header.userHeaders);
    const groups = values(this.header.groupHeaders);
    if (!user) return 'a valid user header is required for authorization';
    if (!groups.length) return 'a valid group header is required for authorization';
    const extra: Record<string, string[]> = {};
    for (const prefix of this.header.extraPrefixes.map((p) => p.toLowerCase())) {
      for (const [key, value] of Object.entries(req.headersDistinct)) {
        if (key.startsWith(prefix) && value) extra[safeUnescape(key.slice(prefix.length))] = value;
      }
    }
    const review = await this.api.call('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user,
        groups,
        extra,
        resourceAttributes: { namespace, verb: 'get', group: GROUP, version: VERSION, resource: 'virtualmachineinstances', subresource: 'vnc', name },
      },
    });
    return review.body?.status?.allowed === true ? undefined : String(review.body?.status?.reason ?? '');
  }

  /** The VMI as read from the API server, into the store src/simulated/vnc.ts reads (and follows). */
  private mirror(namespace: string, name: string, vmi: KubeObject): void {
    if (this.store.get(VMIS, namespace, name)) {
      this.store.update(VMIS, namespace, name, (draft) => {
        draft.spec = vmi.spec;
        draft.status = vmi.status;
      });
    } else {
      this.store.insert(VMIS, { metadata: { name, namespace }, spec: vmi.spec, status: vmi.status });
    }
  }

  private inspection(req: IncomingMessage, res: ServerResponse): void {
    const match = /^\/vnc\/([^/]+)\/([^/]+)$/.exec(new URL(req.url ?? '/', 'http://inspect').pathname);
    if (req.method !== 'GET' || !match) return writeText(res, 404, 'not found');
    const [namespace, name] = [decodeURIComponent(match[1]), decodeURIComponent(match[2])];
    writeJson(res, 200, { input: this.vnc.inputEvents(namespace, name), connections: this.vnc.connectionCount(namespace, name) } satisfies VncConsole);
  }
}

/** Verified at the TLS handshake (see the constructor), so any certificate here is the front proxy's. */
function hasClientCertificate(req: IncomingMessage): boolean {
  const cert = (req.socket as TLSSocket).getPeerCertificate?.();
  return Boolean(cert && Object.keys(cert).length);
}

function safeUnescape(key: string): string {
  try {
    return decodeURIComponent(key);
  } catch {
    return key;
  }
}

function writeJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function writeText(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
}

function writeRaw(socket: Duplex, code: number, contentType: string, body: string): void {
  if (socket.destroyed) return;
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 500: 'Internal Server Error' }[code] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${code} ${reason}\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function listenOn(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
