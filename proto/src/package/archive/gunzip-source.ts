import { createGunzip, type Gunzip } from "node:zlib";

/**
 * Compressed input is fed to zlib in slices this small because zlib inflates a whole written chunk
 * before it looks at backpressure: one 1 MiB chunk of a bomb could become 1 GiB in memory, one
 * 4 KiB slice at most about 4 MiB (deflate cannot exceed ~1032:1).
 */
const INPUT_SLICE = 4096;

/** GunzipFailure wraps a zlib or input error so the reader can report it as archive.corrupt. */
export class GunzipFailure extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GunzipFailure";
  }
}

/**
 * GunzipSource pulls decompressed bytes on demand, counting every byte inflated. Nothing is read
 * ahead beyond zlib's own buffer, and close() stops inflation at once, which is what lets the tar
 * reader refuse a limit breach without inflating the rest.
 */
export class GunzipSource {
  private readonly gunzip: Gunzip;
  private readonly iterator: AsyncIterator<Uint8Array>;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  /** Decompressed bytes handed to the caller so far. */
  consumed = 0;

  constructor(input: Uint8Array | AsyncIterable<Uint8Array>) {
    this.gunzip = createGunzip();
    this.iterator = this.gunzip[Symbol.asyncIterator]();
    void this.pump(input instanceof Uint8Array ? [input] : input);
  }

  private async pump(input: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    const gz = this.gunzip;
    try {
      for await (const chunk of input) {
        for (let at = 0; at < chunk.length; at += INPUT_SLICE) {
          if (gz.destroyed) return;
          if (!gz.write(chunk.subarray(at, at + INPUT_SLICE))) {
            await new Promise<void>((resolve) => {
              const done = () => {
                gz.off("drain", done);
                gz.off("close", done);
                resolve();
              };
              gz.on("drain", done);
              gz.on("close", done);
            });
          }
        }
      }
      if (!gz.destroyed) gz.end();
    } catch (err) {
      gz.destroy(new GunzipFailure(`reading the input failed: ${String(err)}`, { cause: err }));
    }
  }

  /** fill pulls until n bytes are buffered or the stream ends; false means it ended first. */
  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.ended) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await this.iterator.next();
      } catch (err) {
        throw new GunzipFailure(
          `gzip stream is invalid: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      }
      if (next.done) {
        this.ended = true;
        break;
      }
      this.chunks.push(next.value);
      this.buffered += next.value.length;
    }
    return this.buffered >= n;
  }

  /** read returns exactly n bytes, or undefined if the stream ends first (see remaining()). */
  async read(n: number): Promise<Uint8Array | undefined> {
    if (!(await this.fill(n))) return undefined;
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = this.chunks[0] as Uint8Array;
      const take = Math.min(head.length, n - at);
      out.set(head.subarray(0, take), at);
      at += take;
      if (take === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(take);
    }
    this.buffered -= n;
    this.consumed += n;
    return out;
  }

  /** skip discards n bytes without keeping them; false if the stream ended first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill(1))) return false;
      const head = this.chunks[0] as Uint8Array;
      const take = Math.min(head.length, left);
      if (take === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(take);
      this.buffered -= take;
      this.consumed += take;
      left -= take;
    }
    return true;
  }

  /**
   * drain consumes the rest of the stream up to `limit` bytes, so gzip's CRC and length trailer get
   * checked. Returns how many bytes there were and whether any was non-zero; stops past the limit.
   */
  async drain(limit: number): Promise<{ bytes: number; overLimit: boolean; nonZero: boolean }> {
    let bytes = 0;
    let nonZero = false;
    while (await this.fill(1)) {
      for (const chunk of this.chunks) {
        bytes += chunk.length;
        if (!nonZero && chunk.some((b) => b !== 0)) nonZero = true;
      }
      this.consumed += this.buffered;
      this.chunks = [];
      this.buffered = 0;
      if (bytes > limit) return { bytes, overLimit: true, nonZero };
    }
    return { bytes, overLimit: false, nonZero };
  }

  /** close stops decompression; further input is dropped. */
  close(): void {
    this.gunzip.destroy();
  }

  /** remaining is how many buffered bytes were left when the stream ended (a partial block). */
  remaining(): number {
    return this.buffered;
  }
}
