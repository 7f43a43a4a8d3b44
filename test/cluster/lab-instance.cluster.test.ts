import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { CreateImageDocument, CreateLabDocument, LabInstanceStatusDocument, StartLabDocument, StopLabInstanceDocument } from '../generated/graphql.js';
import { createAdmin, createUser, type TestUser } from '../support/factories.js';
import { kubectlWith } from '../support/kubectl.js';
import type { TestServer } from '../support/server.js';
import { graphqlWsClient, subscribeGraphqlWs } from '../support/subscriptions.js';

const SECRET = 'cluster-test-secret-key-0123456789';
/** A small containerDisk that boots in a minute on kind (KubeVirt's own demo image). */
const IMAGE = process.env.TEST_CLUSTER_VM_IMAGE ?? 'quay.io/kubevirt/cirros-container-disk-demo:latest';

describe('lab instances on the cluster named by KUBECONFIG', () => {
  let app: App;
  let server: TestServer;
  let dir: string;
  let admin: TestUser;
  let trusted: TestUser;
  const kubectl = kubectlWith(process.env.KUBECONFIG!);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lo-cluster-'));
    const config = loadConfig({
      NODE_ENV: 'production',
      SECRET_KEY: SECRET,
      HOST: '127.0.0.1',
      PORT: '0',
      SQLITE_PATH: join(dir, 'db.sqlite3'),
      ACCOUNT_EMAIL_VERIFICATION: 'none',
      KUBERNETES_MODE: 'kubeconfig',
      STATUS_RESYNC_SECONDS: '2',
    });
    app = await createApp(config, { logger: createLogger('warn') });
    const url = await app.start();
    const { GqlClient } = await import('../support/graphql-client.js');
    server = { app, config, url, wsUrl: url.replace(/^http/, 'ws'), engine: 'sqlite', client: (t?: string) => new GqlClient(url, t), stop: () => app.stop() };
    [admin, trusted] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
  });
  afterAll(async () => {
    await app?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a lab of two VMs, reaches READY, hands out VNC access, and stops it', async () => {
    const image = (await admin.client.ok(CreateImageDocument, { input: { name: 'cirros', description: 'CirrOS', url: IMAGE, cpuCores: 1, memory: '128Mi' } }))
      .createImage;
    const suffix = Date.now().toString(36);
    const { createLab } = await admin.client.ok(CreateLabDocument, {
      input: { name: `cluster-${suffix}`, namespacePrefix: `lo-test-${suffix}`, description: 'cluster test', vms: [{ name: 'alpha', imageId: image.id }, { name: 'beta', imageId: image.id }] },
    });
    const { startLab } = await trusted.client.ok(StartLabDocument, { labId: createLab.id });
    const { id, namespace } = startLab.labInstance;
    const labels = JSON.parse(await kubectl('get', 'namespace', namespace, '-o', 'json')).metadata.labels;
    expect(labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'lab-orchestrator', 'lab-orchestrator.io/instance': id });
    const vmis = JSON.parse(await kubectl('get', 'vmi', '-n', namespace, '-o', 'json')).items.map((v: { metadata: { name: string } }) => v.metadata.name);
    expect(vmis.sort()).toEqual(['alpha', 'beta']);
    const { payload } = await jwtVerify(startLab.vncAccess.token, new TextEncoder().encode(SECRET));
    expect(payload).toMatchObject({ lab_instance: { namespace_name: namespace, allowed_vmi_names: ['alpha', 'beta'] } });

    const sub = subscribeGraphqlWs(graphqlWsClient(server.wsUrl, trusted.token), LabInstanceStatusDocument, { id });
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'), 480_000);
    await trusted.client.ok(StopLabInstanceDocument, { id });
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'), 300_000);
  });
});
