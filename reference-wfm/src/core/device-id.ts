import { DEVICE_ID, DEVICE_ID_WITH_ASTERISK } from "@margo/proto/wire";

/**
 * The longest deviceId the WFM accepts. The OpenAPI sets no maximum; 253 (a DNS name's limit)
 * is generous for `gateway/path/device` names and keeps ids usable as log fields, database keys
 * and path segments without letting a client store kilobytes under one name.
 */
export const MAX_DEVICE_ID_LENGTH = 253;

export interface DeviceIdPolicyOptions {
  /**
   * Allow the DeviceId_with_asterisk form (`gw/*`): a deployment may target every child of a
   * gateway, a device may not register under that name. Default false (plain DeviceId).
   */
  wildcard?: boolean;
}

/**
 * The one deviceId policy of the WFM, shared by the core (createDeployment, putCapabilities)
 * and the REST edge (PUT/DELETE capabilities), so no path can store an id another refuses.
 * Stricter than the OpenAPI pattern on purpose: `.` and `..` are RFC 3986 unreserved, so the
 * pattern admits `../x`, which would read as path traversal in every URL and log it reaches.
 * Returns why the id is refused, or undefined when it is acceptable.
 */
export function checkDeviceIdPolicy(
  id: string,
  options: DeviceIdPolicyOptions = {},
): string | undefined {
  if (id.length === 0) return "a deviceId must not be empty";
  if (id.length > MAX_DEVICE_ID_LENGTH)
    return `a deviceId may have at most ${MAX_DEVICE_ID_LENGTH} characters (got ${id.length})`;
  const pattern = options.wildcard ? DEVICE_ID_WITH_ASTERISK : DEVICE_ID;
  if (!pattern.test(id))
    return `${JSON.stringify(id)} does not match ${options.wildcard ? "DeviceId_with_asterisk" : "DeviceId"} (RFC 3986 unreserved segments separated by "/"${options.wildcard ? ', optionally ending in "/*"' : ""})`;
  if (id.split("/").some((segment) => segment === "." || segment === ".."))
    return `${JSON.stringify(id)} has a "." or ".." segment`;
  return undefined;
}
