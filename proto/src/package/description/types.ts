import type { SchemaRule } from "./parameter-value.js";

/**
 * margo.yaml exactly as it is written (the YAML/JSON shape of digest 2), after validation.
 * Tools that read or write the file work on this shape so nothing is lost in translation;
 * extension members stay where the vendor put them (`x-<name>-extensions` keys).
 */
/** bigint only for integers beyond 2^53, which a number would round (see parse.ts). */
export type ParameterValue =
  | string
  | number
  | bigint
  | boolean
  | Array<string | number | bigint | boolean>;

export interface ApplicationDescriptionDoc {
  apiVersion: string;
  id: string;
  metadata: DescriptionMetadata;
  deploymentProfiles: DeploymentProfileDoc[];
  parameters?: Record<string, ParameterDoc>;
  configuration?: ConfigurationDoc;
  [extension: `x-${string}-extensions`]: Record<string, unknown>;
}

export interface DescriptionMetadata {
  name: string;
  description?: string;
  version: string;
  catalog: {
    application?: {
      descriptionFile?: string;
      icon?: string;
      licenseFile?: string;
      releaseNotes?: string;
      site?: string;
      tagline?: string;
      tags?: string[];
    };
    author?: Array<{ name?: string; email?: string }>;
    organization: Array<{ name: string; site?: string }>;
  };
}

export interface DeploymentProfileDoc {
  type: string;
  id: string;
  description?: string;
  deviceConstraints?: DeviceConstraintsDoc;
  components: ComponentDoc[];
  [extension: `x-${string}-extensions`]: Record<string, unknown>;
}

export interface DeviceConstraintsDoc {
  capacityRequirements?: {
    cpu?: { cores: number; architectures?: string[] };
    memory?: string;
    storage?: string;
  };
  eligibilityRules?: Array<{ propertySelector?: SelectorDoc; labelSelector?: SelectorDoc }>;
}

export interface SelectorDoc {
  matchExpressions: MatchExpressionDoc[];
}

export interface MatchExpressionDoc {
  key: string;
  operator: string;
  values?: ParameterValue;
  itemSelector?: SelectorDoc;
}

export interface ComponentDoc {
  name: string;
  properties: { repository: string; revision: string; wait?: boolean; timeout?: string };
  [extension: `x-${string}-extensions`]: Record<string, unknown>;
}

export interface ParameterDoc {
  value?: ParameterValue;
  targets: Array<{ pointer: string; components: string[] }>;
}

export interface ConfigurationDoc {
  sections: Array<{
    name: string;
    settings: Array<{
      parameter: string;
      name: string;
      description?: string;
      immutable?: boolean;
      schema: string;
    }>;
  }>;
  schema: SchemaRule[];
}
