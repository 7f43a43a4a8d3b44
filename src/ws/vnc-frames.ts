/**
 * WebSocket frames (RFC 6455) as the VNC proxy relays them: byte for byte, never re-framed. A frame a
 * browser sends is masked, as the proxy must send it upstream; a frame KubeVirt sends is not, as the
 * browser must receive it; no extension is negotiated on either side. So the proxy only needs to know
 * where frames end (to put a close frame of its own between two of them), and to read the payload of
 * the browser's frames (the RFB input events).
 */

export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export class FrameReader {
  private head: Buffer = Buffer.alloc(0);
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;
  /** The data frame's opcode (continuations keep it); control frames are not data. */
  private opcode = 0;
  private control = false;
  private mask: Buffer | undefined;
  private maskOffset = 0;
  /** A close frame has passed. */
  sawClose = false;

  /** `payload`: the unmasked payload bytes of data frames (binary, text, continuation), as they pass. */
  constructor(private readonly payload?: (data: Buffer, opcode: number) => void) {}

  /** True between two frames. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.head.length === 0;
  }

  /**
   * Reads `chunk` from its start; with `stopAtBoundary`, only up to the end of the frame under way
   * (0 when already between frames). Returns the number of bytes read.
   */
  consume(chunk: Buffer, stopAtBoundary = false): number {
    let i = 0;
    while (i < chunk.length) {
      if (stopAtBoundary && this.atBoundary) return i;
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        if (this.payload && !this.control) this.deliver(chunk.subarray(i, i + n));
        this.remaining -= n;
        i += n;
        continue;
      }
      // A header: 2 bytes, then 2 or 8 bytes of length, then 4 of mask when masked.
      const need = this.headerLength();
      const n = Math.min(need - this.head.length, chunk.length - i);
      this.head = this.head.length ? Buffer.concat([this.head, chunk.subarray(i, i + n)]) : Buffer.from(chunk.subarray(i, i + n));
      i += n;
      if (this.head.length === this.headerLength()) this.startFrame();
    }
    return i;
  }

  private headerLength(): number {
    if (this.head.length < 2) return 2;
    const len7 = this.head[1] & 0x7f;
    const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    return 2 + ext + (this.head[1] & 0x80 ? 4 : 0);
  }

  private startFrame(): void {
    const h = this.head;
    const opcode = h[0] & 0x0f;
    const len7 = h[1] & 0x7f;
    let offset = 2;
    let length = len7;
    if (len7 === 126) {
      length = h.readUInt16BE(2);
      offset = 4;
    } else if (len7 === 127) {
      length = Number(h.readBigUInt64BE(2));
      offset = 10;
    }
    this.mask = h[1] & 0x80 ? Buffer.from(h.subarray(offset, offset + 4)) : undefined;
    this.maskOffset = 0;
    // A continuation keeps the data frame's opcode; a control frame may come between fragments.
    this.control = opcode >= 8;
    if (!this.control && opcode !== OPCODE.continuation) this.opcode = opcode;
    if (opcode === OPCODE.close) this.sawClose = true;
    this.remaining = length;
    this.head = Buffer.alloc(0);
  }

  private deliver(data: Buffer): void {
    if (!this.mask) return this.payload!(data, this.opcode);
    const out = Buffer.allocUnsafe(data.length);
    for (let k = 0; k < data.length; k++) out[k] = data[k] ^ this.mask[(this.maskOffset + k) & 3];
    this.maskOffset = (this.maskOffset + data.length) & 3;
    this.payload!(out, this.opcode);
  }
}

/** An unmasked close frame (server to browser), reason cut to fit the 125-byte control payload. */
export function closeFrame(code: number, reason: string): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > 123) text = Buffer.from(text.subarray(0, 120).toString('utf8').replace(/\uFFFD$/, '') + '...', 'utf8');
  const frame = Buffer.alloc(4 + text.length);
  frame[0] = 0x80 | OPCODE.close;
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}
