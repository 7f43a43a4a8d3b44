import WebSocket from 'ws';
import { mapLimit, now } from './stats.js';

/** One WebSocket: whose token it authenticates with, and one subscription per instance id listed (repeats allowed). */
export interface SocketPlan {
  token: string;
  instanceIds: string[];
}

interface StatusEvent {
  at: string;
  status: string;
}

interface Message {
  id?: string;
  type: string;
  payload?: { data?: { labInstanceStatus?: StatusEvent }; errors?: unknown[] } | unknown[];
}

/**
 * Many `labInstanceStatus` subscriptions over raw `ws` sockets speaking graphql-transport-ws
 * (connection_init, subscribe, next): far lighter than as many graphql-ws clients, so that the
 * subscriber side keeps up with the server. Operation ids are global indexes; per operation it keeps
 * only when the first READY event arrived and the event's server-side `at`.
 */
export class SubscriberPool {
  readonly readyReceivedAt: Float64Array;
  readonly readyEventAt: Float64Array;
  readonly errors: string[] = [];
  nextMessages = 0;
  private readonly gotFirst: Uint8Array;
  private readyCount = 0;
  private readonly sockets: WebSocket[] = [];
  private onReady?: () => void;

  constructor(
    private readonly wsUrl: string,
    private readonly query: string,
    readonly operations: number,
  ) {
    this.readyReceivedAt = new Float64Array(operations).fill(Number.NaN);
    this.readyEventAt = new Float64Array(operations).fill(Number.NaN);
    this.gotFirst = new Uint8Array(operations);
  }

  get socketCount(): number {
    return this.sockets.length;
  }

  get ready(): number {
    return this.readyCount;
  }

  /** Opens every socket (`concurrency` handshakes at a time); resolves when every operation has had its first event. */
  async open(plans: SocketPlan[], concurrency: number): Promise<void> {
    let base = 0;
    const bases = plans.map((p) => ((base += p.instanceIds.length), base - p.instanceIds.length));
    if (base !== this.operations) throw new Error(`plans hold ${base} operations, not ${this.operations}`);
    await mapLimit(plans, concurrency, (plan, i) => this.openSocket(plan, bases[i]));
  }

  /** Resolves once every operation has received a READY event. */
  waitForAllReady(timeoutMs: number): Promise<void> {
    if (this.readyCount === this.operations) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onReady = undefined;
        reject(new Error(`${this.operations - this.readyCount} of ${this.operations} subscriptions saw no READY within ${timeoutMs} ms`));
      }, timeoutMs);
      this.onReady = () => {
        clearTimeout(timer);
        this.onReady = undefined;
        resolve();
      };
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            ws.once('close', () => resolve());
            ws.close(1000);
            setTimeout(() => ws.terminate(), 5000).unref();
          }),
      ),
    );
  }

  private openSocket(plan: SocketPlan, base: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.wsUrl, 'graphql-transport-ws', { perMessageDeflate: false });
      this.sockets.push(ws);
      let waiting = plan.instanceIds.length;
      const fail = (why: string) => reject(new Error(`subscriber socket ${base}: ${why}`));
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${plan.token}` } })));
      ws.on('error', (err) => fail(err.message));
      ws.on('close', (code, reason) => {
        if (waiting > 0) fail(`closed (${code} ${reason.toString()}) before every subscription started`);
      });
      ws.on('message', (data: Buffer) => {
        const receivedAt = now();
        const message = JSON.parse(data.toString()) as Message;
        if (message.type === 'next') {
          if (this.onNext(Number(message.id), message, receivedAt) && --waiting === 0) resolve();
        } else if (message.type === 'connection_ack') {
          plan.instanceIds.forEach((id, k) =>
            ws.send(JSON.stringify({ id: String(base + k), type: 'subscribe', payload: { query: this.query, variables: { id } } })),
          );
        } else if (message.type === 'ping') {
          ws.send('{"type":"pong"}');
        } else if (message.type === 'error') {
          this.errors.push(JSON.stringify(message.payload));
          fail(`subscription ${message.id} refused: ${JSON.stringify(message.payload)}`);
        }
      });
    });
  }

  /** Records the event; true when it is the operation's first. */
  private onNext(index: number, message: Message, receivedAt: number): boolean {
    this.nextMessages++;
    const payload = message.payload as { data?: { labInstanceStatus?: StatusEvent }; errors?: unknown[] };
    if (payload.errors?.length) this.errors.push(JSON.stringify(payload.errors));
    const event = payload.data?.labInstanceStatus;
    if (event?.status === 'READY' && Number.isNaN(this.readyReceivedAt[index])) {
      this.readyReceivedAt[index] = receivedAt;
      this.readyEventAt[index] = Date.parse(event.at);
      if (++this.readyCount === this.operations) this.onReady?.();
    }
    if (this.gotFirst[index]) return false;
    this.gotFirst[index] = 1;
    return true;
  }
}
