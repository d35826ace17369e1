// Service definitions live in one namespace per proto package: the driver packages reuse rpc
// names such as Info and Reset, so their request/response types would collide if flattened.

export * as admin from "./gen/margo/admin/v1/wfm_admin.js";
export * as api from "./gen/margo/api/v1/workload_management.js";
export * as deviceDriver from "./gen/margo/driver/device/v1/device_driver.js";
export * as wfmDriver from "./gen/margo/driver/wfm/v1/wfm_driver.js";

// The Margo rc.3 model generated from proto/margo/model/v1 (regenerate with
// `npm run generate`). Model types are flat because every wire codec, validator and service uses
// them; message names are unique across the model package, so `export *` cannot collide.
export * from "./gen/margo/model/v1/application_deployment.js";
export * from "./gen/margo/model/v1/application_description.js";
export * from "./gen/margo/model/v1/common.js";
export * from "./gen/margo/model/v1/deployment_status.js";
export * from "./gen/margo/model/v1/device_capabilities.js";
export * from "./gen/margo/model/v1/device_constraints.js";
export * from "./gen/margo/model/v1/problem_detail.js";
export * from "./gen/margo/model/v1/state_manifest.js";
export * from "./gen/margo/model/v1/trust.js";
export * from "./problem.js";
