import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Faults } from './faults.js';
import { resourceByPlural, type KubeObject } from './resources.js';
import { failure, type Status } from './status.js';
import type { ObjectStore } from './store.js';

/**
 * KubeVirt's VNC subresource (virt-api's pkg/virt-api/rest/vnc.go and streamer.go): a WebSocket on
 * `/apis/subresources.kubevirt.io/{v1,v1alpha3}/namespaces/<ns>/virtualmachineinstances/<name>/vnc`,
 * subprotocol `plain.kubevirt.io` when the client offers it, whose binary messages carry the guest's
 * RFB stream. Before the upgrade virt-api fetches and validates the VMI: 404 NotFound
 * (`virtualmachineinstance.kubevirt.io "<name>" not found`) when it is missing, 400 BadRequest
 * ("VMI is not running") while it is not Running. A new connection drops the VM's current one (virt-api
 * passes preserveSession=false by default). Here a small RFB 3.8 server plays QEMU's: security None,
 * raw encoding, a test pattern that names the VM and echoes the text typed; every key and pointer
 * event it receives is recorded for tests.
 */

export type VncInputEvent =
  | { type: 'key'; down: boolean; keysym: number; at: number }
  | { type: 'pointer'; x: number; y: number; buttons: number; at: number };

export interface VncFramebuffer {
  width: number;
  height: number;
  /** Row-major, 3 bytes (R, G, B) per pixel. */
  rgb: Uint8Array;
}

export interface VncOptions {
  width?: number; // default 800
  height?: number; // default 600
}

const PATH = /^\/apis\/subresources\.kubevirt\.io\/(v1|v1alpha3)\/namespaces\/([^/]+)\/virtualmachineinstances\/([^/]+)\/vnc$/;
const SUBPROTOCOL = 'plain.kubevirt.io';
const MAX_INPUT_EVENTS = 10_000;

// --- The test pattern ---------------------------------------------------------------------------

/** A 5x7 bitmap font: 7 rows of 5 bits (bit 4 leftmost) per character. */
const GLYPHS: Record<string, number[]> = {
  A: [14, 17, 17, 31, 17, 17, 17], B: [30, 17, 17, 30, 17, 17, 30], C: [14, 17, 16, 16, 16, 17, 14],
  D: [30, 17, 17, 17, 17, 17, 30], E: [31, 16, 16, 30, 16, 16, 31], F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15], H: [17, 17, 17, 31, 17, 17, 17], I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12], K: [17, 18, 20, 24, 20, 18, 17], L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17], N: [17, 17, 25, 21, 19, 17, 17], O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16], Q: [14, 17, 17, 17, 21, 18, 13], R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30], T: [31, 4, 4, 4, 4, 4, 4], U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4], W: [17, 17, 17, 21, 21, 21, 10], X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 17, 10, 4, 4, 4], Z: [31, 1, 2, 4, 8, 16, 31],
  '0': [14, 17, 19, 21, 25, 17, 14], '1': [4, 12, 4, 4, 4, 4, 14], '2': [14, 17, 1, 2, 4, 8, 31],
  '3': [31, 2, 4, 2, 1, 17, 14], '4': [2, 6, 10, 18, 31, 2, 2], '5': [31, 16, 30, 1, 1, 17, 14],
  '6': [6, 8, 16, 30, 17, 17, 14], '7': [31, 1, 2, 4, 8, 8, 8], '8': [14, 17, 17, 14, 17, 17, 14],
  '9': [14, 17, 17, 15, 1, 2, 12],
  '-': [0, 0, 0, 31, 0, 0, 0], '.': [0, 0, 0, 0, 0, 12, 12], ':': [0, 12, 12, 0, 12, 12, 0],
  '/': [0, 1, 2, 4, 8, 16, 0], _: [0, 0, 0, 0, 0, 0, 31], ' ': [0, 0, 0, 0, 0, 0, 0], '>': [16, 8, 4, 2, 4, 8, 16],
};
const UNKNOWN_GLYPH = [31, 17, 17, 17, 17, 17, 31];

/** SMPTE-like bars: white, yellow, cyan, green, magenta, red, blue, black. */
export const TEST_PATTERN_BARS: ReadonlyArray<readonly [number, number, number]> = [
  [255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0], [255, 0, 255], [255, 0, 0], [0, 0, 255], [0, 0, 0],
];
const BAND: readonly [number, number, number] = [16, 24, 48];
const INK: readonly [number, number, number] = [255, 255, 255];

class Screen implements VncFramebuffer {
  readonly rgb: Uint8Array;
  /** Bumped on every change; encodings are cached per version. */
  version = 0;
  typed = '';
  private readonly barsBottom: number;

  constructor(
    readonly width: number,
    readonly height: number,
    private readonly title: string,
  ) {
    this.rgb = new Uint8Array(width * height * 3);
    this.barsBottom = Math.floor(height * 0.6);
    const barWidth = Math.ceil(width / TEST_PATTERN_BARS.length);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const color = y < this.barsBottom ? TEST_PATTERN_BARS[Math.min(TEST_PATTERN_BARS.length - 1, Math.floor(x / barWidth))] : BAND;
        this.rgb.set(color, (y * width + x) * 3);
      }
    }
    this.text(this.title, 16, this.barsBottom + 16, 4);
    this.drawTyped();
  }

  /** The rectangle the typed line occupies: what an incremental update sends after a key. */
  get typedArea() {
    const y = this.barsBottom + 16 + 7 * 4 + 16;
    return { x: 0, y, w: this.width, h: Math.min(7 * 3 + 4, this.height - y) };
  }

  type(keysym: number): void {
    let next = this.typed;
    if (keysym >= 0x20 && keysym <= 0x7e) next += String.fromCharCode(keysym);
    else if (keysym === 0xff08) next = next.slice(0, -1); // BackSpace
    else if (keysym === 0xff0d) next = ''; // Return: a fresh line
    else return;
    this.typed = next.slice(-60);
    this.drawTyped();
    this.version++;
  }

  private drawTyped(): void {
    const area = this.typedArea;
    if (area.h <= 0) return;
    for (let y = area.y; y < area.y + area.h; y++) {
      for (let x = 0; x < this.width; x++) this.rgb.set(BAND, (y * this.width + x) * 3);
    }
    this.text(`> ${this.typed}`, 16, area.y + 2, 3);
  }

  private text(s: string, x0: number, y0: number, scale: number): void {
    let x = x0;
    for (const ch of s.toUpperCase()) {
      const glyph = GLYPHS[ch] ?? UNKNOWN_GLYPH;
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++) {
          if (!(glyph[row] & (16 >> col))) continue;
          for (let dy = 0; dy < scale; dy++) {
            for (let dx = 0; dx < scale; dx++) {
              const px = x + col * scale + dx;
              const py = y0 + row * scale + dy;
              if (px < this.width && py < this.height) this.rgb.set(INK, (py * this.width + px) * 3);
            }
          }
        }
      }
      x += 6 * scale;
    }
  }
}

// --- RFB ----------------------------------------------------------------------------------------

interface PixelFormat {
  bitsPerPixel: number;
  bigEndian: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** What QEMU announces: 32 bits, depth 24, little-endian, true colour, red at bit 16. */
const SERVER_FORMAT: PixelFormat = { bitsPerPixel: 32, bigEndian: false, redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0 };

function encodePixels(screen: Screen, pf: PixelFormat, x0: number, y0: number, w: number, h: number): Buffer {
  const bpp = pf.bitsPerPixel / 8;
  const out = Buffer.allocUnsafe(w * h * bpp);
  const { rgb, width } = screen;
  let o = 0;
  const scale = (v: number, max: number) => (max === 255 ? v : Math.round((v * max) / 255));
  for (let y = y0; y < y0 + h; y++) {
    let i = (y * width + x0) * 3;
    for (let x = 0; x < w; x++, i += 3) {
      const v = ((scale(rgb[i], pf.redMax) << pf.redShift) | (scale(rgb[i + 1], pf.greenMax) << pf.greenShift) | (scale(rgb[i + 2], pf.blueMax) << pf.blueShift)) >>> 0;
      if (bpp === 4) {
        if (pf.bigEndian) out.writeUInt32BE(v, o);
        else out.writeUInt32LE(v, o);
      } else if (bpp === 2) {
        if (pf.bigEndian) out.writeUInt16BE(v & 0xffff, o);
        else out.writeUInt16LE(v & 0xffff, o);
      } else out[o] = v & 0xff;
      o += bpp;
    }
  }
  return out;
}

function serverInit(screen: Screen, name: string): Buffer {
  const title = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(24 + title.length);
  b.writeUInt16BE(screen.width, 0);
  b.writeUInt16BE(screen.height, 2);
  b.writeUInt8(32, 4); // bits per pixel
  b.writeUInt8(24, 5); // depth
  b.writeUInt8(0, 6); // big-endian
  b.writeUInt8(1, 7); // true colour
  b.writeUInt16BE(255, 8);
  b.writeUInt16BE(255, 10);
  b.writeUInt16BE(255, 12);
  b.writeUInt8(SERVER_FORMAT.redShift, 14);
  b.writeUInt8(SERVER_FORMAT.greenShift, 15);
  b.writeUInt8(SERVER_FORMAT.blueShift, 16);
  b.writeUInt32BE(title.length, 20);
  title.copy(b, 24);
  return b;
}

/** One client's RFB session over a WebSocket. */
class RfbSession {
  private buffer: Buffer = Buffer.alloc(0);
  private state: 'version' | 'security' | 'init' | 'normal' | 'closed' = 'version';
  private minor = 8;
  private format: PixelFormat = SERVER_FORMAT;
  /** An incremental update request waiting for the screen to change. */
  private waiting: { x: number; y: number; w: number; h: number } | undefined;
  private sentVersion = -1;
  private cache: { version: number; key: string; frame: Buffer } | undefined;

  constructor(
    readonly ws: WebSocket,
    private readonly screen: Screen,
    private readonly name: string,
    private readonly record: (event: VncInputEvent) => void,
  ) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
      try {
        this.parse();
      } catch {
        this.close();
      }
    });
    ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
  }

  close(): void {
    this.state = 'closed';
    this.ws.terminate();
  }

  /** The screen changed: answer a waiting incremental request. */
  changed(): void {
    if (!this.waiting || this.state !== 'normal') return;
    const area = this.screen.typedArea;
    this.waiting = undefined;
    this.sendUpdate(area.x, area.y, area.w, area.h);
  }

  private take(n: number): Buffer | undefined {
    if (this.buffer.length < n) return undefined;
    const head = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return head;
  }

  private parse(): void {
    for (;;) {
      if (this.state === 'version') {
        const v = this.take(12);
        if (!v) return;
        const m = /^RFB 003\.(\d{3})\n$/.exec(v.toString('latin1'));
        if (!m) return this.close();
        this.minor = Number(m[1]) >= 8 ? 8 : Number(m[1]) >= 7 ? 7 : 3;
        if (this.minor === 3) {
          const sec = Buffer.alloc(4);
          sec.writeUInt32BE(1, 0); // None, chosen by the server
          this.ws.send(sec);
          this.state = 'init';
        } else {
          this.ws.send(Buffer.from([1, 1])); // one type: None
          this.state = 'security';
        }
      } else if (this.state === 'security') {
        const choice = this.take(1);
        if (!choice) return;
        if (choice[0] !== 1) return this.close();
        if (this.minor === 8) this.ws.send(Buffer.alloc(4)); // SecurityResult OK
        this.state = 'init';
      } else if (this.state === 'init') {
        if (!this.take(1)) return; // ClientInit (shared flag)
        this.ws.send(serverInit(this.screen, this.name));
        this.state = 'normal';
      } else if (this.state === 'normal') {
        if (!this.message()) return;
      } else return;
    }
  }

  /** One client message; false when it is not complete yet. */
  private message(): boolean {
    const b = this.buffer;
    if (b.length < 1) return false;
    const need = (n: number) => (b.length >= n ? this.take(n) : undefined);
    switch (b[0]) {
      case 0: {
        const m = need(20);
        if (!m) return false;
        const bpp = m[4];
        if (bpp !== 8 && bpp !== 16 && bpp !== 32) throw new Error('unsupported pixel format');
        this.format = {
          bitsPerPixel: bpp,
          bigEndian: m[6] !== 0,
          redMax: m.readUInt16BE(8),
          greenMax: m.readUInt16BE(10),
          blueMax: m.readUInt16BE(12),
          redShift: m[14],
          greenShift: m[15],
          blueShift: m[16],
        };
        this.cache = undefined;
        return true;
      }
      case 2: {
        if (b.length < 4) return false;
        return Boolean(need(4 + 4 * b.readUInt16BE(2)));
      }
      case 3: {
        const m = need(10);
        if (!m) return false;
        const incremental = m[1] !== 0;
        const x = m.readUInt16BE(2);
        const y = m.readUInt16BE(4);
        const w = Math.min(m.readUInt16BE(6), this.screen.width - x);
        const h = Math.min(m.readUInt16BE(8), this.screen.height - y);
        if (incremental && this.sentVersion === this.screen.version) this.waiting = { x, y, w, h };
        else if (incremental) this.sendUpdate(0, 0, this.screen.width, this.screen.height);
        else this.sendUpdate(x, y, Math.max(0, w), Math.max(0, h));
        return true;
      }
      case 4: {
        const m = need(8);
        if (!m) return false;
        const event: VncInputEvent = { type: 'key', down: m[1] !== 0, keysym: m.readUInt32BE(4), at: Date.now() };
        if (event.down) this.screen.type(event.keysym);
        this.record(event);
        return true;
      }
      case 5: {
        const m = need(6);
        if (!m) return false;
        this.record({ type: 'pointer', buttons: m[1], x: m.readUInt16BE(2), y: m.readUInt16BE(4), at: Date.now() });
        return true;
      }
      case 6: {
        if (b.length < 8) return false;
        const length = Math.abs(b.readInt32BE(4));
        return Boolean(need(8 + length));
      }
      default:
        throw new Error(`unsupported client message ${b[0]}`);
    }
  }

  private sendUpdate(x: number, y: number, w: number, h: number): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.sentVersion = this.screen.version;
    const full = x === 0 && y === 0 && w === this.screen.width && h === this.screen.height;
    const key = `${JSON.stringify(this.format)}`;
    let pixels: Buffer;
    if (full && this.cache && this.cache.version === this.screen.version && this.cache.key === key) pixels = this.cache.frame;
    else {
      pixels = encodePixels(this.screen, this.format, x, y, w, h);
      if (full) this.cache = { version: this.screen.version, key, frame: pixels };
    }
    const header = Buffer.alloc(16);
    header.writeUInt8(0, 0); // FramebufferUpdate
    header.writeUInt16BE(1, 2);
    header.writeUInt16BE(x, 4);
    header.writeUInt16BE(y, 6);
    header.writeUInt16BE(w, 8);
    header.writeUInt16BE(h, 10);
    header.writeInt32BE(0, 12); // raw
    this.ws.send(Buffer.concat([header, pixels]));
  }
}

// --- The subresource ------------------------------------------------------------------------------

function writeStatus(socket: Duplex, status: Status): void {
  const body = JSON.stringify(status);
  const reason = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' }[status.code] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status.code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export class SimulatedVnc {
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  private readonly screens = new Map<string, Screen>();
  private readonly sessions = new Map<string, Set<RfbSession>>();
  private readonly inputs = new Map<string, VncInputEvent[]>();
  private readonly width: number;
  private readonly height: number;

  constructor(
    private readonly store: ObjectStore,
    private readonly faults: Faults,
    options: VncOptions = {},
  ) {
    this.width = options.width ?? 800;
    this.height = options.height ?? 600;
    const vmis = resourceByPlural('virtualmachineinstances');
    // A VMI that stops running, or is gone, takes its console with it (the domain's VNC socket closes).
    store.onEvent((def, event) => {
      if (def !== vmis) return;
      const key = keyOf(event.object);
      const running = event.type !== 'DELETED' && isRunning(event.object);
      if (!running) for (const s of this.sessions.get(key) ?? []) s.close();
      if (event.type === 'DELETED') {
        this.screens.delete(key);
        this.inputs.delete(key);
      }
    });
  }

  /** Serves the upgrade when it is the VNC subresource's path; false for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const m = PATH.exec(new URL(req.url ?? '/', 'http://simulated').pathname);
    if (!m) return false;
    const namespace = decodeURIComponent(m[2]);
    const name = decodeURIComponent(m[3]);
    const refusal = this.refusal(namespace, name);
    if (refusal === 'reset') socket.destroy();
    else if (refusal === 'timeout') socket.on('error', () => undefined); // accepted, never answered
    else if (refusal) writeStatus(socket, refusal);
    else this.wss.handleUpgrade(req, socket, head, (ws) => this.open(ws, `${namespace}/${name}`, name));
    return true;
  }

  /** What virt-api (or the API server in front of it) answers instead of upgrading, if anything. */
  private refusal(namespace: string, name: string): Status | 'reset' | 'timeout' | undefined {
    const outage = this.faults.outage();
    if (outage === 'reset') return 'reset';
    if (outage) return failure(503, 'the server is currently unable to handle the request', 'ServiceUnavailable');
    const fault = this.faults.take('get', 'virtualmachineinstances/vnc');
    if (fault === 'reset' || fault === 'timeout') return fault;
    if (typeof fault === 'number') {
      // The API server's authorizer, before the request reaches virt-api: RBAC without the subresource.
      const message =
        fault === 403
          ? `virtualmachineinstances.subresources.kubevirt.io "${name}" is forbidden: User "system:serviceaccount:lab-orchestrator:lab-orchestrator" ` +
            `cannot get resource "virtualmachineinstances/vnc" in API group "subresources.kubevirt.io" in the namespace "${namespace}"`
          : `injected failure ${fault}`;
      return failure(fault, message, undefined, { name, group: 'subresources.kubevirt.io', kind: 'virtualmachineinstances' });
    }
    const vmi = this.store.get(resourceByPlural('virtualmachineinstances'), namespace, name);
    if (!vmi) return failure(404, `virtualmachineinstance.kubevirt.io "${name}" not found`, 'NotFound', { name, group: 'kubevirt.io', kind: 'virtualmachineinstance' });
    if (!isRunning(vmi)) return failure(400, 'VMI is not running', 'BadRequest');
    return undefined;
  }

  private open(ws: WebSocket, key: string, name: string): void {
    // KubeVirt's default (preserveSession=false): the new connection drops the current one.
    for (const old of this.sessions.get(key) ?? []) old.close();
    const session = new RfbSession(ws, this.screen(key, name), name, (event) => {
      const list = this.inputs.get(key) ?? [];
      list.push(event);
      if (list.length > MAX_INPUT_EVENTS) list.splice(0, list.length - MAX_INPUT_EVENTS);
      this.inputs.set(key, list);
      if (event.type === 'key' && event.down) for (const s of this.sessions.get(key) ?? []) s.changed();
    });
    let set = this.sessions.get(key);
    if (!set) this.sessions.set(key, (set = new Set()));
    set.add(session);
    ws.on('close', () => {
      set.delete(session);
      if (!set.size && this.sessions.get(key) === set) this.sessions.delete(key);
    });
    ws.on('error', () => undefined);
  }

  private screen(key: string, name: string): Screen {
    let screen = this.screens.get(key);
    if (!screen) this.screens.set(key, (screen = new Screen(this.width, this.height, name)));
    return screen;
  }

  inputEvents(namespace: string, name: string): VncInputEvent[] {
    return (this.inputs.get(`${namespace}/${name}`) ?? []).map((e) => ({ ...e }));
  }

  connectionCount(namespace?: string, name?: string): number {
    let n = 0;
    for (const [key, set] of this.sessions) {
      const [ns, vm] = key.split('/');
      if ((namespace === undefined || ns === namespace) && (name === undefined || vm === name)) n += set.size;
    }
    return n;
  }

  framebuffer(namespace: string, name: string): VncFramebuffer {
    const screen = this.screen(`${namespace}/${name}`, name);
    return { width: screen.width, height: screen.height, rgb: screen.rgb.slice() };
  }

  stop(): void {
    for (const set of this.sessions.values()) for (const s of set) s.close();
    this.sessions.clear();
    this.wss.close();
  }
}

const keyOf = (obj: KubeObject) => `${obj.metadata.namespace}/${obj.metadata.name}`;
const isRunning = (vmi: KubeObject) => (vmi as { status?: { phase?: string } }).status?.phase === 'Running';
