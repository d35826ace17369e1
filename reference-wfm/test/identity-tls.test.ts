import { mkdtemp } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig } from "../src/config.js";
import { type FileIdentity, initIdentity } from "../src/identity/index.js";

/** The peer's chain as DER, leaf first, as the edges pass it to verifyClient. */
function peerChain(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let c = socket.getPeerX509Certificate();
  while (c && !out.some((d) => d.equals(c?.raw as Buffer))) {
    out.push(c.raw);
    c = c.issuerCertificate;
  }
  return out;
}

let id: FileIdentity;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), "wfm-identity-tls-"));
  id = await initIdentity({
    ...defaultConfig(dir, { trustDomain: "example.org", wfmId: "wfm-1" }),
    hostnames: ["localhost", "127.0.0.1"],
  });
});
afterAll(() => id.close());

describe("minted certificates over real TLS 1.3 on loopback", () => {
  it("items 3, 6, 12: node's TLS accepts the WFM and client SVIDs both ways, hostname check included, and verifyClient names the client", async () => {
    const tls = id.serverTls();
    const creds = await id.mintClient("device-7");
    const seen: string[] = [];
    const server = createServer(
      {
        cert: tls.certChainPem,
        key: tls.keyPem,
        ca: tls.anchorsPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
      },
      (s) => {
        seen.push(id.verifyClient(peerChain(s)).clientId);
        s.end("ok");
      },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = connect({
          host: "127.0.0.1",
          port,
          servername: "localhost",
          cert: creds.certificateChainPem,
          key: creds.privateKeyPem,
          ca: creds.trustBundlePem,
        });
        let data = "";
        s.on("data", (d) => {
          data += d;
        });
        s.on("end", () => resolve(data));
        s.on("error", reject);
        s.on("secureConnect", () => {
          // Item 8 from the client side: the server's SPIFFE ID, not its DNS name, identifies it.
          const uri = s.getPeerX509Certificate()?.subjectAltName?.split(", ")[0];
          if (uri !== `URI:${id.wfmSpiffeId}`) reject(new Error(`server is ${uri}`));
        });
      });
      expect(reply).toBe("ok");
      expect(seen).toEqual(["device-7"]);
    } finally {
      server.close();
    }
  });
});
