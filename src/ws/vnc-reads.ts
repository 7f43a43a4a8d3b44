import type { OnReadOpts } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * KubeVirt's side of a console read into buffers the proxy owns (the `onread` option of `net.connect`
 * and `tls.connect`, which `http.request` passes on through its agent), instead of a new Buffer per
 * read as a socket's 'data' events bring.
 *
 * Why: the Buffer of each read is allocated outside V8's heap, and V8 counts such external memory
 * towards its next full collection: when it has grown by 64 MB since its last low point, V8 marks
 * and compacts the whole heap. A scavenge would free those short-lived buffers cheaply, but the relay
 * allocates next to nothing on the JavaScript heap, so none comes. Relaying a raw framebuffer at a few
 * hundred MB/s, the server (its whole heap: the app, 80 MB and more) was marked and compacted several
 * times a second, which was most of the relay's CPU. With its own buffers the relay allocates no
 * memory outside the heap per read.
 *
 * A buffer whose bytes are being written to the browser is read into again only once that write has
 * completed. Mostly the kernel takes a chunk at once (the write is done when `write()` returns) and one
 * buffer serves every read; while the browser lags, a few more are in use, as many as the relay's
 * backpressure lets bytes wait.
 *
 * Until the relay takes the reads over (`relayTo`), they are handed on as copies in 'data' events:
 * Node's HTTP client listens for those to read the answer to the upgrade request. A socket that does
 * not take `onread` (one through an HTTP or SOCKS proxy agent, which `tls.connect`s over a socket of its
 * own) emits 'data' as usual, and the relay reads those.
 */

/** As much as a read of Node's own asks for. */
const READ_SIZE = 64 * 1024;
/** Spare buffers kept for the next burst; more are left to the garbage collector. */
const MAX_SPARE = 4;

export class UpstreamReads {
  private readonly spare: Buffer[] = [];
  private current: Buffer = Buffer.allocUnsafeSlow(READ_SIZE);
  /** `current` holds bytes of a write still under way: the next read needs another buffer. */
  private lent = false;
  private socket?: Duplex;
  private relay?: (chunk: Buffer) => void;

  /** The `onread` option for the request. */
  readonly onread: OnReadOpts = {
    buffer: () => {
      if (this.lent) {
        this.current = this.spare.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
        this.lent = false;
      }
      return this.current;
    },
    callback: (n) => {
      const chunk = this.current.subarray(0, n);
      if (this.relay) this.relay(chunk);
      else this.socket?.emit('data', Buffer.from(chunk)); // the HTTP client's handshake: a copy of its own
      return true;
    },
  };

  /** The request's socket (its 'socket' event), for the handshake's 'data' events. */
  handshakeOn(socket: Duplex): void {
    this.socket = socket;
  }

  /** From now on, each read goes to `relay` (which calls `write` at most once for it). */
  relayTo(relay: (chunk: Buffer) => void): void {
    this.relay = relay;
  }

  /**
   * Writes `data`, all or part of the read being relayed, to `to`; the buffer it lies in is read into
   * again once the write has completed.
   */
  write(to: Duplex, data: Buffer): void {
    const buffer = this.current;
    let queued = false;
    to.write(data, () => {
      if (queued && this.spare.length < MAX_SPARE) this.spare.push(buffer);
    });
    // Nothing waiting to be written: the kernel has taken the chunk, and the buffer is free again.
    if (to.writableLength > 0) {
      queued = true;
      this.lent = true;
    }
  }
}
