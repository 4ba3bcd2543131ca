/**
 * The contract between the worker chart and its `loadSampler` actor (`src/load`): no input, and
 * it is sent nothing; it reports the load now and then. What counts as load is the user's `loadFnc`
 * (or the default CPU window); the chart only compares it with `loadThreshold`.
 */

/** loadSampler → worker. `load` is in [0, 1]. */
export type LoadSamplerReport = { type: 'LOAD_SAMPLED'; load: number };
