'use strict';
// Framing of the plugbox serve socket: a 4-byte little-endian length, then
// that many bytes of one Envelope, at most 16 MiB (docs/protocol.md). The
// reader checks the length before it keeps anything and holds only the
// bytes that really arrived, so a peer announcing 4 GiB costs nothing.

const FRAME_MAX = 16 * 1024 * 1024;

class FrameError extends Error {}

function frame(payload) {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.set(payload, 4);
  return out;
}

class FrameReader {
  constructor(max = FRAME_MAX) {
    this.max = max;
    this.chunks = [];
    this.have = 0; // bytes in chunks
    this.need = -1; // payload length of the frame begun, -1 before its header
  }

  // Feeds bytes; calls onFrame(payload) for each whole frame. Throws a
  // FrameError for a length over the limit (the stream is then unusable).
  push(chunk, onFrame) {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.have += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.have < 4) return;
        const n = this.take(4).readUInt32LE(0);
        if (n > this.max) throw new FrameError(`announced a frame of ${n} bytes, over the limit of ${this.max}`);
        this.need = n;
      }
      if (this.have < this.need) return;
      const payload = this.take(this.need);
      this.need = -1;
      onFrame(payload);
    }
  }

  // Bytes of an unfinished frame (its header included): non-zero when the
  // stream ends, the peer stopped inside a frame.
  get partial() {
    return this.have + (this.need >= 0 ? 4 : 0);
  }

  take(n) {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    let out;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.have -= n;
    return out;
  }
}

module.exports = { FRAME_MAX, FrameError, FrameReader, frame };
