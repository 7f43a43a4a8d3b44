import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { LabInstanceStatus, VmPhase } from '../src/entities/index.js';
import { Fanout, HIGH_WATER_BYTES } from '../src/ws/fanout.js';
import { completesAfterStopped, instanceStream } from '../src/services/lab-instance.stream.js';
import { sendTextFrames } from '../src/ws/frames.js';
import { InstanceEvents, type InstanceSnapshot } from '../src/services/lab-instance.events.js';

const snap = (id: number, status: LabInstanceStatus, statusMessage: string | null = null): InstanceSnapshot => ({
  id,
  labId: 1,
  userId: 1,
  namespace: `ns-${id}`,
  status,
  statusMessage,
  vms: [{ name: 'vm', phase: VmPhase.RUNNING, ready: status === LabInstanceStatus.READY }],
  createdAt: new Date(0),
  expiresAt: null,
  stoppedAt: null,
  at: new Date(),
});

interface Pair {
  server: WebSocket;
  client: WebSocket;
  received: string[];
  /** Resolves once the client has received `n` messages in all. */
  until(n: number): Promise<string[]>;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A real WebSocket connection over loopback: the server side to write to, the client side collecting text messages. */
async function connect(perMessageDeflate = false): Promise<Pair> {
  const http: Server = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const serverSide = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, { perMessageDeflate });
  const received: string[] = [];
  const waiters = new Set<() => void>();
  client.on('message', (data, isBinary) => {
    expect(isBinary).toBe(false);
    received.push(data.toString());
    for (const w of waiters) w();
  });
  await new Promise((resolve) => client.once('open', resolve));
  const server = await serverSide;
  closers.push(async () => {
    client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  const until = (n: number) =>
    new Promise<string[]>((resolve) => {
      const check = () => {
        if (received.length < n) return;
        waiters.delete(check);
        resolve(received);
      };
      waiters.add(check);
      check();
    });
  return { server, client, received, until };
}

/** Counts the writes to the server side's TCP socket (ws keeps it as `_socket`). */
function countWrites(ws: WebSocket): { count: number } {
  const socket = (ws as unknown as { _socket: { write: (...args: unknown[]) => boolean } })._socket;
  const counter = { count: 0 };
  const write = socket.write.bind(socket);
  socket.write = (...args: unknown[]) => {
    counter.count++;
    return write(...args);
  };
  return counter;
}

const payload = (s: InstanceSnapshot) => JSON.stringify({ data: { id: s.id, status: s.status, message: s.statusMessage } });
const parse = (m: string) => JSON.parse(m) as { id: string; type: string; payload: { data: { id: number; status: string; message: string | null } } };

describe('WebSocket frames written directly', () => {
  it('arrive intact and in order for every length class and for multi-byte characters', async () => {
    const pair = await connect();
    const lengths = [0, 5, 125, 126, 1000, 65_535, 65_536, 200_000];
    const messages = lengths.map((n, i) => `${i}:${'é✓a'.repeat(n).slice(0, n)}`);
    sendTextFrames(pair.server, messages);
    expect(await pair.until(messages.length)).toEqual(messages);
  });

  it('go through ws.send() when permessage-deflate is negotiated', async () => {
    const pair = await connect(true);
    expect(pair.server.extensions).toContain('permessage-deflate');
    const messages = ['first', 'second ✓', 'x'.repeat(70_000)];
    sendTextFrames(pair.server, messages);
    expect(await pair.until(3)).toEqual(messages);
  });
});

describe('the subscription fan-out', () => {
  it("writes all of a socket's waiting messages, for every subscription on it, in one write", async () => {
    const pair = await connect();
    const events = new InstanceEvents();
    const fanout = new Fanout();
    const iterators = [1, 2, 3].map((id) => {
      const it = fanout.attach(pair.server, `sub-${id}`, instanceStream(events, { instanceId: id, visible: () => true, initial: [] }), payload);
      void it.next();
      return it;
    });
    const writes = countWrites(pair.server);
    for (const id of [1, 2, 3]) events.publish(snap(id, LabInstanceStatus.READY));
    const messages = (await pair.until(3)).map(parse);
    expect(messages.map((m) => [m.id, m.type, m.payload.data.id, m.payload.data.status])).toEqual([
      ['sub-1', 'next', 1, 'READY'],
      ['sub-2', 'next', 2, 'READY'],
      ['sub-3', 'next', 3, 'READY'],
    ]);
    expect(writes.count).toBe(1);
    for (const it of iterators) await it.return(undefined);
    expect(events.listenerCount()).toBe(0);
  });

  it('sends the current state first and nothing before graphql-ws starts reading the subscription', async () => {
    const pair = await connect();
    const events = new InstanceEvents();
    const it = new Fanout().attach(
      pair.server,
      'a',
      instanceStream(events, { instanceId: 1, visible: () => true, initial: [snap(1, LabInstanceStatus.STARTING)] }),
      payload,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(pair.received).toEqual([]);
    void it.next();
    await pair.until(1);
    events.publish(snap(1, LabInstanceStatus.READY));
    expect((await pair.until(2)).map((m) => parse(m).payload.data.status)).toEqual(['STARTING', 'READY']);
    await it.return(undefined);
  });

  it('ends the subscription after its last message has been written', async () => {
    const pair = await connect();
    const events = new InstanceEvents();
    const stream = instanceStream(events, { instanceId: 4, visible: () => true, initial: [], completeAfter: completesAfterStopped });
    const it = new Fanout().attach(pair.server, 'x', stream, payload);
    const ended = it.next();
    events.publish(snap(4, LabInstanceStatus.STOPPING));
    events.publish(snap(4, LabInstanceStatus.STOPPED));
    expect(await ended).toEqual({ value: undefined, done: true });
    expect((await pair.until(1)).map((m) => parse(m).payload.data.status)).toEqual(['STOPPED']);
    expect(events.listenerCount()).toBe(0);
  });

  it("keeps a subscription's order when a payload is still executing", async () => {
    const pair = await connect();
    const events = new InstanceEvents();
    let release: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (release = resolve));
    let executed = false;
    void slow.then(() => (executed = true));
    // As the shared execution does: a promise while executing, the string itself once done.
    const payloadOf = (s: InstanceSnapshot) =>
      s.status === LabInstanceStatus.STARTING && !executed ? slow.then(() => payload(s)) : payload(s);
    const it = new Fanout().attach(pair.server, 'o', instanceStream(events, { instanceId: 5, visible: () => true, initial: [] }), payloadOf);
    void it.next();
    events.publish(snap(5, LabInstanceStatus.STARTING));
    await new Promise((resolve) => setImmediate(resolve));
    events.publish(snap(5, LabInstanceStatus.READY));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(pair.received).toEqual([]);
    release();
    expect((await pair.until(2)).map((m) => parse(m).payload.data.status)).toEqual(['STARTING', 'READY']);
    await it.return(undefined);
  });

  it('holds back a congested socket, and then sends only the newest state', async () => {
    const pair = await connect();
    const events = new InstanceEvents();
    const big = (s: InstanceSnapshot) => JSON.stringify({ data: { status: s.status, message: s.statusMessage, pad: 'p'.repeat(256 * 1024) } });
    const it = new Fanout().attach(pair.server, 'c', instanceStream(events, { instanceId: 6, visible: () => true, initial: [] }), big);
    void it.next();
    const clientSocket = (pair.client as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    clientSocket.pause(); // the reader stops reading: the kernel's buffers fill, then the server's
    let published = 0;
    while (pair.server.bufferedAmount <= HIGH_WATER_BYTES) {
      events.publish(snap(6, LabInstanceStatus.STARTING, `change ${++published}`));
      await new Promise((resolve) => setImmediate(resolve));
      if (published > 1000) throw new Error('the socket never became congested');
    }
    const congestedAt = pair.server.bufferedAmount;
    for (let n = 0; n < 200; n++) events.publish(snap(6, LabInstanceStatus.STARTING, `change ${++published}`));
    await new Promise((resolve) => setTimeout(resolve, 120)); // a few congestion retries
    expect(pair.server.bufferedAmount).toBe(congestedAt);
    clientSocket.resume();
    await pair.until(1);
    await new Promise<void>((resolve) => {
      const check = () => (pair.received.some((m) => parse(m).payload.data.message === `change ${published}`) ? resolve() : setTimeout(check, 10));
      check();
    });
    expect(pair.received.length).toBeLessThan(published / 2);
    await it.return(undefined);
  });
});
