/**
 * The VNC console proxy against a REAL kube-apiserver (test/support/control-plane.ts), with KubeVirt's
 * VNC subresource served the way a KubeVirt cluster serves it: kube-apiserver authorizes the request
 * (RBAC, the server's service account from deploy/) and proxies it, WebSocket upgrade included, through
 * its aggregation layer to an aggregated API server registered by the APIService
 * v1.subresources.kubevirt.io (test/support/virt-api.ts: virt-api's checks of the front proxy, with the
 * simulated cluster's RFB server behind them). Both come from the global setup, with the KubeVirt
 * controller that takes the VMIs to Running (test/support/kubevirt-controller.ts).
 *
 * Skipped when TEST_CLUSTERS does not name `real`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RfbTestClient } from '../bench/support/rfb-client.js';
import { TEST_PATTERN_BARS } from '../src/simulated/index.js';
import type { Logger } from '../src/logger.js';
import { CreateImageDocument, CreateLabDocument, LabInstanceStatusDocument, StartLabDocument, StopLabInstanceDocument, type LabInstanceStatusSubscription } from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { realEnv, serviceAccountKubeconfig } from './support/global-setup.js';
import { KubeApi } from './support/kubevirt-controller.js';
import { CLUSTERS, ENGINES, startTestServer, type TestServer } from './support/server.js';
import { graphqlWsClient, subscribeGraphqlWs } from './support/subscriptions.js';
import { vncConsoleOf } from './support/virt-api.js';
import { eventually } from './support/wait.js';

type Status = LabInstanceStatusSubscription['labInstanceStatus'];
const SA_NAMESPACE = 'lab-orchestrator';


/** A logger that keeps the lines the server logs at warn and above. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = {
    lines,
    debug: () => {},
    info: () => {},
    warn: (msg: string, fields?: Record<string, unknown>) => void lines.push(`warn ${msg} ${JSON.stringify(fields ?? {})}`),
    error: (msg: string, fields?: Record<string, unknown>) => void lines.push(`error ${msg} ${JSON.stringify(fields ?? {})}`),
    child: () => logger,
  };
  return logger;
}

interface Started {
  id: string;
  namespace: string;
  token: string;
}

/** Starts the lab and follows the instance's live status until `until` holds (READY by default). */
async function startLab(server: TestServer, user: TestUser, labId: string, until = (s: Status) => s.status === 'READY'): Promise<Started> {
  const { startLab: started } = await user.client.ok(StartLabDocument, { labId });
  const client = graphqlWsClient(server.wsUrl, user.token);
  const sub = subscribeGraphqlWs(client, LabInstanceStatusDocument, { id: started.labInstance.id });
  try {
    await sub.until((events) => events.some((e) => until(e.labInstanceStatus)), 60_000);
  } finally {
    sub.close();
    await client.dispose();
  }
  return { id: started.labInstance.id, namespace: started.labInstance.namespace, token: started.vncAccess.token };
}

/** The close code and reason of a console the proxy accepts and then ends. */
async function closedWith(url: string): Promise<{ code: number; reason: string }> {
  const client = await RfbTestClient.connect(url, { handshake: false });
  return client.closed;
}

describe.skipIf(!CLUSTERS.includes('real'))('the VNC console proxy through a real kube-apiserver and its aggregated virt-api', () => {
  let admin: KubeApi;
  let inspectUrl: string;
  let dir: string;

  beforeAll(() => {
    admin = KubeApi.fromKubeconfig(inject('realClusterAdminKubeconfig'));
    inspectUrl = inject('realClusterVirtApi');
    dir = mkdtempSync(join(tmpdir(), 'lo-vnc-real-'));
  });
  afterAll(() => {
    admin?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe.each(ENGINES)('on %s', (engine) => {
    let server: TestServer;
    let owner: TestUser;
    let boss: TestUser;
    let base: string;

    beforeAll(async () => {
      server = await startTestServer(engine, realEnv(inject('realClusterKubeconfig')));
      base = server.wsUrl.replace(/\/graphql$/, '');
      [boss, owner] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
    });
    afterAll(() => server?.stop());

    it('completes the RFB handshake through kube-apiserver and virt-api, relays the framebuffer and delivers the input', { timeout: 90_000 }, async () => {
      const { lab } = await createLabWithVms(boss.client, ['gateway', 'web']);
      const s = await startLab(server, owner, lab.id);
      try {
        const client = await RfbTestClient.connect(`${base}/${s.token}/web`);
        expect([client.name, client.width, client.height]).toEqual(['web', 800, 600]);
        client.requestUpdate(false);
        const [screen] = await client.readUpdate();
        expect([screen.x, screen.y, screen.w, screen.h]).toEqual([0, 0, 800, 600]);
        // The test pattern's bars (100 pixels wide each, the top 60 % of the screen).
        for (const [x, y, bar] of [[5, 5, 0], [150, 100, 1], [250, 200, 2], [450, 300, 4], [750, 340, 7]]) {
          expect(client.rgbAt(screen, x, y), `pixel ${x},${y}`).toEqual([...TEST_PATTERN_BARS[bar]]);
        }
        client.type('hi');
        client.pointer(10, 20, 1);
        client.requestUpdate(true);
        // The guest answers the update request after the events sent before it: they have all arrived.
        await client.readUpdate();
        const guest = await vncConsoleOf(inspectUrl, s.namespace, 'web');
        expect(guest.connections).toBe(1);
        expect(guest.input.map((e) => (e.type === 'key' ? [e.keysym, e.down] : [e.x, e.y, e.buttons]))).toEqual([
          [0x68, true], [0x68, false], [0x69, true], [0x69, false], [10, 20, 1],
        ]);
        // And the proxy read them as activity on the instance (written every VNC_ACTIVITY_WRITE_SECONDS).
        await eventually(async () => {
          const { labInstance } = await owner.client.ok<{ labInstance: { lastActivityAt: string | null } }, { id: string }>(
            'query ($id: ID!) { labInstance(id: $id) { lastActivityAt } }',
            { id: s.id },
          );
          expect(Date.now() - Date.parse(labInstance.lastActivityAt ?? '')).toBeLessThan(10_000);
        });
        // The browser's close goes through to the guest's side and back, and both connections end at
        // once (a browser left half-open waits for its own timeout: 30 s for this client).
        const closing = Date.now();
        client.ws.close(1000);
        expect((await client.closed).code).toBe(1000);
        expect(Date.now() - closing).toBeLessThan(10_000);
        await eventually(async () => expect((await vncConsoleOf(inspectUrl, s.namespace, 'web')).connections).toBe(0), 5000, 50);
      } finally {
        await owner.client.ok(StopLabInstanceDocument, { id: s.id });
      }
    });

    it('closes with 4400 while the VMI is not Running: virt-api answers 400 through the aggregator', { timeout: 90_000 }, async () => {
      // An image the kubelet cannot pull: the VMI stays Scheduling for good.
      const suffix = randomUUID().slice(0, 6);
      const { createImage } = await boss.client.ok(CreateImageDocument, {
        input: { name: `stuck-${suffix}`, description: 'never pulled', url: 'registry.example.org/vms/x:does-not-exist', cpuCores: 1, memory: '1Gi' },
      });
      const { createLab } = await boss.client.ok(CreateLabDocument, {
        input: { name: `stuck-${suffix}`, namespacePrefix: `stuck-${suffix}`, description: 'stuck', instanceLifetimeMinutes: null, vms: [{ name: 'web', imageId: createImage.id }] },
      });
      const s = await startLab(server, owner, createLab.id, (e) => e.vms.some((vm) => vm.name === 'web' && vm.phase === 'SCHEDULING'));
      try {
        expect(await closedWith(`${base}/${s.token}/web`)).toEqual({ code: 4400, reason: 'The VM web is not running yet' });
        const vmi = (await admin.call('GET', `/apis/kubevirt.io/v1/namespaces/${s.namespace}/virtualmachineinstances/web`)).body;
        expect(vmi.status.phase).toBe('Scheduling');
      } finally {
        await owner.client.ok(StopLabInstanceDocument, { id: s.id });
      }
    });

    it("closes with 4502 when the server's service account may not get virtualmachineinstances/vnc (kube-apiserver's 403), and opens once it may", { timeout: 120_000 }, async () => {
      // deploy/'s rules without the one for the VNC subresource, for a service account of its own.
      const name = `lo-novnc-${engine}-${randomUUID().slice(0, 6)}`;
      const deployRules = (await admin.call('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/lab-orchestrator')).body.rules as Array<{ apiGroups: string[] }>;
      const vncRule = deployRules.find((r) => r.apiGroups.includes('subresources.kubevirt.io'));
      expect(vncRule).toEqual({ apiGroups: ['subresources.kubevirt.io'], resources: ['virtualmachineinstances/vnc'], verbs: ['get'] });
      const kubeconfig = await serviceAccountKubeconfig(admin, name, deployRules.filter((r) => r !== vncRule), dir);

      const logger = recordingLogger();
      const limited = await startTestServer(engine, realEnv(kubeconfig, { VNC_ACTIVITY_WRITE_SECONDS: '0.3' }), undefined, { logger });
      try {
        const [limitedBoss, user] = await Promise.all([createAdmin(limited), createUser(limited, { isTrusted: true })]);
        const { lab } = await createLabWithVms(limitedBoss.client, ['solo']);
        const s = await startLab(limited, user, lab.id);
        const url = `${limited.wsUrl.replace(/\/graphql$/, '')}/${s.token}/solo`;
        expect((await closedWith(url)).code).toBe(4502);
        const refusal = logger.lines.find((l) => l.includes('Kubernetes refused the VNC subresource'));
        expect(refusal).toContain('"status":403');
        expect(refusal).toContain(
          `User \\"system:serviceaccount:${SA_NAMESPACE}:${name}\\" cannot get resource \\"virtualmachineinstances/vnc\\" in API group \\"subresources.kubevirt.io\\" in the namespace \\"${s.namespace}\\"`,
        );
        // The same server and VM once the rule is granted: RBAC was the only obstacle.
        await admin.call('PUT', `/apis/rbac.authorization.k8s.io/v1/clusterroles/${name}`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules: deployRules });
        const client = await eventually(() => RfbTestClient.connect(url), 10_000, 100);
        expect(client.name).toBe('solo');
        client.close();
        await client.closed;
        await user.client.ok(StopLabInstanceDocument, { id: s.id });
      } finally {
        await limited.stop();
        for (const path of [`/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${name}`, `/apis/rbac.authorization.k8s.io/v1/clusterroles/${name}`]) {
          await admin.request('DELETE', path);
        }
      }
    });
  });
});
