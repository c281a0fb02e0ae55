// MurmurHash3 x86 32-bit over the UTF-8 bytes of a string, as flagd (Go) computes it for
// `fractional`. Hand-written rather than a dependency: the npm ports (imurmurhash, murmurhash)
// hash UTF-16 code units or truncate them to bytes, which buckets non-ASCII keys differently
// from flagd. ASCII strings (the common case) are hashed without encoding.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

let encoder: TextEncoder | undefined;

export function murmur3(key: string, seed = 0): number {
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) > 0x7f) {
      encoder ??= new TextEncoder();
      return murmur3Bytes(encoder.encode(key), seed);
    }
  }
  return murmur3Ascii(key, seed);
}

function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function mixTail(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  return h ^ k;
}

function finalize(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function murmur3Ascii(key: string, seed: number): number {
  const length = key.length;
  const blocks = length & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < blocks; i += 4) {
    const k =
      key.charCodeAt(i) |
      (key.charCodeAt(i + 1) << 8) |
      (key.charCodeAt(i + 2) << 16) |
      (key.charCodeAt(i + 3) << 24);
    h = mixBlock(h, k);
  }
  const rest = length & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= key.charCodeAt(i + 2) << 16;
    if (rest >= 2) k ^= key.charCodeAt(i + 1) << 8;
    k ^= key.charCodeAt(i);
    h = mixTail(h, k);
  }
  return finalize(h, length);
}

function murmur3Bytes(bytes: Uint8Array, seed: number): number {
  const length = bytes.length;
  const blocks = length & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < blocks; i += 4) {
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h = mixBlock(h, k);
  }
  const rest = length & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[i + 2]! << 16;
    if (rest >= 2) k ^= bytes[i + 1]! << 8;
    k ^= bytes[i]!;
    h = mixTail(h, k);
  }
  return finalize(h, length);
}

/**
 * flagd's bucket ("v2"): floor(hash × totalWeight / 2^32), exact for any uint32 hash and any
 * total weight up to 2^31-1. Split into 16-bit halves so every intermediate stays below 2^53
 * (doubles), avoiding BigInt on the hot path.
 */
export function bucketOf(hash: number, totalWeight: number): number {
  const hi = hash >>> 16;
  const lo = hash & 0xffff;
  const a = hi * totalWeight; // < 2^47
  const b = lo * totalWeight; // < 2^47
  return Math.floor((a + Math.floor(b / 65536)) / 65536);
}
