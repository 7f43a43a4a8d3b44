import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamReads } from '../src/ws/vnc-reads.js';

/** Byte `i` of the stream: a period (251) that no buffer size divides, so a buffer reused too early shows. */
const byteAt = (i: number) => i % 251;

function pattern(from: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let k = 0; k < length; k++) b[k] = byteAt(from + k);
  return b;
}

const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

async function listen<T extends net.Server>(server: T): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A server that answers the upgrade, then sends `total` bytes of the pattern and ends. */
async function upstream(total: number): Promise<number> {
  const server = http.createServer();
  server.on('upgrade', (_req, socket: Duplex) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(300_000, total - sent);
        const ok = socket.write(pattern(sent, n));
        sent += n;
        if (!ok) return void socket.once('drain', pump);
      }
      socket.end();
    };
    pump();
  });
  return listen(server);
}

/** A reader that stops for a moment after every 2 MB; resolves with the bytes that did not match the pattern. */
async function laggingReader(): Promise<{ port: number; result: Promise<{ received: number; wrong: number }> }> {
  let resolve!: (r: { received: number; wrong: number }) => void;
  const result = new Promise<{ received: number; wrong: number }>((r) => (resolve = r));
  const server = net.createServer((socket) => {
    let received = 0;
    let wrong = 0;
    let nextPause = 2 ** 21;
    socket.on('data', (chunk: Buffer) => {
      for (let k = 0; k < chunk.length; k++) if (chunk[k] !== byteAt(received + k)) wrong++;
      received += chunk.length;
      if (received >= nextPause) {
        nextPause += 2 ** 21;
        socket.pause();
        setTimeout(() => socket.resume(), 20);
      }
    });
    socket.on('end', () => resolve({ received, wrong }));
  });
  return { port: await listen(server), result };
}

describe('UpstreamReads', () => {
  it('relays what follows an upgrade in order, reusing its buffers only once their writes are done, to a reader that lags', async () => {
    const total = 24 * 2 ** 20;
    const upstreamPort = await upstream(total);
    const reader = await laggingReader();
    const to = net.connect(reader.port, '127.0.0.1');
    await once(to, 'connect');

    const reads = new UpstreamReads();
    const request = http.request({
      host: '127.0.0.1',
      port: upstreamPort,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket' },
      onread: reads.onread,
    } as http.RequestOptions);
    request.on('socket', (socket) => reads.handshakeOn(socket));
    request.end();
    const [res, from, head] = (await once(request, 'upgrade')) as [http.IncomingMessage, Duplex, Buffer];
    expect(res.statusCode).toBe(101);

    // As the proxy does: one write per read, the source paused while more than 1 MB waits.
    let queuedWrites = 0;
    if (head.length) to.write(head);
    reads.relayTo((chunk) => {
      reads.write(to, chunk);
      if (to.writableLength > 0) queuedWrites++;
      if (to.writableLength > 2 ** 20 && !from.isPaused()) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => to.end());

    expect(await reader.result).toEqual({ received: total, wrong: 0 });
    expect(queuedWrites).toBeGreaterThan(0); // the reader did lag: buffers were lent to writes under way
  });
});
