// Bit-level helpers for bzip2, whose bit stream is MSB-first.

/** Up to 32 bits at bit offset `pos` of `buf` (bit 0 = most significant bit of byte 0). */
export function readBits(buf: Uint8Array, pos: number, n: number): number {
  let v = 0;
  let p = pos;
  let remaining = n;
  while (remaining > 0) {
    const off = p & 7;
    const take = Math.min(8 - off, remaining);
    const bits = (buf[p >>> 3]! >>> (8 - off - take)) & ((1 << take) - 1);
    v = v * (1 << take) + bits;
    remaining -= take;
    p += take;
  }
  return v;
}

/** Accumulates bits MSB-first into bytes; `take()` hands out the completed bytes. */
export class BitSink {
  private out: Buffer;
  private len = 0;
  private acc = 0; // pending high bits of the next byte, right-aligned in the top `accBits` of a byte
  private accBits = 0;

  constructor(capacity = 64 * 1024) {
    this.out = Buffer.allocUnsafe(capacity);
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.out.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.len + extra));
    this.out.copy(next, 0, 0, this.len);
    this.out = next;
  }

  /** Write the low `n` bits of `value` (n <= 32), most significant first. */
  bits(value: number, n: number): void {
    this.ensure(5);
    for (let i = n - 1; i >= 0; i--) {
      this.acc |= ((value >>> i) & 1) << (7 - this.accBits);
      if (++this.accBits === 8) {
        this.out[this.len++] = this.acc;
        this.acc = 0;
        this.accBits = 0;
      }
    }
  }

  /** Append whole bytes of `src` [from, to) at the current (possibly unaligned) bit position. */
  bytes(src: Uint8Array, from: number, to: number): void {
    this.ensure(to - from + 1);
    const out = this.out;
    let len = this.len;
    if (this.accBits === 0) {
      out.set(src.subarray(from, to), len);
      this.len = len + (to - from);
      return;
    }
    const k = this.accBits;
    let acc = this.acc;
    for (let i = from; i < to; i++) {
      const b = src[i]!;
      out[len++] = acc | (b >>> k);
      acc = (b << (8 - k)) & 0xff;
    }
    this.acc = acc;
    this.len = len;
  }

  /** Pad the last byte with zero bits. */
  padToByte(): void {
    if (this.accBits > 0) {
      this.ensure(1);
      this.out[this.len++] = this.acc;
      this.acc = 0;
      this.accBits = 0;
    }
  }

  /** Hand out the completed bytes so far; pending bits stay. */
  take(): Buffer {
    const done = this.out.subarray(0, this.len);
    this.out = Buffer.allocUnsafe(Math.max(this.out.length, 1024));
    this.len = 0;
    return done;
  }
}
