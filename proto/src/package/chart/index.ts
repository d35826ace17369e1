export { CHART_RULES, type ChartRule } from "./rules.js";
export {
  type HelmChartOptions,
  type HelmChartResult,
  validateHelmChart,
} from "./validate-chart.js";
