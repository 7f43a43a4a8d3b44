/**
 * Adversarial audit: what an anonymous client can make the server hold. The server runs in a child
 * process with a small heap and --expose-gc (test/support/hardening/child.ts); the tests measure what
 * it holds after full garbage collections, once the requests are answered and the sockets closed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deathOf, held, MB, startChildServer, type ChildServer } from './support/hardening/child.js';
import { openInitialised, rawOperation, MESSAGES, type Subprotocol } from './support/hardening/ws.js';
import { ENGINES } from './support/server.js';

/** A comment of about 900 KB: under the 1 MB request limit, so every such request is accepted. */
const PADDING = 'x'.repeat(900_000);
/** How much more the server may hold after a flood than before it (50 requests of 900 KB are 45 MB). */
const BOUND = 20 * MB;
/** What one socket that does not read may make the server hold at most, whatever it sends. */
const QUEUE_BOUND = 40 * MB;
const PROTOCOLS: Subprotocol[] = ['graphql-transport-ws', 'graphql-ws'];

const fmt = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

async function post(url: string, body: string) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body });
  await res.arrayBuffer();
  return res.status;
}

/** Fails with how the child died (out of memory) when it is gone, else what it holds after GC. */
async function heldNow(server: ChildServer): Promise<number> {
  expect(server.exit, `the server process ${deathOf(server.exit)}`).toBeUndefined();
  return held(await server.memory());
}

/** Turns a request that failed because the server died into an error that says so. */
async function orDeath<T>(server: ChildServer, what: string, request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (err) {
    await Promise.race([server.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    throw new Error(`${what} failed (${(err as Error).message}); the server process ${deathOf(server.exit)}`, { cause: err });
  }
}

async function floodHttp(server: ChildServer, count: number, queryOf: (i: number) => string) {
  for (let i = 0; i < count; i++) {
    const status = await orDeath(server, `request ${i}`, post(server.url, JSON.stringify({ query: queryOf(i) })));
    expect(status, `request ${i}`).toBeLessThan(500);
  }
}

describe.each(ENGINES)('what an anonymous client can make the server hold, on %s', (engine) => {
  describe('size limits', () => {
    let child: ChildServer;
    beforeAll(async () => {
      child = await startChildServer(engine);
    });
    afterAll(() => child?.stop());

    it.each(PROTOCOLS)('closes a %s socket with 1009 (message too big) when a message is over 1 MB, instead of running it', async (protocol) => {
      const socket = await openInitialised(child.wsUrl, protocol);
      socket.send({ id: 'big', type: MESSAGES[protocol].start, payload: { query: `{ me { id } } # ${'z'.repeat(2 * MB)}` } });
      const outcome = await Promise.race([
        socket.closed.then((c) => `closed ${c.code}`),
        socket.next((m) => m.id === 'big', 15_000).then((m) => `answered with a "${m.type}" message`),
      ]);
      socket.close();
      expect(outcome).toBe('closed 1009');
    });
  });

  // Each starts a server in a child process and sends hundreds of large requests: minutes, not seconds,
  // on a loaded two-core machine.
  describe('held after the requests', { timeout: 120_000 }, () => {
    let child: ChildServer | undefined;
    afterEach(async () => {
      await child?.stop();
      child = undefined;
    });

    it('refuses HTTP bodies over 1 MB with 413, and keeps no ~900 KB query text per distinct comment (Apollo document cache)', async () => {
      child = await startChildServer(engine);
      expect(await post(child.url, JSON.stringify({ query: `{ me { id } } # ${'y'.repeat(1_100_000)}` }))).toBe(413);
      await floodHttp(child, 3, (i) => `{ me { id } } # warm-up ${i}`);
      const before = await heldNow(child);
      // Apollo's document cache sizes an entry by its parsed document, which has no comment, but keys it by the whole text.
      await floodHttp(child, 50, (i) => `{ me { id } } # ${i} ${PADDING}`);
      const growth = (await heldNow(child)) - before;
      expect(growth, `held ${fmt(growth)} more after 50 requests of ~900 KB`).toBeLessThan(BOUND);
    });

    it('keeps no ~900 KB query text per distinct comment in the catalogue response cache', async () => {
      child = await startChildServer(engine);
      await floodHttp(child, 3, (i) => `{ labs { totalCount } } # warm-up ${i}`);
      const before = await heldNow(child);
      await floodHttp(child, 50, (i) => `{ labs { totalCount } } # ${i} ${PADDING}`);
      const growth = (await heldNow(child)) - before;
      expect(growth, `held ${fmt(growth)} more after 50 catalogue requests of ~900 KB`).toBeLessThan(BOUND);
    });

    it.each(PROTOCOLS)('keeps nothing of ~900 KB operations sent over %s once their sockets are closed', async (protocol) => {
      child = await startChildServer(engine);
      const server = child;
      const warm = await openInitialised(server.wsUrl, protocol);
      await rawOperation(warm, '{ me { id } } # warm-up');
      warm.close();
      await warm.closed;
      const before = await heldNow(server);
      for (let s = 0; s < 5; s++) {
        const socket = await orDeath(server, `socket ${s}`, openInitialised(server.wsUrl, protocol));
        for (let i = 0; i < 10; i++) {
          const result = await orDeath(server, `operation ${s}-${i}`, rawOperation(socket, `{ me { id } } # ${s}-${i} ${PADDING}`, undefined, 30_000));
          expect(result.errors).toBeUndefined();
        }
        socket.close();
        await socket.closed;
      }
      const growth = (await heldNow(server)) - before;
      expect(growth, `held ${fmt(growth)} more after 50 operations of ~900 KB on 5 sockets, all closed`).toBeLessThan(BOUND);
    });

    it('bounds what it queues for a graphql-transport-ws socket that never reads its query results', async () => {
      child = await startChildServer(engine);
      const server = child;
      const socket = await openInitialised(server.wsUrl, 'graphql-transport-ws');
      const port = socket.localPort;
      const before = await heldNow(server);
      // The client stops reading: the kernel's buffers fill, then whatever the server queues stays in its memory.
      (socket.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const introspection =
        '{ __schema { types { name description fields { name description args { name description type { name kind ofType { name kind ofType { name kind } } } } type { name kind ofType { name kind ofType { name kind } } } } } } }';
      for (let i = 0; i < 1500; i++) socket.send({ id: `q${i}`, type: 'subscribe', payload: { query: introspection } });
      // Watch the peak of what it holds until the server closes the connection, or nothing moves any
      // more on it (all read and answered, or reading stopped).
      let peak = 0;
      let last = '';
      let unchanged = 0;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && peak < QUEUE_BOUND && unchanged < 5) {
        peak = Math.max(peak, (await heldNow(server)) - before);
        const state = await server.serverSocket(port);
        if (!state) break; // closed by the server
        const now = `${state.bytesRead}/${state.writableLength}`;
        unchanged = now === last ? unchanged + 1 : 0;
        last = now;
      }
      socket.ws.terminate();
      expect(peak, `held up to ${fmt(peak)} more for one socket that does not read`).toBeLessThan(QUEUE_BOUND);
    });
  });
});
