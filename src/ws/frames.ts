import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** ws's own fields that say whether a frame written straight to the socket keeps its order. */
interface WsInternals {
  _socket?: Socket;
  _sender?: { _state: number; _queue: unknown[] };
}

/** ws's Sender state when it is neither compressing nor reading a Blob: it writes synchronously. */
const SENDER_IDLE = 0;

/**
 * The socket under `ws` when frames may be written to it directly: the connection is open, no
 * extension (permessage-deflate) is in use, and ws's Sender has nothing queued, so a frame written
 * here goes out in the order of every ws.send() and ping() before and after it.
 */
function rawSocketOf(ws: WebSocket): Socket | undefined {
  const w = ws as unknown as WsInternals;
  if (ws.readyState !== ws.OPEN || ws.extensions || !w._socket || !w._sender) return undefined;
  if (w._sender._state !== SENDER_IDLE || w._sender._queue.length) return undefined;
  return w._socket;
}

const headerLength = (n: number) => (n < 126 ? 2 : n < 65_536 ? 4 : 10);

/**
 * Sends text messages as one write of unmasked, final text frames (RFC 6455 §5.2): a server fanning one
 * event out to thousands of subscriptions makes one system call per connection instead of one per
 * message. Falls back to ws.send() whenever ws could be holding frames back.
 */
export function sendTextFrames(ws: WebSocket, messages: string[]): void {
  if (!messages.length) return;
  const socket = rawSocketOf(ws);
  if (!socket) {
    for (const message of messages) ws.send(message);
    return;
  }
  const lengths = messages.map((m) => Buffer.byteLength(m));
  const total = lengths.reduce((sum, n) => sum + headerLength(n) + n, 0);
  const buffer = Buffer.allocUnsafe(total);
  let offset = 0;
  for (let i = 0; i < messages.length; i++) {
    const n = lengths[i];
    buffer[offset] = 0x81; // FIN, opcode 1 (text)
    if (n < 126) {
      buffer[offset + 1] = n;
    } else if (n < 65_536) {
      buffer[offset + 1] = 126;
      buffer.writeUInt16BE(n, offset + 2);
    } else {
      buffer[offset + 1] = 127;
      buffer.writeBigUInt64BE(BigInt(n), offset + 2);
    }
    offset += headerLength(n);
    offset += buffer.write(messages[i], offset, 'utf8');
  }
  socket.write(buffer);
}
