export * from './config.ts';
export * from './errors.ts';
export { type CliContext, main, version } from './main.ts';
export { type RunListItemJson, renderRunsTable, toRunListJson } from './render-runs.ts';
export { type RenderOptions, renderShow, stepPreview, timelineTree } from './render-show.ts';
export * from './run-view.ts';
export * from './sample-run.ts';
export * from './trace-builder.ts';
