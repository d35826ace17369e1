import { gunzipSync } from "node:zlib";

/**
 * Names and bytes of the regular files in a gzip tar, read by hand so a test of the bundle
 * (item 45) does not trust the library that may have written it.
 */
export function tarGzEntries(tgz: Buffer): Array<{ name: string; type: string; bytes: Buffer }> {
  const tar = gunzipSync(tgz);
  const out: Array<{ name: string; type: string; bytes: Buffer }> = [];
  let off = 0;
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const str = (a: number, b: number) =>
      header.subarray(a, b).toString("utf8").replace(/\0.*$/s, "");
    const prefix = str(345, 500);
    const name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    const size = Number.parseInt(str(124, 136).trim() || "0", 8);
    const type = str(156, 157) || "0";
    out.push({ name, type, bytes: Buffer.from(tar.subarray(off + 512, off + 512 + size)) });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
