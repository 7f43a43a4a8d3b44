import WebSocket from 'ws';

/**
 * A small RFB 3.8 client over a WebSocket (security None, raw encoding, the server's own 32-bit pixel
 * format), for the VNC proxy's tests and benchmark: it connects, reads framebuffer updates and sends
 * key and pointer events.
 */
export interface RfbRect {
  x: number;
  y: number;
  w: number;
  h: number;
  /** Raw pixels in the server's format (4 bytes per pixel). */
  pixels: Buffer;
}

export class RfbTestClient {
  width = 0;
  height = 0;
  name = '';
  /** Server pixel format shifts (bits), from ServerInit. */
  shifts = { red: 16, green: 8, blue: 0 };
  /** Bytes received from the server, all included. */
  received = 0;
  readonly closed: Promise<{ code: number; reason: string }>;
  private buffer: Buffer = Buffer.alloc(0);
  private waiter?: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void };
  private error?: Error;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data: Buffer) => {
      this.received += data.length;
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
      this.pump();
    });
    ws.on('close', (code) => this.fail(new Error(`closed (${code})`)));
    ws.on('error', (err) => this.fail(err));
  }

  /** Opens the WebSocket (rejecting with the HTTP status when the upgrade is refused) and does the RFB handshake. */
  static async connect(url: string, options: { protocols?: string[]; origin?: string; handshake?: boolean } = {}): Promise<RfbTestClient> {
    const ws = new WebSocket(url, options.protocols ?? ['binary'], { origin: options.origin, perMessageDeflate: false });
    const client = new RfbTestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body.trim()}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
    if (options.handshake !== false) await client.handshake();
    return client;
  }

  async handshake(): Promise<void> {
    const version = (await this.read(12)).toString('latin1');
    if (!version.startsWith('RFB 003.')) throw new Error(`not RFB: ${JSON.stringify(version)}`);
    this.send(Buffer.from('RFB 003.008\n', 'latin1'));
    const count = (await this.read(1))[0];
    const types = await this.read(count);
    if (!types.includes(1)) throw new Error('the server offers no security None');
    this.send(Buffer.from([1]));
    const result = await this.read(4);
    if (result.readUInt32BE(0) !== 0) throw new Error('security handshake failed');
    this.send(Buffer.from([1])); // ClientInit: shared
    const init = await this.read(24);
    this.width = init.readUInt16BE(0);
    this.height = init.readUInt16BE(2);
    this.shifts = { red: init[14], green: init[15], blue: init[16] };
    this.name = (await this.read(init.readUInt32BE(20))).toString('utf8');
  }

  send(data: Buffer): void {
    this.ws.send(data, { binary: true });
  }

  requestUpdate(incremental: boolean, x = 0, y = 0, w = this.width, h = this.height): void {
    const m = Buffer.alloc(10);
    m[0] = 3;
    m[1] = incremental ? 1 : 0;
    m.writeUInt16BE(x, 2);
    m.writeUInt16BE(y, 4);
    m.writeUInt16BE(w, 6);
    m.writeUInt16BE(h, 8);
    this.send(m);
  }

  key(keysym: number, down: boolean): void {
    const m = Buffer.alloc(8);
    m[0] = 4;
    m[1] = down ? 1 : 0;
    m.writeUInt32BE(keysym, 4);
    this.send(m);
  }

  pointer(x: number, y: number, buttons = 0): void {
    const m = Buffer.alloc(6);
    m[0] = 5;
    m[1] = buttons;
    m.writeUInt16BE(x, 2);
    m.writeUInt16BE(y, 4);
    this.send(m);
  }

  /** Types text as key presses (printable ASCII). */
  type(text: string): void {
    for (const ch of text) {
      this.key(ch.charCodeAt(0), true);
      this.key(ch.charCodeAt(0), false);
    }
  }

  /** Reads one FramebufferUpdate (raw rectangles only). */
  async readUpdate(): Promise<RfbRect[]> {
    const head = await this.read(4);
    if (head[0] !== 0) throw new Error(`unexpected server message ${head[0]}`);
    const rects: RfbRect[] = [];
    for (let i = 0; i < head.readUInt16BE(2); i++) {
      const r = await this.read(12);
      const [x, y, w, h] = [r.readUInt16BE(0), r.readUInt16BE(2), r.readUInt16BE(4), r.readUInt16BE(6)];
      if (r.readInt32BE(8) !== 0) throw new Error('only raw encoding is read');
      rects.push({ x, y, w, h, pixels: await this.read(w * h * 4) });
    }
    return rects;
  }

  /** The colour of pixel (x, y) of a rectangle, as [r, g, b]. */
  rgbAt(rect: RfbRect, x: number, y: number): [number, number, number] {
    const v = rect.pixels.readUInt32LE(((y - rect.y) * rect.w + (x - rect.x)) * 4);
    return [(v >>> this.shifts.red) & 255, (v >>> this.shifts.green) & 255, (v >>> this.shifts.blue) & 255];
  }

  close(): void {
    this.ws.close();
  }

  read(n: number): Promise<Buffer> {
    if (this.buffer.length >= n) return Promise.resolve(this.take(n));
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
    });
  }

  private take(n: number): Buffer {
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  private pump(): void {
    const w = this.waiter;
    if (w && this.buffer.length >= w.n) {
      this.waiter = undefined;
      w.resolve(this.take(w.n));
    }
  }

  private fail(err: Error): void {
    this.error ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
  }
}
