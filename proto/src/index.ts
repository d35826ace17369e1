// The public face of @margo/proto: the shared Problem contract plus the Margo rc.3 model and
// services generated from proto/margo (regenerate with `npm run generate`).
//
// Service packages are namespaces (admin, api, deviceDriver, wfmDriver) because the driver
// packages both define Info and Reset, so their request/response types would collide if flattened.
// Model types (margo.model.v1) are flat: every codec, validator and service uses them, and their
// names are unique within the package, so `export *` cannot collide.
export * as admin from "./gen/margo/admin/v1/wfm_admin.js";
export * as api from "./gen/margo/api/v1/workload_management.js";
export * as deviceDriver from "./gen/margo/driver/device/v1/device_driver.js";
export * as wfmDriver from "./gen/margo/driver/wfm/v1/wfm_driver.js";
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
