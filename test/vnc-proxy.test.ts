import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RfbTestClient } from '../bench/support/rfb-client.js';
import { issueVncAccess } from '../src/services/lab-instance.vnc.js';
import type { SimulatedCluster } from '../src/simulated/index.js';
import { LogoutDocument, StartLabDocument, StopLabInstanceDocument, UpdateUserDocument } from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { eventually } from './support/wait.js';

const PREFIX = 'ws_proxy';

interface Started {
  id: string;
  namespace: string;
  token: string;
  url: string;
}

describe.each(ENGINES)('the VNC console proxy on %s', (engine) => {
  let server: TestServer;
  let cluster: SimulatedCluster;
  let admin: TestUser;
  let owner: TestUser;
  let lab: { id: string };
  let base: string;

  beforeAll(async () => {
    server = await startTestServer(engine, { WS_PROXY_PATH_PREFIX: PREFIX, VNC_ACTIVITY_WRITE_SECONDS: '0.3', WS_SESSION_CHECK_SECONDS: '0.5' });
    cluster = server.app.simulated!;
    base = server.wsUrl.replace(/\/graphql$/, '');
    [admin, owner] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
    lab = (await createLabWithVms(admin.client, ['gateway', 'web'])).lab;
  });
  afterAll(() => server?.stop());

  async function start(user = owner): Promise<Started> {
    const { startLab } = await user.client.ok(StartLabDocument, { labId: lab.id });
    return { id: startLab.labInstance.id, namespace: startLab.labInstance.namespace, token: startLab.vncAccess.token, url: startLab.vncAccess.url };
  }

  const running = (s: Started, vm = 'gateway') =>
    eventually(() => expect(cluster.get('virtualmachineinstances', s.namespace, vm)?.status?.phase).toBe('Running'), 10_000);

  /** The HTTP status an upgrade is refused with, and its body. */
  async function refusal(path: string, origin?: string): Promise<{ status: number; body: string }> {
    const err = (await RfbTestClient.connect(`${base}${path}`, { origin }).then(
      () => expect.fail('the upgrade was accepted'),
      (e: unknown) => e,
    )) as { status: number; body: string };
    return { status: err.status, body: err.body };
  }

  /** The close code and reason of a connection that is refused after the handshake. */
  async function closedWith(path: string): Promise<{ code: number; reason: string }> {
    const client = await RfbTestClient.connect(`${base}${path}`, { handshake: false });
    return client.closed;
  }

  it('points vncAccess.url at the built-in console page by default, with the LabVNC parameters in the fragment', async () => {
    const s = await start();
    const url = new URL(s.url);
    expect(`${url.origin}${url.pathname}`).toBe(`http://localhost:${server.config.http.port}/console/`);
    const params = new URLSearchParams(url.hash.slice(1));
    expect(Object.fromEntries(params)).toEqual({ path: `${PREFIX}/${s.token}/gateway`, allowed_vmis: 'gateway,web', autoconnect: '1' });
    expect(url.search).toBe('');
  });

  it('relays the console both ways, on the path with and without the prefix, and records the input', async () => {
    const s = await start();
    await running(s);
    for (const path of [`/${PREFIX}/${s.token}/gateway`, `/${s.token}/gateway`]) {
      const client = await RfbTestClient.connect(`${base}${path}`);
      expect(client.name).toBe('gateway');
      expect([client.width, client.height]).toEqual([800, 600]);
      client.requestUpdate(false);
      const [rect] = await client.readUpdate();
      const expected = cluster.vncFramebuffer(s.namespace, 'gateway');
      for (const [x, y] of [[5, 5], [150, 100], [700, 300], [20, 380], [400, 590]]) {
        const i = (y * expected.width + x) * 3;
        expect(client.rgbAt(rect, x, y)).toEqual([expected.rgb[i], expected.rgb[i + 1], expected.rgb[i + 2]]);
      }
      client.close();
      await client.closed;
    }
    const client = await RfbTestClient.connect(`${base}/${s.token}/web`);
    expect(client.name).toBe('web');
    client.requestUpdate(true);
    await client.readUpdate(); // the first incremental update is the whole screen
    client.type('hi');
    client.pointer(10, 20, 1);
    client.requestUpdate(true);
    const [typed] = await client.readUpdate(); // the typed line, redrawn
    expect(typed.w).toBe(800);
    await eventually(() => expect(cluster.vncInput(s.namespace, 'web').length).toBe(5));
    expect(cluster.vncInput(s.namespace, 'web').map((e) => (e.type === 'key' ? [e.keysym, e.down] : [e.x, e.y, e.buttons]))).toEqual([
      [0x68, true], [0x68, false], [0x69, true], [0x69, false], [10, 20, 1],
    ]);
    await eventually(async () => {
      const { labInstance } = await owner.client.ok<{ labInstance: { lastActivityAt: string | null } }, { id: string }>(
        'query ($id: ID!) { labInstance(id: $id) { lastActivityAt } }',
        { id: s.id },
      );
      expect(labInstance.lastActivityAt).not.toBeNull();
      expect(Date.now() - Date.parse(labInstance.lastActivityAt!)).toBeLessThan(10_000);
    });
    client.close();
  });

  it('refuses forged, expired and wrong-VM tokens, and foreign origins, before the upgrade, never echoing the token', async () => {
    const s = await start();
    const forged = await new SignJWT({ id: owner.user.id, lab_instance: { lab_id: Number(lab.id), lab_instance_id: Number(s.id), namespace_name: s.namespace, allowed_vmi_names: ['gateway'] } })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode('not-the-secret-not-the-secret'));
    const expired = (await issueVncAccess(server.config.vnc, { userId: owner.user.id, labId: Number(lab.id), instanceId: Number(s.id), namespace: s.namespace, vmNames: ['gateway'] }, new Date(Date.now() - 3600_000))).token;
    for (const [path, status] of [
      [`/${PREFIX}/${forged}/gateway`, 401],
      [`/${forged}/gateway`, 401],
      [`/${PREFIX}/${expired}/gateway`, 401],
      [`/${PREFIX}/${s.token}/not-in-token`, 403],
    ] as const) {
      const r = await refusal(path);
      expect(r.status, path).toBe(status);
      expect(r.body).not.toContain(path.split('/').find((p) => p.includes('.')));
    }
    expect((await refusal(`/${s.token}/gateway`, 'https://evil.example.org')).status).toBe(403);
    // The server's own page (same host) and LAB_VNC_HOST's may.
    await running(s);
    for (const origin of [`http://${new URL(base).host}`, 'http://localhost:30003']) {
      const ok = await RfbTestClient.connect(`${base}/${s.token}/gateway`, { origin });
      ok.close();
      await ok.closed;
    }
    // Other paths are still not WebSockets; /graphql still is.
    expect((await refusal('/not-a-console')).status).toBe(400);
  });

  it('maps KubeVirt refusals to close codes: not running 4400, not found 4404, forbidden 4502', async () => {
    cluster.setAutoProgress(false);
    let s: Started;
    try {
      s = await start();
      expect(await closedWith(`/${s.token}/gateway`)).toEqual({ code: 4400, reason: 'The VM gateway is not running yet' });
    } finally {
      cluster.setAutoProgress(true);
    }
    await running(s);
    cluster.faults.failRequest({ verb: 'get', resource: 'virtualmachineinstances/vnc' }, 403);
    expect((await closedWith(`/${s.token}/gateway`)).code).toBe(4502);
    cluster.faults.failRequest({ verb: 'get', resource: 'virtualmachineinstances/vnc' }, 404);
    expect((await closedWith(`/${s.token}/gateway`)).code).toBe(4404);
  });

  it('ends the session when the instance is stopped, and refuses its token afterwards', async () => {
    const s = await start();
    await running(s);
    const client = await RfbTestClient.connect(`${base}/${s.token}/gateway`);
    await owner.client.ok(StopLabInstanceDocument, { id: s.id });
    expect(await client.closed).toEqual({ code: 4410, reason: 'Access ended: the lab instance was stopped' });
    expect((await refusal(`/${s.token}/gateway`)).status).toBe(403);
  });

  it('ends the session when the issuing login session logs out, or the account is deactivated', async () => {
    const user = await createUser(server, { isTrusted: true });
    const s = await start(user);
    await running(s);
    const client = await RfbTestClient.connect(`${base}/${s.token}/gateway`);
    const other = await RfbTestClient.connect(`${base}/${s.token}/web`);
    await user.client.ok(LogoutDocument);
    expect((await client.closed).code).toBe(4403);
    expect((await other.closed).code).toBe(4403);
    expect((await refusal(`/${s.token}/gateway`)).status).toBe(403);

    const second = await createUser(server, { isTrusted: true });
    const t = await start(second);
    await running(t);
    const c2 = await RfbTestClient.connect(`${base}/${t.token}/gateway`);
    await admin.client.ok(UpdateUserDocument, { id: String(second.user.id), input: { isActive: false } });
    expect(await c2.closed).toEqual({ code: 4403, reason: 'Access ended: the account was deactivated' });
  });

  it('lets a second connection to the same VM take the console over (4409 to the first)', async () => {
    const s = await start();
    await running(s);
    const first = await RfbTestClient.connect(`${base}/${s.token}/gateway`);
    const second = await RfbTestClient.connect(`${base}/${s.token}/gateway`);
    expect((await first.closed).code).toBe(4409);
    second.requestUpdate(false, 0, 0, 1, 1);
    expect((await second.readUpdate())[0].w).toBe(1);
    second.close();
  });

  it('ends the session when its token expires', async () => {
    const s = await start();
    await running(s);
    // 3 s: `iat` is whole seconds, so the token lives 2-3 s, long enough to connect before it expires.
    const shortLived = { ...server.config.vnc, tokenTtlSeconds: 3 };
    const grant = { userId: owner.user.id, labId: Number(lab.id), instanceId: Number(s.id), namespace: s.namespace, vmNames: ['gateway', 'web'] };
    // A token with no recorded session (as an external issuer's): it lasts its own lifetime.
    const brief = (await issueVncAccess(shortLived, grant)).token;
    const client = await RfbTestClient.connect(`${base}/${brief}/gateway`);
    const t0 = Date.now();
    expect((await client.closed).code).toBe(4401);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('the VNC console proxy with VNC_SECOND_CONNECTION=refuse', () => {
  let server: TestServer;
  afterAll(() => server?.stop());

  it('refuses a second connection to an open console with 409 before the handshake', async () => {
    server = await startTestServer(ENGINES.includes('sqlite') ? 'sqlite' : ENGINES[0], { VNC_SECOND_CONNECTION: 'refuse' });
    const cluster = server.app.simulated!;
    const [admin, owner] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
    const { lab } = await createLabWithVms(admin.client, ['solo']);
    const { startLab } = await owner.client.ok(StartLabDocument, { labId: lab.id });
    const ns = startLab.labInstance.namespace;
    await eventually(() => expect(cluster.get('virtualmachineinstances', ns, 'solo')?.status?.phase).toBe('Running'), 10_000);
    const base = server.wsUrl.replace(/\/graphql$/, '');
    const first = await RfbTestClient.connect(`${base}/${startLab.vncAccess.token}/solo`);
    const second = await RfbTestClient.connect(`${base}/${startLab.vncAccess.token}/solo`).then(
      () => expect.fail('accepted'),
      (e: { status: number }) => e.status,
    );
    expect(second).toBe(409);
    first.requestUpdate(false, 0, 0, 1, 1);
    await first.readUpdate();
    first.close();
    await first.closed;
    // Once the first is gone, the console opens again.
    await eventually(async () => {
      const again = await RfbTestClient.connect(`${base}/${startLab.vncAccess.token}/solo`);
      again.close();
    });
  });
});
