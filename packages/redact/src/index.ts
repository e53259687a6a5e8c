// Redaction (docs/redaction.md): the policy, the secret and PII detectors, and the redactor the
// SDK and the server run over every payload before it is stored.
export { KEY_ENV, PSEUDONYM_HEX_DIGITS, parseProjectKey } from './crypto.ts';
export {
  DETECTOR_NAMES,
  DETECTORS,
  type Detector,
  type DetectorCategory,
  detectorByName,
  entropy,
  ibanChecksumValid,
  luhnValid,
  type Match,
  type ScanStats,
  scanText,
} from './detectors.ts';
export { PolicyError, RedactionKeyError } from './errors.ts';
export { formatPath, type Location, parseLocation, STEP_KINDS } from './paths.ts';
export {
  ACTIONS,
  type Action,
  CONFIG_FILE_NAME,
  DEFAULT_LIMITS,
  type DetectorSetting,
  defaultPolicy,
  type Limits,
  type LoadedPolicy,
  loadPolicy,
  POLICY_FILE_NAME,
  POLICY_VERSION,
  type Policy,
  type PolicyJson,
  type PolicySource,
  parsePolicy,
  policyNeedsKey,
  type Rule,
} from './policy.ts';
export {
  createRedactor,
  DROPPED,
  type Finding,
  MASKED,
  type Redacted,
  type Redactor,
  type RedactorOptions,
  SCAN_FAILED,
  type ScanFailure,
  unseal,
} from './redactor.ts';
export type { StreamRedactor } from './stream.ts';
