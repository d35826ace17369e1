import { isValidSegment } from "@margo/proto/identity";

/**
 * MIAF name segments (digest 5.1, item 16): a wfm-client-id is non-empty, only RFC 3986
 * unreserved characters, and not "." or "..". The rule itself is the identity library's, so the
 * core can never admit a client whose SVID the verifier would refuse; this adds the message.
 */
export function clientIdProblem(id: string): string | undefined {
  if (isValidSegment(id)) return undefined;
  if (id === "." || id === "..") return `a wfm-client-id must not be ${JSON.stringify(id)}`;
  if (id.length === 0) return "a wfm-client-id must not be empty";
  return `${JSON.stringify(id)} may only use RFC 3986 unreserved characters (A-Z a-z 0-9 . _ ~ -)`;
}
