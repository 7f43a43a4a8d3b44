import { describe, expect, it } from 'vitest';
import { RfbClientStream } from '../src/ws/vnc-rfb.js';

/** A client's side of an RFB 3.8 session as noVNC sends it, message by message. */
function session(): Buffer[] {
  const encodings = Buffer.alloc(4 + 4 * 3);
  encodings[0] = 2;
  encodings.writeUInt16BE(3, 2);
  const pixelFormat = Buffer.alloc(20);
  const fbur = Buffer.from([3, 1, 0, 0, 0, 0, 3, 32, 2, 88]);
  const key = (down: number) => Buffer.from([4, down, 0, 0, 0, 0, 0, 0x61]);
  const pointer = Buffer.from([5, 1, 0, 10, 0, 20]);
  const extendedPointer = Buffer.from([5, 0x81, 0, 10, 0, 20, 0]);
  const cut = Buffer.concat([Buffer.from([6, 0, 0, 0, 0, 0, 0, 5]), Buffer.from('hello')]);
  const extendedCut = Buffer.concat([Buffer.from([6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfc]), Buffer.alloc(4)]);
  const qemuKey = Buffer.from([255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]);
  const fence = Buffer.from([248, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2]);
  const desktopSize = Buffer.concat([Buffer.from([251, 0, 3, 32, 2, 88, 1, 0]), Buffer.alloc(16)]);
  return [
    Buffer.from('RFB 003.008\n'), Buffer.from([1]), Buffer.from([1]),
    pixelFormat, encodings, fbur, key(1), key(0), pointer, cut, extendedCut, extendedPointer, qemuKey, fence, desktopSize, fbur,
  ];
}

describe('RfbClientStream', () => {
  it('counts the key and pointer events (4, 5, QEMU 255/0) however the stream is cut', () => {
    const whole = Buffer.concat(session());
    for (const size of [1, 2, 3, 7, 13, whole.length]) {
      const stream = new RfbClientStream();
      let inputs = 0;
      for (let i = 0; i < whole.length; i += size) inputs += stream.feed(whole.subarray(i, i + size));
      expect({ size, inputs, lost: stream.lost }).toEqual({ size, inputs: 5, lost: false });
    }
  });

  it('stops reading, and never throws, on a message it does not know', () => {
    const stream = new RfbClientStream();
    stream.feed(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1])]));
    expect(stream.feed(Buffer.from([99, 1, 2, 3]))).toBe(0);
    expect(stream.lost).toBe(true);
    expect(stream.feed(Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]))).toBe(0);
  });
});
