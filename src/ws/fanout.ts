import type { ExecutionResult } from 'graphql';
import type { WebSocket } from 'ws';
import type { InstanceSnapshot } from '../services/lab-instance.events.js';
import type { InstanceStream } from '../services/lab-instance.stream.js';
import { sendTextFrames } from './frames.js';

/** A socket with more unsent bytes than this makes its subscriptions wait (and coalesce). */
export const HIGH_WATER_BYTES = 1 << 20;
/** How soon a congested socket is looked at again. */
const CONGESTION_RETRY_MS = 50;

/** One event's `next` payload as JSON: shared by every subscription with the same operation and viewer. */
export type PayloadOf = (event: InstanceSnapshot) => string | Promise<string>;

interface Connection {
  readonly ws: WebSocket;
  /** Subscriptions of this socket with events waiting. */
  readonly ready: Set<Delivery>;
  retry?: NodeJS.Timeout;
}

interface Delivery {
  /** The subscription's id, as a JSON string. */
  readonly idJson: string;
  readonly stream: InstanceStream;
  readonly payloadOf: PayloadOf;
  readonly connection: Connection;
  /** An event taken from the stream whose payload was still executing; later events wait for it. */
  held: InstanceSnapshot | undefined;
  ended: boolean;
  /** Settles the iterator graphql-ws awaits, which then sends `complete` (or nothing, after the client's). */
  end(): void;
}

const frameOf = (d: Delivery, payload: string) => `{"id":${d.idJson},"type":"next","payload":${payload}}`;

/**
 * Writes graphql-transport-ws `next` messages for many subscriptions at once. Publishing marks the
 * subscriptions that have events waiting; once per turn of the event loop, each marked socket gets
 * all its messages in one write, each payload executed and serialised once per event for all its
 * subscribers (graphql-ws would await, stringify and send every message on its own).
 */
export class Fanout {
  private readonly connections = new WeakMap<WebSocket, Connection>();
  private readonly ready = new Set<Connection>();
  private scheduled = false;

  /**
   * The iterator handed to graphql-ws for one subscription: it yields nothing itself, since the
   * fan-out writes the messages, and it ends after the stream's last message has been written.
   * graphql-ws calls return() when the client completes the subscription or the socket closes.
   */
  attach(ws: WebSocket, id: string, stream: InstanceStream, payloadOf: PayloadOf): AsyncGenerator<ExecutionResult> {
    const connection = this.connectionOf(ws);
    let settle: () => void = () => undefined;
    const ended = new Promise<IteratorResult<ExecutionResult, undefined>>((resolve) => {
      settle = () => resolve({ value: undefined, done: true });
    });
    const delivery: Delivery = {
      idJson: JSON.stringify(id),
      stream,
      payloadOf,
      connection,
      held: undefined,
      ended: false,
      end() {
        if (delivery.ended) return;
        delivery.ended = true;
        connection.ready.delete(delivery);
        settle();
      },
    };
    let started = false;
    const stop = async () => {
      delivery.end();
      await stream.return?.();
    };
    const iterator = {
      // graphql-ws starts reading once the subscription is registered: only then may messages go out.
      next: () => {
        if (!started) {
          started = true;
          stream.onPending(() => this.mark(delivery));
        }
        return ended;
      },
      return: async () => {
        await stop();
        return { value: undefined, done: true };
      },
      throw: async (err: unknown) => {
        await stop();
        throw err;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    return iterator as unknown as AsyncGenerator<ExecutionResult>;
  }

  private connectionOf(ws: WebSocket): Connection {
    let connection = this.connections.get(ws);
    if (!connection) this.connections.set(ws, (connection = { ws, ready: new Set() }));
    return connection;
  }

  private mark(delivery: Delivery): void {
    if (delivery.ended) return;
    delivery.connection.ready.add(delivery);
    this.ready.add(delivery.connection);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    for (const connection of this.ready) {
      this.ready.delete(connection);
      const { ws } = connection;
      if (ws.readyState !== ws.OPEN) {
        connection.ready.clear(); // graphql-ws ends its subscriptions when the socket closes
        continue;
      }
      if (ws.bufferedAmount > HIGH_WATER_BYTES) {
        this.retryLater(connection);
        continue;
      }
      const frames: string[] = [];
      const finished: Delivery[] = [];
      for (const delivery of connection.ready) {
        connection.ready.delete(delivery);
        if (this.collect(delivery, frames)) finished.push(delivery);
      }
      sendTextFrames(ws, frames);
      for (const delivery of finished) delivery.end();
    }
  }

  /**
   * Appends the delivery's waiting messages to `frames`; true when its stream has ended. An event whose
   * payload is still executing (a resolver returned a promise) is held, and the delivery marked again
   * when it is done, so that its message goes out with the next batch of its socket, in order.
   */
  private collect(delivery: Delivery, frames: string[]): boolean {
    if (delivery.ended) return false;
    for (;;) {
      let event = delivery.held;
      if (!event) {
        const next = delivery.stream.take();
        if (!next) return false;
        if (next.done) return true;
        event = next.value;
      }
      const payload = delivery.payloadOf(event);
      if (typeof payload !== 'string') {
        if (!delivery.held) {
          delivery.held = event;
          void payload.then(() => this.mark(delivery));
        }
        return false;
      }
      delivery.held = undefined;
      frames.push(frameOf(delivery, payload));
    }
  }

  private retryLater(connection: Connection): void {
    if (connection.retry) return;
    connection.retry = setTimeout(() => {
      connection.retry = undefined;
      this.ready.add(connection);
      this.schedule();
    }, CONGESTION_RETRY_MS);
  }
}
