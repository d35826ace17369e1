import { join, resolve } from "node:path";
import { status } from "@grpc/grpc-js";
import {
  admin,
  type DeploymentStatusManifest,
  DeviceCapabilitiesManifest,
  deploymentStateToJSON,
} from "@margo/proto";
import { type AdminConnection, connectAdmin, REGISTER_DEADLINE_MS } from "./admin-client.js";
import type { CommandContext, CommandSpec } from "./command-spec.js";
import { OPERATOR_DIR, writeCredentialFiles } from "./credential-files.js";
import { CliError, EXIT, LockoutRefusedError, UsageError, WfmRequestError } from "./errors.js";
import {
  checkSurvivesRetire,
  operatorNameOf,
  replaceCredentialDir,
} from "./operator-credentials.js";
import { isoOrDash, jsonLine, keyValues, table } from "./output.js";
import { collectParameters } from "./params.js";

/**
 * Every command that talks to a running WFM through the admin gRPC service. Each one is a thin
 * mapping: arguments to one request, the response to a table or to its proto3 JSON form.
 */

async function withAdmin<T>(ctx: CommandContext, fn: (c: AdminConnection) => Promise<T>) {
  const conn = await connectAdmin(ctx.dataDir);
  try {
    return await fn(conn);
  } finally {
    conn.close();
  }
}

const str = (ctx: CommandContext, name: string): string | undefined => {
  const v = ctx.values[name];
  return typeof v === "string" ? v : undefined;
};
const list = (ctx: CommandContext, name: string): string[] | undefined => {
  const v = ctx.values[name];
  return Array.isArray(v) ? v : undefined;
};
const pos = (ctx: CommandContext, i: number): string => ctx.positionals[i] ?? "";

const short = (digest: string) => (digest.length > 19 ? `${digest.slice(0, 19)}…` : digest);

function printDeployment(ctx: CommandContext, d: admin.Deployment | undefined, verb: string) {
  if (!d) throw new Error("the WFM answered without a deployment");
  if (ctx.json) {
    ctx.io.out(jsonLine({ deployment: admin.Deployment.toJSON(d) }));
    return;
  }
  ctx.io.out(`${verb} deployment ${d.deploymentId}`);
  ctx.io.out(
    keyValues([
      ["application", `${d.applicationId}@${d.version}`],
      ["client", d.clientId],
      ["device", d.deviceId],
      ["digest", d.digest],
      ["manifestVersion", d.manifestVersion.toString()],
    ]),
  );
}

async function writeCredentials(
  ctx: CommandContext,
  clientId: string,
  creds: admin.ClientCredentials | undefined,
  verb: string,
  client?: admin.Client,
) {
  if (!creds) throw new Error("the WFM answered without credentials");
  const dir = resolve(str(ctx, "out") ?? "");
  const files = await writeCredentialFiles(dir, creds);
  if (ctx.json) {
    ctx.io.out(
      jsonLine({
        ...(client ? { client: admin.Client.toJSON(client) } : {}),
        clientId,
        spiffeId: creds.spiffeId,
        notAfter: creds.notAfter?.toISOString(),
        files,
      }),
    );
    return;
  }
  ctx.io.out(`${verb} ${creds.spiffeId}, valid until ${isoOrDash(creds.notAfter)}`);
  ctx.io.out(`credentials written to ${dir}:`);
  for (const f of files) ctx.io.out(`  ${f}`);
}

const OUT_OPTION = {
  type: "string",
  arg: "DIR",
  required: true,
  description: "folder to write svid.pem, svid.key (0600), bundle.pem and bundle.json into",
} as const;

export const clientCommands: CommandSpec[] = [
  {
    path: ["client", "add"],
    positionals: ["<client-id>"],
    summary: "Admit a WFM Client and write its first SVID, key and trust bundle to a folder.",
    options: {
      name: { type: "string", arg: "NAME", description: "display name" },
      out: OUT_OPTION,
    },
    notes: [
      "The SPIFFE ID is spiffe://<trust-domain>/margo/wfm/<wfm-id>/client/<client-id>.",
      "Install the four files on the device; the key never stays at the WFM.",
    ],
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const name = str(ctx, "name");
        const res = await c.call(c.client.addClient, {
          clientId: pos(ctx, 0),
          ...(name !== undefined ? { displayName: name } : {}),
        });
        await writeCredentials(ctx, pos(ctx, 0), res.credentials, "admitted", res.client);
      }),
  },
  {
    path: ["client", "issue"],
    positionals: ["<client-id>"],
    summary: "Mint a fresh SVID for an admitted client (renewal: same SPIFFE ID, new key).",
    options: {
      out: OUT_OPTION,
      lifetime: {
        type: "string",
        arg: "SECONDS",
        description: "SVID lifetime (default: the WFM's)",
      },
    },
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const lifetime = str(ctx, "lifetime");
        const seconds = lifetime === undefined ? 0 : Number(lifetime);
        if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) {
          throw new UsageError(`--lifetime ${lifetime} is not a number of seconds`, "client issue");
        }
        const res = await c.call(c.client.issueClientCredentials, {
          clientId: pos(ctx, 0),
          lifetimeSeconds: seconds,
        });
        await writeCredentials(ctx, pos(ctx, 0), res.credentials, "issued");
      }),
  },
  {
    path: ["client", "remove"],
    positionals: ["<client-id>"],
    summary: "Retire a client: its still-valid SVID gets 403 #not-authorized from now on.",
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        await c.call(c.client.removeClient, { clientId: pos(ctx, 0) });
        ctx.io.out(
          ctx.json
            ? jsonLine({ clientId: pos(ctx, 0), removed: true })
            : `removed client ${pos(ctx, 0)}`,
        );
      }),
  },
  {
    path: ["client", "list"],
    summary: "List admitted clients.",
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const { clients } = await c.call(c.client.listClients, {});
        if (ctx.json) {
          ctx.io.out(jsonLine({ clients: clients.map((x) => admin.Client.toJSON(x)) }));
          return;
        }
        ctx.io.out(
          table(
            ["CLIENT", "NAME", "SPIFFE ID", "ADDED"],
            clients.map((x) => [
              x.clientId,
              x.displayName ?? "-",
              x.spiffeId,
              isoOrDash(x.addedAt),
            ]),
          ),
        );
      }),
  },
];

export const appCommands: CommandSpec[] = [
  {
    path: ["app", "register"],
    positionals: ["<oci-ref>"],
    summary:
      "Pull an Application Package from an OCI registry, validate it and add it to the catalog.",
    options: {
      "plain-http": {
        type: "boolean",
        description: "talk plain HTTP to the registry (a local test registry)",
      },
    },
    notes: [
      "Example: margo-wfm app register 127.0.0.1:5000/margo-fixtures/compose-single/package:1.0.0 --plain-http",
    ],
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const { application: a } = await c.call(
          c.client.registerApplication,
          { ociReference: pos(ctx, 0), plainHttp: ctx.values["plain-http"] === true },
          REGISTER_DEADLINE_MS,
        );
        if (!a) throw new Error("the WFM answered without an application");
        if (ctx.json) {
          ctx.io.out(jsonLine({ application: admin.Application.toJSON(a) }));
          return;
        }
        ctx.io.out(`registered ${a.applicationId}@${a.version} from ${a.ociReference}`);
        ctx.io.out(`manifest digest ${a.manifestDigest}`);
      }),
  },
  {
    path: ["app", "list"],
    summary: "List registered application versions.",
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const { applications } = await c.call(c.client.listApplications, {});
        if (ctx.json) {
          ctx.io.out(
            jsonLine({ applications: applications.map((a) => admin.Application.toJSON(a)) }),
          );
          return;
        }
        ctx.io.out(
          table(
            ["APPLICATION", "VERSION", "NAME", "PROFILES", "OCI REFERENCE"],
            applications.map((a) => [
              a.applicationId,
              a.version,
              a.description?.metadata?.name ?? "-",
              (a.description?.deploymentProfiles ?? []).map((p) => p.id).join(","),
              a.ociReference,
            ]),
          ),
        );
      }),
  },
  {
    path: ["app", "show"],
    positionals: ["<application-id>"],
    summary: "Show one registered application: profiles, parameters and where it came from.",
    options: {
      version: { type: "string", arg: "V", description: "a registered version (default: newest)" },
    },
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const version = str(ctx, "version");
        const { application: a } = await c.call(c.client.getApplication, {
          applicationId: pos(ctx, 0),
          ...(version !== undefined ? { version } : {}),
        });
        if (!a) throw new Error("the WFM answered without an application");
        if (ctx.json) {
          ctx.io.out(jsonLine({ application: admin.Application.toJSON(a) }));
          return;
        }
        const d = a.description;
        ctx.io.out(
          keyValues([
            ["application", a.applicationId],
            ["version", a.version],
            ["name", d?.metadata?.name ?? "-"],
            ["oci reference", a.ociReference],
            ["manifest digest", a.manifestDigest],
            ["registered", isoOrDash(a.registeredAt)],
          ]),
        );
        ctx.io.out("\nDeployment profiles:");
        ctx.io.out(
          table(
            ["ID", "TYPE", "COMPONENTS"],
            (d?.deploymentProfiles ?? []).map((p) => [
              p.id,
              p.type,
              p.components.map((x) => x.name).join(","),
            ]),
          ),
        );
        ctx.io.out("\nParameters:");
        ctx.io.out(
          table(
            ["NAME", "DEFAULT"],
            Object.entries(d?.parameters ?? {}).map(([k, p]) => [
              k,
              JSON.stringify(p.value ?? null),
            ]),
          ),
        );
      }),
  },
];

const PARAM_OPTIONS = {
  param: {
    type: "string",
    multiple: true,
    arg: "K=V",
    description:
      "parameter value; V is read as JSON when it parses (8080, true, [1,2]), else as a string",
  },
  "params-file": {
    type: "string",
    arg: "FILE",
    description: "JSON or YAML object of parameter values; --param entries override it",
  },
} as const;

export const deploymentCommands: CommandSpec[] = [
  {
    path: ["deploy"],
    positionals: ["<application-id>"],
    summary:
      "Deploy a registered application to one device of one client (bumps its manifestVersion).",
    options: {
      client: { type: "string", arg: "C", required: true, description: "wfm-client-id" },
      device: {
        type: "string",
        arg: "D",
        required: true,
        description: 'device id ("gw/*" lets a gateway place the workload)',
      },
      version: { type: "string", arg: "V", description: "application version (default: newest)" },
      profile: { type: "string", arg: "ID", description: "deployment profile id" },
      "profile-type": {
        type: "string",
        arg: "T",
        description: "first profile of this type (helm.v3, compose); default: the first profile",
      },
      ...PARAM_OPTIONS,
    },
    async run(ctx) {
      // Everything checkable locally is checked before connecting, so usage errors exit 2
      // whether or not the WFM is running.
      const parameters = await collectParameters(list(ctx, "param"), str(ctx, "params-file"));
      const profileId = str(ctx, "profile");
      const profileType = str(ctx, "profile-type");
      if (profileId !== undefined && profileType !== undefined) {
        throw new UsageError("give --profile or --profile-type, not both", "deploy");
      }
      await withAdmin(ctx, async (c) => {
        const version = str(ctx, "version");
        const req: admin.CreateDeploymentRequest = {
          applicationId: pos(ctx, 0),
          clientId: str(ctx, "client") ?? "",
          deviceId: str(ctx, "device") ?? "",
          parameters,
          ...(version !== undefined ? { version } : {}),
          ...(profileId !== undefined ? { profile: { $case: "profileId", value: profileId } } : {}),
          ...(profileType !== undefined
            ? { profile: { $case: "profileType", value: profileType } }
            : {}),
        };
        const res = await c.call(c.client.createDeployment, req);
        printDeployment(ctx, res.deployment, "created");
      });
    },
  },
  {
    path: ["update"],
    positionals: ["<deployment-id>"],
    summary: "Replace a deployment's parameter values: same id, new digest, new manifestVersion.",
    options: PARAM_OPTIONS,
    notes: ["Parameters left out fall back to the description's defaults."],
    async run(ctx) {
      const parameters = await collectParameters(list(ctx, "param"), str(ctx, "params-file"));
      await withAdmin(ctx, async (c) => {
        const res = await c.call(c.client.updateDeployment, {
          deploymentId: pos(ctx, 0),
          parameters,
        });
        printDeployment(ctx, res.deployment, "updated");
      });
    },
  },
  {
    path: ["undeploy"],
    positionals: ["<deployment-id>"],
    summary: "Remove a deployment from its client's manifest (bumps the manifestVersion).",
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        await c.call(c.client.deleteDeployment, { deploymentId: pos(ctx, 0) });
        ctx.io.out(
          ctx.json
            ? jsonLine({ deploymentId: pos(ctx, 0), removed: true })
            : `removed deployment ${pos(ctx, 0)}`,
        );
      }),
  },
  {
    path: ["deployments", "list"],
    summary: "List deployments, optionally of one client and/or device.",
    options: {
      client: { type: "string", arg: "C", description: "only this client" },
      device: { type: "string", arg: "D", description: "only this device" },
    },
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const clientId = str(ctx, "client");
        const deviceId = str(ctx, "device");
        const { deployments } = await c.call(c.client.listDeployments, {
          ...(clientId !== undefined ? { clientId } : {}),
          ...(deviceId !== undefined ? { deviceId } : {}),
        });
        if (ctx.json) {
          ctx.io.out(jsonLine({ deployments: deployments.map((d) => admin.Deployment.toJSON(d)) }));
          return;
        }
        ctx.io.out(
          table(
            ["DEPLOYMENT", "CLIENT", "DEVICE", "APPLICATION", "MANIFEST", "DIGEST"],
            deployments.map((d) => [
              d.deploymentId,
              d.clientId,
              d.deviceId,
              `${d.applicationId}@${d.version}`,
              d.manifestVersion.toString(),
              short(d.digest),
            ]),
          ),
        );
      }),
  },
];

export const deviceCommands: CommandSpec[] = [
  {
    path: ["devices", "list"],
    summary: "List devices that reported capabilities.",
    options: { client: { type: "string", arg: "C", description: "only this client" } },
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const clientId = str(ctx, "client");
        const { devices } = await c.call(
          c.client.listDevices,
          clientId !== undefined ? { clientId } : {},
        );
        if (ctx.json) {
          ctx.io.out(jsonLine({ devices: devices.map((d) => admin.Device.toJSON(d)) }));
          return;
        }
        ctx.io.out(
          table(
            ["CLIENT", "DEVICE", "VENDOR", "MODEL", "DEPLOYMENT TYPES", "REPORTED"],
            devices.map((d) => {
              const p = d.capabilities?.properties;
              return [
                d.clientId,
                d.deviceId,
                p?.vendor || "-",
                p?.modelNumber || "-",
                p?.supportedDeploymentTypes.join(",") || "-",
                isoOrDash(d.reportedAt),
              ];
            }),
          ),
        );
      }),
  },
  {
    path: ["device", "show"],
    positionals: ["<device-id>"],
    summary: "Show the capabilities one device last reported.",
    options: { client: { type: "string", arg: "C", required: true, description: "its client" } },
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const clientId = str(ctx, "client") ?? "";
        const { devices } = await c.call(c.client.listDevices, { clientId });
        const device = devices.find((d) => d.deviceId === pos(ctx, 0));
        if (!device) {
          throw new WfmRequestError(
            `client ${clientId} has no device ${pos(ctx, 0)} (it never reported capabilities, or deleted them): see \`margo-wfm devices list --client ${clientId}\``,
            status.NOT_FOUND,
          );
        }
        if (ctx.json) {
          ctx.io.out(jsonLine({ device: admin.Device.toJSON(device) }));
          return;
        }
        ctx.io.out(
          keyValues([
            ["client", device.clientId],
            ["device", device.deviceId],
            ["reported", isoOrDash(device.reportedAt)],
          ]),
        );
        ctx.io.out("\nCapabilities:");
        ctx.io.out(
          JSON.stringify(
            device.capabilities ? DeviceCapabilitiesManifest.toJSON(device.capabilities) : null,
            null,
            2,
          ),
        );
      }),
  },
  {
    path: ["status", "list"],
    summary: "List the latest status each client reported per deployment.",
    options: {
      client: { type: "string", arg: "C", description: "only this client" },
      deployment: { type: "string", arg: "ID", description: "only this deployment" },
    },
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const clientId = str(ctx, "client");
        const deploymentId = str(ctx, "deployment");
        const { statuses } = await c.call(c.client.listDeploymentStatuses, {
          ...(clientId !== undefined ? { clientId } : {}),
          ...(deploymentId !== undefined ? { deploymentId } : {}),
        });
        if (ctx.json) {
          ctx.io.out(jsonLine({ statuses: statuses.map((s) => admin.ReportedStatus.toJSON(s)) }));
          return;
        }
        ctx.io.out(
          table(
            ["CLIENT", "DEPLOYMENT", "STATE", "COMPONENTS", "ADOPTED", "REPORTED"],
            statuses.map((s) => [
              s.clientId,
              s.status?.deploymentId ?? "-",
              s.status?.status ? stateName(s.status.status.state) : "-",
              (s.status?.components ?? []).map((x) => `${x.name}=${stateName(x.state)}`).join(","),
              s.status?.adoptedManifestVersion.toString() ?? "-",
              isoOrDash(s.reportedAt),
            ]),
          ),
        );
      }),
  },
];

function stateName(state: DeploymentStatusManifest["components"][number]["state"]): string {
  return deploymentStateToJSON(state)
    .replace(/^DEPLOYMENT_STATE_/, "")
    .toLowerCase();
}

export const caCommands: CommandSpec[] = [
  {
    path: ["ca", "show"],
    summary:
      "Show the trust bundle: anchors, fingerprints, spiffe_sequence, which root issues and what is pending.",
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        printAuthority(ctx, (await c.call(c.client.getAuthorityStatus, {})).status);
      }),
  },
  {
    path: ["ca", "publish"],
    summary:
      "CA rotation step 1: a new root joins the trust bundle; issuance and the WFM SVID stay as they are.",
    notes: [
      "Devices pick up the new bundle within its refresh hint; then run `ca activate` (digest 5.6: publish both anchors, wait at least the refresh interval, switch issuance, retire the old one).",
    ],
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        printAuthority(ctx, (await c.call(c.client.publishNextAuthority, {})).status);
      }),
  },
  {
    path: ["ca", "activate"],
    summary:
      "CA rotation step 2: the published root issues from now on and the WFM SVID is re-minted from it.",
    options: {
      force: {
        type: "boolean",
        description:
          "activate before the bundle refresh hint has passed since `ca publish` (devices that have not refreshed cannot verify SVIDs the new root issues them)",
      },
    },
    notes: [
      "Refused (exit 1) while nothing is published, or until the refresh hint has passed since publishing; the message says when it becomes allowed.",
      "Devices that have not refreshed keep connecting (the new root is sent cross-signed by the old one) until `ca retire`. Re-issue client credentials (`client issue`) before retiring.",
      "After a successful activation the CLI renews its own operator credentials (<DIR>/operator/) from the new root, so retiring the old one does not lock it out.",
    ],
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const res = await c.call(c.client.activateNextAuthority, {
          force: ctx.values.force === true,
        });
        printAuthority(ctx, res.status);
        // The CLI's own SVID comes from the root that just stopped issuing; renew it now, while
        // that root is still trusted, so `ca retire` cannot lock the operator out.
        let renewed: Awaited<ReturnType<typeof renewOperator>>;
        try {
          renewed = await renewOperator(ctx, c, 0);
        } catch (e) {
          throw new RenewAfterActivateError(
            `the new root is active, but renewing the operator credentials failed (${(e as Error).message}): run \`margo-wfm operator renew --data-dir ${ctx.dataDir}\` before \`ca retire\``,
          );
        }
        if (!ctx.json)
          ctx.io.out(
            `operator credentials renewed from the new root: ${renewed.creds.spiffeId}, valid until ${isoOrDash(renewed.creds.notAfter)} (${renewed.dir})`,
          );
      }),
  },
  {
    path: ["ca", "retire"],
    summary:
      "CA rotation step 3: drop every anchor that neither issues nor waits for activation from the trust bundle.",
    notes: [
      "SVIDs the retired roots issued stop working at once; nothing to retire changes nothing.",
      "Refused by the CLI (exit 1) when its own operator SVID would stop verifying: run `margo-wfm operator renew` first.",
    ],
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const before = (await c.call(c.client.getAuthorityStatus, {})).status;
        if (!before) throw new Error("the WFM answered without an authority status");
        const dir = join(ctx.dataDir, OPERATOR_DIR);
        const check = await checkSurvivesRetire(dir, before, c.config.trustDomain);
        if (!check.ok)
          throw new LockoutRefusedError(
            `refusing to retire: the operator SVID in ${dir} would no longer verify (${check.reason}), which would lock this CLI out of the admin service; run \`margo-wfm operator renew --data-dir ${ctx.dataDir}\` first, then retry`,
          );
        printAuthority(ctx, (await c.call(c.client.retirePreviousAuthorities, {})).status);
      }),
  },
];

/** `ca activate` succeeded but the operator renewal after it did not (exit 1, names the fix). */
class RenewAfterActivateError extends CliError {
  override readonly name = "RenewAfterActivateError";
  readonly exitCode = EXIT.wfmFailure;
}

/**
 * Mints a new SVID for the operator whose credentials the CLI uses (same name) and swaps the
 * `<dataDir>/operator/` folder for it, bundle files included.
 */
async function renewOperator(ctx: CommandContext, c: AdminConnection, lifetimeSeconds: number) {
  const dir = join(ctx.dataDir, OPERATOR_DIR);
  const name = await operatorNameOf(dir);
  const res = await c.call(c.client.issueOperatorCredentials, { name, lifetimeSeconds });
  const creds = res.credentials;
  if (!creds) throw new Error("the WFM answered without credentials");
  const files = await replaceCredentialDir(dir, creds);
  return { dir, creds, files };
}

export const operatorCommands: CommandSpec[] = [
  {
    path: ["operator", "renew"],
    summary:
      "Renew the CLI's own operator SVID (<DIR>/operator/) from the issuing root, bundle files included.",
    options: {
      lifetime: {
        type: "string",
        arg: "SECONDS",
        description: "SVID lifetime (default: the WFM's client SVID lifetime)",
      },
    },
    notes: [
      "`ca activate` does this itself; run it before the SVID expires, or when `ca retire` asks for it.",
      "The folder is replaced as a whole (new files written beside it, then renamed in).",
    ],
    run: (ctx) =>
      withAdmin(ctx, async (c) => {
        const lifetime = str(ctx, "lifetime");
        const seconds = lifetime === undefined ? 0 : Number(lifetime);
        if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) {
          throw new UsageError(
            `--lifetime ${lifetime} is not a number of seconds`,
            "operator renew",
          );
        }
        const { creds, files } = await renewOperator(ctx, c, seconds);
        if (ctx.json) {
          ctx.io.out(
            jsonLine({ spiffeId: creds.spiffeId, notAfter: creds.notAfter?.toISOString(), files }),
          );
          return;
        }
        ctx.io.out(`renewed ${creds.spiffeId}, valid until ${isoOrDash(creds.notAfter)}`);
        for (const f of files) ctx.io.out(`  ${f}`);
      }),
  },
];

function printAuthority(ctx: CommandContext, st: admin.AuthorityStatus | undefined) {
  if (!st) throw new Error("the WFM answered without an authority status");
  if (ctx.json) {
    ctx.io.out(jsonLine(admin.AuthorityStatus.toJSON(st)));
    return;
  }
  ctx.io.out(
    `trust bundle spiffe_sequence ${st.spiffeSequence}, refresh hint ${st.refreshHintSeconds} s; anchors (issuing first):`,
  );
  for (const a of st.anchors) {
    const role = admin
      .trustAnchorRoleToJSON(a.role)
      .replace(/^TRUST_ANCHOR_ROLE_/, "")
      .toLowerCase();
    const published = a.publishedAt ? `, published ${a.publishedAt.toISOString()}` : "";
    ctx.io.out(`  ${role.padEnd(8)} sha256:${a.fingerprint}`);
    ctx.io.out(`           ${a.subject}, expires ${a.notAfter?.toISOString() ?? "?"}${published}`);
  }
  if (st.activationAllowedAt)
    ctx.io.out(
      `pending: \`ca activate\` allowed from ${st.activationAllowedAt.toISOString()} (earlier with --force)`,
    );
}
