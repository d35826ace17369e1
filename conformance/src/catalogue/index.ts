// The requirement catalogue: what rc.3 demands, per persona, and how checks cite it.
export {
  CatalogueError,
  catalogueById,
  DEFAULT_CATALOGUE_PATH,
  loadCatalogue,
  parseCatalogue,
} from "./load.js";
export { LEVELS, levelRank, PERSONAS, type Requirement } from "./requirement.js";
