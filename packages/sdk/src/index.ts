// @rewind/sdk: the capture SDK. See docs/sdk.md.

export {
  type CaptureConfig,
  type CaptureConfigInput,
  type CaptureDestination,
  CONFIG_FILE_NAME,
  ConfigError,
  DEFAULT_STORE,
  resolveCaptureConfig,
} from '@rewind/store';
export { captureRuntime, currentRunId, isRecording, startStep } from './capture.ts';
export type { ActiveStep, CaptureRuntime, FailExtras, FinishExtras, StepOptions } from './capture-api.ts';
export { type CaptureErrorCode, type ErrorHandler, RewindCaptureError } from './errors.ts';
export {
  type ExporterStats,
  HttpExporter,
  type HttpExporterOptions,
} from './export/exporter.ts';
export type { BackoffOptions } from './export/retry.ts';
export { uuidv7 } from './ids.ts';
export type { CaptureStats, FlushResult } from './pipeline.ts';
export {
  type DeadlineOptions,
  type ModelWrapOptions,
  Recorder,
  type RecorderOptions,
  SDK_NAME,
  SDK_VERSION,
  type WrapOptions,
} from './recorder.ts';
export {
  holdsRedaction,
  payloadContentHash,
  type RedactedPayload,
  redactAttributes,
  redactChunks,
  redactError,
  redactPayload,
  requestHashFor,
  resolveRedactor,
  stepAt,
} from './redaction.ts';
export {
  type Divergence,
  type DivergenceReason,
  type FieldDiff,
  ReplayDivergenceError,
  ReplayError,
} from './replay/errors.ts';
export {
  type ForkOptions,
  type ReplayLabel,
  type ReplayOptions,
  type ReplayResult,
  type ReplayStepReport,
  replay,
} from './replay/replay.ts';
export { type RecordingSource, storeSource } from './replay/source.ts';
export type { Sink, SinkBatch, SinkListener, SinkOutcome } from './sink.ts';
export {
  installTape,
  MAX_TAPE_ENTRIES,
  type ServeOptions,
  Tape,
  type TapeData,
  type TapeStream,
} from './tape.ts';
