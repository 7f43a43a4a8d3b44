import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { now } from './stats.js';

export interface FanoutBaseline {
  url: string;
  /** Sends every subscription one READY message; t0 just before the first send, t1 after the last. */
  burst(): { t0: number; t1: number };
  close(): Promise<void>;
}

const VMS = [1, 2, 3].map((i) => ({ name: `vm${i}`, phase: 'RUNNING' }));

/** A payload of the shape the real server sends for STATUS_SUBSCRIPTION. */
function payload(status: 'STARTING' | 'READY'): string {
  const ready = status === 'READY';
  const data = { labInstanceStatus: { at: new Date().toISOString(), status, ready, vms: VMS.map((vm) => ({ ...vm, ready })) } };
  return JSON.stringify({ data });
}

const next = (id: string, json: string) => `{"id":${JSON.stringify(id)},"type":"next","payload":${json}}`;

/**
 * The floor of the subscription benchmark: a bare `ws` server that speaks just enough
 * graphql-transport-ws for the same subscribers (an ack, then one `next` per `subscribe`) and, on
 * burst(), sends each subscription one READY message, serialised once, with one ws.send() each.
 * No database, no watches, no GraphQL execution: what is left is the cost of the sockets themselves.
 */
export async function startFanoutBaseline(): Promise<FanoutBaseline> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  const subscriptions: Array<{ ws: WebSocket; id: string }> = [];
  wss.on('connection', (ws) =>
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { type: string; id?: string };
      if (message.type === 'connection_init') ws.send('{"type":"connection_ack"}');
      else if (message.type === 'subscribe' && message.id) {
        subscriptions.push({ ws, id: message.id });
        ws.send(next(message.id, payload('STARTING')));
      }
    }),
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    burst() {
      const t0 = now();
      const ready = payload('READY');
      for (const { ws, id } of subscriptions) ws.send(next(id, ready));
      return { t0, t1: now() };
    },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
