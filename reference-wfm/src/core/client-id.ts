/**
 * MIAF name segments (digest 5.1, item 16): a wfm-client-id is non-empty, only RFC 3986
 * unreserved characters, and not "." or "..". The core checks it before admitting a client
 * so no SVID is ever minted for a name the verifier would refuse.
 */
const UNRESERVED = /^[A-Za-z0-9._~-]+$/;

/** Why `id` cannot be a wfm-client-id, or undefined when it can. */
export function clientIdProblem(id: string): string | undefined {
  if (id.length === 0) return "a wfm-client-id must not be empty";
  if (id === "." || id === "..") return `a wfm-client-id must not be ${JSON.stringify(id)}`;
  if (!UNRESERVED.test(id))
    return `${JSON.stringify(id)} may only use RFC 3986 unreserved characters (A-Z a-z 0-9 . _ ~ -)`;
  return undefined;
}
