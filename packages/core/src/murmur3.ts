// MurmurHash3 x86 32-bit over the UTF-8 bytes of a string, as flagd (Go) computes it for
// `fractional`. Hand-written rather than a dependency: the npm ports (imurmurhash, murmurhash)
// hash UTF-16 code units or truncate them to bytes, which buckets non-ASCII keys differently
// from flagd. ASCII strings (the common case) are hashed without encoding, and a fixed prefix (the
// flag key) can be hashed once (hashPrefix) so that each evaluation hashes only the targetingKey.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

let encoder: TextEncoder | undefined;

function utf8(text: string): Uint8Array {
  encoder ??= new TextEncoder();
  return encoder.encode(text);
}

/**
 * The hash state after some bytes: the blocks mixed so far (`h`), the bytes of an incomplete
 * block (`tail`, little-endian, `n` of them) and the byte count (`length`).
 */
export interface HashState {
  readonly h: number;
  readonly tail: number;
  readonly n: number;
  readonly length: number;
}

export function murmur3(key: string, seed = 0): number {
  return hashFrom(seed | 0, 0, 0, 0, key);
}

/**
 * The state after hashing `prefix` (as UTF-8), to hash `prefix + key` for many keys without
 * building the joined string: `murmur3After(hashPrefix(flagKey), targetingKey)` equals
 * `murmur3(flagKey + targetingKey)`, for any strings.
 */
export function hashPrefix(prefix: string, seed = 0): HashState {
  const bytes = utf8(prefix);
  let h = seed | 0;
  let tail = 0;
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    tail |= bytes[i]! << (n << 3);
    if (++n === 4) {
      h = mixBlock(h, tail);
      tail = 0;
      n = 0;
    }
  }
  return Object.freeze({ h, tail, n, length: bytes.length });
}

/** murmur3 of the prefix `state` was made from, followed by `key`. */
export function murmur3After(state: HashState, key: string): number {
  return hashFrom(state.h, state.tail, state.n, state.length, key);
}

/**
 * Hashes `key` from a state. ASCII is read four characters at a time and checked on the way (no
 * separate scan); from the first non-ASCII character on, the rest is encoded as UTF-8 (lone
 * surrogates as U+FFFD, like TextEncoder and Go) and hashed as bytes.
 */
function hashFrom(h: number, tail: number, n: number, length: number, key: string): number {
  const len = key.length;
  let i = 0;
  if (n === 0) {
    for (; i + 4 <= len; i += 4) {
      const a = key.charCodeAt(i);
      const b = key.charCodeAt(i + 1);
      const c = key.charCodeAt(i + 2);
      const d = key.charCodeAt(i + 3);
      if ((a | b | c | d) > 0x7f) break;
      h = mixBlock(h, a | (b << 8) | (c << 16) | (d << 24));
    }
  } else {
    // n bytes are pending: each block is those bytes and the first 4 - n of the next four
    const shift = n << 3;
    const back = 32 - shift;
    for (; i + 4 <= len; i += 4) {
      const a = key.charCodeAt(i);
      const b = key.charCodeAt(i + 1);
      const c = key.charCodeAt(i + 2);
      const d = key.charCodeAt(i + 3);
      if ((a | b | c | d) > 0x7f) break;
      const w = a | (b << 8) | (c << 16) | (d << 24);
      h = mixBlock(h, tail | (w << shift));
      tail = w >>> back;
    }
  }
  length += i;
  for (; i < len; i++) {
    const c = key.charCodeAt(i);
    // every character before i is ASCII, so i is not inside a surrogate pair
    if (c > 0x7f) return hashBytesFrom(h, tail, n, length, utf8(i === 0 ? key : key.slice(i)));
    tail |= c << (n << 3);
    length++;
    if (++n === 4) {
      h = mixBlock(h, tail);
      tail = 0;
      n = 0;
    }
  }
  if (n > 0) h = mixTail(h, tail);
  return finalize(h, length);
}

function hashBytesFrom(h: number, tail: number, n: number, length: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    tail |= bytes[i]! << (n << 3);
    if (++n === 4) {
      h = mixBlock(h, tail);
      tail = 0;
      n = 0;
    }
  }
  if (n > 0) h = mixTail(h, tail);
  return finalize(h, length + bytes.length);
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
