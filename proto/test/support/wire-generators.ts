import type { ApplicationDeployment } from "../../src/gen/margo/model/v1/application_deployment.js";
import type { Component, Parameter } from "../../src/gen/margo/model/v1/application_description.js";
import type {
  ComponentStatus,
  DeploymentStatusManifest,
  StatusError,
} from "../../src/gen/margo/model/v1/deployment_status.js";
import type { DeviceCapabilitiesManifest } from "../../src/gen/margo/model/v1/device_capabilities.js";
import type {
  DeviceConstraints,
  MatchExpression,
  Selector,
} from "../../src/gen/margo/model/v1/device_constraints.js";
import type { ProblemDetail } from "../../src/gen/margo/model/v1/problem_detail.js";
import type { UnsignedAppStateManifest } from "../../src/gen/margo/model/v1/state_manifest.js";
import type {
  Jwk,
  SpiffeBundle,
  TrustDiscoveryDocument,
} from "../../src/gen/margo/model/v1/trust.js";
import {
  APP_ARCHITECTURES,
  BACKOFF_STRATEGIES,
  BUNDLE_MEDIA_TYPE,
  bundleUrl,
  DEPLOYMENT_PROFILE_TYPES,
  DEPLOYMENT_STATES,
  DEVICE_ARCHITECTURES,
  deploymentUrl,
  type EnumMap,
  INTERFACE_TYPES,
  type JsonValue,
  PERIPHERAL_TYPES,
  SELECTOR_OPERATORS,
  SUPPORTED_DEPLOYMENT_TYPES,
  SUPPORTED_RUNTIMES,
  UINT64_MAX,
} from "../../src/wire/index.js";

/**
 * Rng is a small seeded generator (mulberry32) so a failing generated sample can be rebuilt from
 * its seed; Math.random would make a schema failure unreproducible.
 */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** next returns a float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  }
  /** maybe returns make() or undefined, so optional members are both present and absent. */
  maybe<T>(make: () => T, p = 0.5): T | undefined {
    return this.bool(p) ? make() : undefined;
  }
  list<T>(lo: number, hi: number, make: (i: number) => T): T[] {
    return Array.from({ length: this.int(lo, hi) }, (_, i) => make(i));
  }
  /** subset returns a non-empty subset of items in their order. */
  subset<T>(items: readonly T[]): T[] {
    const out = items.filter(() => this.bool());
    return out.length > 0 ? out : [this.pick(items)];
  }
  /** u64 favours the edges (min, 2^53 boundary, 2^64-1) over the middle of [min, 2^64-1]. */
  u64(min = 0n): bigint {
    const edges = [min, min + 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, UINT64_MAX];
    if (this.bool(0.5)) return this.pick(edges);
    let n = 0n;
    for (let i = 0; i < 4; i++) n = (n << 16n) | BigInt(this.int(0, 0xffff));
    n >>= BigInt(this.int(0, 63));
    return n < min ? min : n;
  }
  hex(length: number): string {
    return Array.from({ length }, () => "0123456789abcdef"[this.int(0, 15)]).join("");
  }
  digest(): string {
    return `sha256:${this.hex(64)}`;
  }
  /** text favours strings YAML or JSON could misread (numbers, booleans, indicators, Unicode). */
  text(): string {
    return this.pick(TRICKY) + (this.bool(0.3) ? this.pick(TRICKY) : "");
  }
  /** token is a string of RFC 3986 unreserved characters (ids, device ids). */
  token(): string {
    const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-";
    return Array.from({ length: this.int(1, 12) }, () => chars[this.int(0, chars.length - 1)]).join(
      "",
    );
  }
  /** enumOf picks one generated enum value of a wire table (every wire value is reachable). */
  enumOf<E extends number>(map: EnumMap<E>): E {
    const e = map.fromWire(this.pick(map.wireValues));
    if (e === undefined) throw new Error("enum table without a model value");
    return e;
  }
  /**
   * json makes a small arbitrary JSON tree (for extensions and free-form values). Doubles avoid
   * integer values in [2^53, 10^40]: the reader turns those into exact bigints by design, so
   * 1e21 would not compare equal after a round trip.
   */
  json(depth = 0): JsonValue {
    const kinds = depth >= 3 ? 5 : 7;
    switch (this.int(0, kinds - 1)) {
      case 0:
        return null;
      case 1:
        return this.bool();
      case 2:
        return this.int(-1000, 1000);
      case 3:
        return this.pick([0.5, -2.25, 1e-7, 123456.789, 1.5e300]);
      case 4:
        return this.text();
      case 5:
        return this.list(0, 3, () => this.json(depth + 1));
      default: {
        const out: Record<string, JsonValue> = {};
        for (let i = this.int(0, 3); i > 0; i--) out[this.text()] = this.json(depth + 1);
        return out;
      }
    }
  }
}

const TRICKY = [
  "plain",
  "",
  "120",
  "0x10",
  "1e3",
  "true",
  "null",
  "~",
  "a: b",
  "- item",
  "#hash",
  " lead",
  "trail ",
  "multi\nline",
  'quote"s',
  "it's",
  "ü",
  "雪",
  "😀",
  "[x]",
  "{y}",
  "*alias",
  "&anchor",
  "!tag",
  "%dir",
  "@at",
  "`tick",
  "\t",
];

function extensions(rng: Rng): Record<string, Record<string, JsonValue>> {
  const out: Record<string, Record<string, JsonValue>> = {};
  for (let i = rng.int(0, 2); i > 0; i--) {
    const name = `x-${rng.pick(["acme", "zeta-9", "wfm", "a"])}-extensions`;
    const body: Record<string, JsonValue> = {};
    for (let j = rng.int(0, 3); j > 0; j--) body[rng.text()] = rng.json(1);
    out[name] = body;
  }
  return out;
}

/** stateManifest: empty (bundle null) or 1..4 deployments with unique ids and their url forms. */
export function stateManifest(rng: Rng): UnsignedAppStateManifest {
  const ids = new Set<string>();
  const deployments = rng.list(0, 4, () => {
    let deploymentId = rng.pick([rng.token(), "ad9b614e-8912-45f4-a523-372358765def", "h/1 x"]);
    while (ids.has(deploymentId)) deploymentId += "x";
    ids.add(deploymentId);
    const digest = rng.digest();
    const sizeBytes = rng.maybe(() => rng.u64());
    return {
      deploymentId,
      digest,
      url: deploymentUrl(deploymentId, digest),
      ...(sizeBytes !== undefined ? { sizeBytes } : {}),
    };
  });
  const digest = rng.digest();
  const sizeBytes = rng.maybe(() => rng.u64());
  return {
    manifestVersion: rng.u64(1n),
    ...(deployments.length > 0
      ? {
          bundle: {
            mediaType: BUNDLE_MEDIA_TYPE,
            digest,
            url: bundleUrl(digest),
            ...(sizeBytes !== undefined ? { sizeBytes } : {}),
          },
        }
      : {}),
    deployments,
  };
}

function statusError(rng: Rng): StatusError {
  const code = rng.maybe(() => rng.text());
  const source = rng.maybe(() => rng.text());
  const message = rng.maybe(() => rng.text());
  return {
    ...(code !== undefined ? { code } : {}),
    ...(source !== undefined ? { source } : {}),
    ...(message !== undefined ? { message } : {}),
  };
}

/** deploymentStatus: every state at deployment and component level, errors present or not. */
export function deploymentStatus(rng: Rng): DeploymentStatusManifest {
  const deviceId = rng.maybe(() => rng.list(1, 3, () => rng.token()).join("/"));
  const error = rng.maybe(() => statusError(rng));
  return {
    deploymentId: rng.pick([rng.token(), rng.text()]),
    ...(deviceId !== undefined ? { deviceId } : {}),
    adoptedManifestVersion: rng.u64(1n),
    status: { state: rng.enumOf(DEPLOYMENT_STATES), ...(error ? { error } : {}) },
    components: rng.list(0, 3, (): ComponentStatus => {
      const e = rng.maybe(() => statusError(rng));
      return {
        name: rng.text(),
        state: rng.enumOf(DEPLOYMENT_STATES),
        ...(e ? { error: e } : {}),
      };
    }),
  };
}

/**
 * labelValue covers each allowed label type. It never makes an empty array: the verbatim
 * schema's oneOf refuses [] although the codec accepts it (see device-capabilities.ts).
 */
function labelValue(rng: Rng): JsonValue {
  switch (rng.int(0, 6)) {
    case 0:
      return rng.text();
    case 1:
      return rng.int(-5, 5000);
    case 2:
      return rng.pick([0.25, -1.5, 1e-3]);
    case 3:
      return rng.bool();
    case 4:
      return rng.list(1, 3, () => rng.text());
    case 5:
      return rng.list(1, 3, () => rng.pick([1, 2.5, -7, 443]));
    default:
      return UINT64_MAX;
  }
}

/** deviceCapabilities: hosting devices with every optional member, or non-hosting gateways. */
export function deviceCapabilities(rng: Rng): DeviceCapabilitiesManifest {
  const hosting = rng.bool(0.75);
  const memory = hosting ? rng.maybe(() => `${rng.int(1, 64)}Gi`) : undefined;
  const storage = hosting ? rng.maybe(() => rng.text()) : undefined;
  const otelCollector = hosting ? rng.maybe(() => rng.bool()) : undefined;
  const labels: Record<string, JsonValue> = {};
  for (let i = rng.int(0, 4); i > 0; i--) labels[`example.com/${rng.token()}`] = labelValue(rng);
  return {
    properties: {
      id: rng.list(1, 3, () => rng.token()).join("/"),
      vendor: rng.text(),
      modelNumber: rng.text(),
      serialNumber: rng.text(),
      cpus: hosting
        ? rng.list(0, 3, () => ({
            cores: rng.pick([1, 2, 4, 0.5, 1.25]),
            architecture: rng.enumOf(DEVICE_ARCHITECTURES),
          }))
        : [],
      ...(memory !== undefined ? { memory } : {}),
      ...(storage !== undefined ? { storage } : {}),
      peripherals: hosting
        ? rng.list(0, 3, () => {
            const manufacturer = rng.maybe(() => rng.text());
            const model = rng.maybe(() => rng.text());
            return {
              type: rng.enumOf(PERIPHERAL_TYPES),
              ...(manufacturer !== undefined ? { manufacturer } : {}),
              ...(model !== undefined ? { model } : {}),
            };
          })
        : [],
      interfaces: hosting ? rng.list(0, 3, () => ({ type: rng.enumOf(INTERFACE_TYPES) })) : [],
      ...(otelCollector !== undefined ? { otelCollector } : {}),
      supportedRuntimes: hosting ? rng.subset(SUPPORTED_RUNTIMES) : [],
      supportedDeploymentTypes: hosting ? rng.subset(SUPPORTED_DEPLOYMENT_TYPES) : [],
    },
    labels,
    extensions: extensions(rng),
  };
}

const URI_REFS = [
  "about:blank",
  "https://docs.margo.org/specification/problem-types#semantic-error",
  "/api/v1/capabilities/gateway-01",
  "urn:margo:problem:x",
  "relative/path?q=1",
];

/** problemDetail: optional members present/absent, every backoff strategy, extension members. */
export function problemDetail(rng: Rng): ProblemDetail {
  const detail = rng.maybe(() => rng.text());
  const instance = rng.maybe(() => rng.pick(URI_REFS));
  const retryable = rng.maybe(() => rng.bool());
  const retryAfterSeconds = rng.maybe(() => rng.pick([0n, 1n, 30n, 2n ** 63n - 1n]));
  const members: Record<string, JsonValue> = {};
  for (let i = rng.int(0, 2); i > 0; i--) members[`vendor_${rng.token()}`] = rng.json(1);
  const backoff = rng.maybe(() => rng.enumOf(BACKOFF_STRATEGIES));
  return {
    type: rng.pick(URI_REFS),
    title: rng.text(),
    status: rng.pick([400, 404, 409, 422, 500, 503]),
    ...(detail !== undefined ? { detail } : {}),
    ...(instance !== undefined ? { instance } : {}),
    ...(retryable !== undefined ? { retryable } : {}),
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    backoffStrategy: backoff ?? 0,
    errors: rng.list(0, 2, () => {
      const field = rng.maybe(() => rng.text());
      const message = rng.maybe(() => rng.text());
      return {
        ...(field !== undefined ? { field } : {}),
        ...(message !== undefined ? { message } : {}),
      };
    }),
    ...(Object.keys(members).length > 0 ? { extensionMembers: members } : {}),
  };
}

function selector(rng: Rng, depth: number): Selector {
  return {
    matchExpressions: rng.list(1, 3, (): MatchExpression => {
      const values = rng.maybe(() =>
        rng.list(0, 3, () => rng.pick<JsonValue>([rng.text(), rng.int(0, 9), 2.5, true])),
      );
      const itemSelector = depth < 1 ? rng.maybe(() => selector(rng, depth + 1), 0.3) : undefined;
      return {
        key: rng.pick(["/vendor", "/peripherals", "/type", "example.com/floor", rng.text()]),
        operator: rng.enumOf(SELECTOR_OPERATORS),
        ...(values !== undefined ? { values } : {}),
        ...(itemSelector ? { itemSelector } : {}),
      };
    }),
  };
}

function deviceConstraints(rng: Rng): DeviceConstraints {
  const capacity = rng.maybe(() => {
    const memory = rng.maybe(() => `${rng.int(1, 4096)}${rng.pick(["Mi", "Gi", "Ki"])}`);
    const storage = rng.maybe(
      () => `${rng.int(1, 99)}${rng.pick(["Mi", "Gi", "Ki", "Ti", "Pi", "Ei"])}`,
    );
    const cpu = rng.maybe(() => ({
      cores: rng.pick([0.5, 1, 2, 3.75]),
      architectures: rng.list(0, 3, () => rng.enumOf(APP_ARCHITECTURES)),
    }));
    return {
      ...(cpu ? { cpu } : {}),
      ...(memory !== undefined ? { memory } : {}),
      ...(storage !== undefined ? { storage } : {}),
    };
  });
  return {
    ...(capacity ? { capacityRequirements: capacity } : {}),
    eligibilityRules: rng.list(0, 2, () => {
      const propertySelector = rng.maybe(() => selector(rng, 0));
      const labelSelector = rng.maybe(() => selector(rng, 0));
      return {
        ...(propertySelector ? { propertySelector } : {}),
        ...(labelSelector ? { labelSelector } : {}),
      };
    }),
  };
}

function component(rng: Rng, name: string): Component {
  const wait = rng.maybe(() => rng.bool());
  const timeout = rng.maybe(() => `${rng.int(0, 90)}m${rng.int(0, 59)}s`);
  return {
    name,
    properties: {
      repository: `oci://registry.example.com/${rng.token()}/${name}`,
      revision: rng.pick(["1.2.3", "0.0.1-rc.1", "1.2.3-rc.1_build.5", "10.20.30_b.1"]),
      ...(wait !== undefined ? { wait } : {}),
      ...(timeout !== undefined ? { timeout } : {}),
    },
    extensions: extensions(rng),
  };
}

/** applicationDeployment: helm and compose profiles, constraints, parameters of each JSON type. */
export function applicationDeployment(rng: Rng): ApplicationDeployment {
  const names = rng.list(1, 3, (i) => `c${i}-${rng.token().toLowerCase()}`);
  const labels: Record<string, string> = {};
  for (let i = rng.int(0, 2); i > 0; i--) labels[rng.text()] = rng.text();
  const parameters: Record<string, Parameter> = {};
  for (let i = rng.int(0, 4); i > 0; i--) {
    parameters[`p${i}${rng.token()}`] = {
      value: rng.pick<JsonValue>([rng.text(), rng.int(-9, 9999), 0.75, rng.bool(), UINT64_MAX]),
      targets: rng.list(0, 2, () => ({ pointer: rng.text(), components: rng.subset(names) })),
    };
  }
  const constraints = rng.maybe(() => deviceConstraints(rng));
  return {
    id: rng.pick([rng.token(), "ad9b614e-8912-45f4-a523-372358765def"]),
    metadata: {
      name: rng.text(),
      namespace: rng.text(),
      deviceId: rng.list(1, 3, () => rng.token()).join("/") + (rng.bool() ? "/*" : ""),
      labels,
    },
    spec: {
      applicationId: rng
        .token()
        .toLowerCase()
        .replace(/[^-a-z0-9]/g, "-"),
      deploymentProfile: {
        type: rng.pick(DEPLOYMENT_PROFILE_TYPES),
        components: names.map((n) => component(rng, n)),
        ...(constraints ? { deviceConstraints: constraints } : {}),
        extensions: extensions(rng),
      },
      parameters,
      extensions: extensions(rng),
    },
  };
}

/** discoveryDocument: any trust domain with an https bundle URI. */
export function discoveryDocument(rng: Rng): TrustDiscoveryDocument {
  const domain = `${rng
    .token()
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "x")}.example`;
  return {
    trustDomain: domain,
    trustBundleUri: `https://mis.${domain}/.well-known/spiffe/bundle${rng.pick(["", ".json", "?v=2"])}`,
  };
}

/** spiffeBundle: at least one x509-svid anchor, optional sequence/refresh hint and JWK members. */
export function spiffeBundle(rng: Rng): SpiffeBundle {
  const key = (use: string): Jwk => {
    const out: Jwk = { kty: rng.pick(["EC", "RSA"]), use, x5c: rng.list(0, 2, () => "MIIB") };
    for (const k of ["kid", "crv", "x", "y", "n", "e"] as const) {
      if (rng.bool()) out[k] = rng.token();
    }
    return out;
  };
  const sequence = rng.maybe(() => rng.u64());
  const hint = rng.maybe(() => rng.pick([0n, 300n, 86400n]));
  return {
    ...(sequence !== undefined ? { spiffeSequence: sequence } : {}),
    ...(hint !== undefined ? { spiffeRefreshHint: hint } : {}),
    keys: [key("x509-svid"), ...rng.list(0, 2, () => key(rng.pick(["x509-svid", "jwt-svid"])))],
  };
}
