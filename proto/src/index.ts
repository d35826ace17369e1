export * from "./problem.js";
