/**
 * Reads the client-to-server half of an RFB stream (RFC 6143, plus the extensions noVNC and QEMU
 * speak) as it is relayed, without holding it: only message headers are kept, bodies are skipped by
 * count. It reports the input events (KeyEvent 4, PointerEvent 5, and QEMU's extended key event
 * 255/0) so that the proxy can record the user's last activity. A message it does not know loses the
 * framing; it then stops reading and the relay goes on unchanged.
 */

type Phase = 'version' | 'security' | 'vnc-auth' | 'client-init' | 'messages' | 'lost';

/** Bytes needed to know a message's length, by type; and its length from those bytes. */
const MESSAGES: Record<number, { head: number; length: (h: Buffer) => number; input?: (h: Buffer) => boolean }> = {
  0: { head: 1, length: () => 20 }, // SetPixelFormat
  2: { head: 4, length: (h) => 4 + 4 * h.readUInt16BE(2) }, // SetEncodings
  3: { head: 1, length: () => 10 }, // FramebufferUpdateRequest
  4: { head: 1, length: () => 8, input: () => true }, // KeyEvent
  5: { head: 2, length: (h) => (h[1] & 0x80 ? 7 : 6), input: () => true }, // PointerEvent (marker bit: ExtendedMouseButtons)
  6: { head: 8, length: (h) => 8 + Math.abs(h.readInt32BE(4)) }, // ClientCutText (negative: extended clipboard)
  150: { head: 1, length: () => 10 }, // EnableContinuousUpdates
  248: { head: 9, length: (h) => 9 + h[8] }, // ClientFence
  250: { head: 1, length: () => 4 }, // xvp
  251: { head: 8, length: (h) => 8 + 16 * h[6] }, // SetDesktopSize
  255: {
    // QEMU client messages: 0 extended key event; 1 audio (0 enable, 1 disable, 2 set format)
    head: 4,
    length: (h) => (h[1] === 0 ? 12 : h[1] === 1 ? (h.readUInt16BE(2) === 2 ? 10 : 4) : -1),
    input: (h) => h[1] === 0,
  },
};

export class RfbClientStream {
  private phase: Phase = 'version';
  private minor = 8;
  /** Header bytes of the current item, until its length is known. */
  private head: Buffer = Buffer.alloc(0);
  /** Bytes of the current message still to skip. */
  private skip = 0;
  /** Input events seen so far. */
  inputs = 0;

  get lost(): boolean {
    return this.phase === 'lost';
  }

  /** Reads one relayed chunk; returns how many input events it saw. */
  feed(chunk: Buffer): number {
    const before = this.inputs;
    try {
      this.read(chunk);
    } catch {
      this.lose(); // never let the inspection break the relay
    }
    return this.inputs - before;
  }

  private read(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && this.phase !== 'lost') {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const want = this.headerSize();
      const n = Math.min(want - this.head.length, chunk.length - i);
      this.head = this.head.length ? Buffer.concat([this.head, chunk.subarray(i, i + n)]) : chunk.subarray(i, i + n);
      i += n;
      if (this.head.length === want) this.advance();
    }
    if (this.head.length && this.head.buffer === chunk.buffer) this.head = Buffer.from(this.head); // keep no reference to the frame
  }

  private headerSize(): number {
    switch (this.phase) {
      case 'version':
        return 12;
      case 'security':
        return 1;
      case 'vnc-auth':
        return 16;
      case 'client-init':
        return 1;
      default: {
        if (!this.head.length) return 1;
        const def = MESSAGES[this.head[0]];
        return def ? def.head : 1;
      }
    }
  }

  /** The current header is complete: move on. */
  private advance(): void {
    const h = this.head;
    switch (this.phase) {
      case 'version': {
        const m = /^RFB 003\.(\d{3})\n$/.exec(h.toString('latin1'));
        if (!m) return this.lose();
        this.minor = Number(m[1]);
        // 3.3: the server chooses the security type and the client says nothing (QEMU under KubeVirt: None).
        this.phase = this.minor >= 7 ? 'security' : 'client-init';
        break;
      }
      case 'security':
        if (h[0] === 2) this.phase = 'vnc-auth';
        else if (h[0] === 1) this.phase = 'client-init';
        else return this.lose(); // a security type with its own exchange: not followed
        break;
      case 'vnc-auth':
        this.phase = 'client-init';
        break;
      case 'client-init':
        this.phase = 'messages';
        break;
      default: {
        const def = MESSAGES[h[0]];
        if (!def) return this.lose();
        if (h.length < def.head) return; // the type is known: read the rest of its header
        const length = def.length(h);
        if (length < h.length) return this.lose();
        if (def.input?.(h)) this.inputs++;
        this.skip = length - h.length;
      }
    }
    this.head = Buffer.alloc(0);
  }

  private lose(): void {
    this.phase = 'lost';
    this.head = Buffer.alloc(0);
    this.skip = 0;
  }
}
