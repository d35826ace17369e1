import { margoProblemType } from "../sync/retry-policy.js";
import { type WfmApi, WfmRequestError } from "../wfm/api.js";

/** Why the capabilities must be PUT again although the document did not change. */
export type ResendReason = "wfm-reachable-again" | "device-unknown";

/**
 * Wrap the transport so every loop's traffic (manifest sync, artifacts, status outbox) tells the
 * capabilities loop when the WFM may have lost this device's capabilities (item 25):
 *
 * - after a run of network failures, the first answer of any kind: the WFM was unreachable and
 *   may have restarted from an empty or restored store, so the copy it holds is unknown;
 * - any `#device-not-found` / `#gateway-not-found` answer: the WFM said so outright.
 *
 * The capabilities PUT itself ends an outage without firing: it is the re-send.
 */
export function watchForResend(api: WfmApi, onResend: (why: ResendReason) => void): WfmApi {
  let unreachable = false;
  const observe = async <T>(call: () => Promise<T>, isCapabilities = false): Promise<T> => {
    try {
      const out = await call();
      answered(isCapabilities);
      return out;
    } catch (e) {
      if (e instanceof WfmRequestError && e.kind === "network") unreachable = true;
      else if (e instanceof WfmRequestError && e.kind === "http") {
        answered(isCapabilities);
        const type = margoProblemType(e);
        if (!isCapabilities && (type === "device-not-found" || type === "gateway-not-found")) {
          onResend("device-unknown");
        }
      }
      throw e;
    }
  };
  function answered(isCapabilities: boolean): void {
    if (!unreachable) return;
    unreachable = false;
    if (!isCapabilities) onResend("wfm-reachable-again");
  }
  return {
    putCapabilities: (deviceId, body) => observe(() => api.putCapabilities(deviceId, body), true),
    deleteCapabilities: (deviceId) => observe(() => api.deleteCapabilities(deviceId)),
    getManifest: (ifNoneMatch) => observe(() => api.getManifest(ifNoneMatch)),
    getArtifact: (url) => observe(() => api.getArtifact(url)),
    postStatus: (deploymentId, body) => observe(() => api.postStatus(deploymentId, body)),
    notBefore: () => api.notBefore(),
    resetConnections: () => api.resetConnections(),
    close: () => api.close(),
  };
}
