import { RewindError } from '@rewind/schema';

/** A policy that cannot be used: `field` names the offending part, e.g. `rules[2].path`. */
export class PolicyError extends RewindError {
  override readonly name = 'PolicyError';
  /** The offending field of the policy (`detectors.emial`, `rules[2].action`), '' for the whole. */
  readonly field: string;
  /** The file the policy came from, when it came from one. */
  readonly file: string | undefined;
  constructor(field: string, problem: string, file?: string, options?: { cause?: unknown }) {
    const where = [file, field].filter((part) => part !== undefined && part !== '').join(': ');
    super('invalid_policy', `${where === '' ? 'redaction policy' : where}: ${problem}`, options);
    this.field = field;
    this.file = file;
  }
  static override isInstance(value: unknown): value is PolicyError {
    return RewindError.isInstance(value) && value.code === 'invalid_policy';
  }
}

/** The policy hashes or seals, but no project key was given, or the key is malformed. */
export class RedactionKeyError extends RewindError {
  override readonly name = 'RedactionKeyError';
  constructor(message: string) {
    super('redaction_key', message);
  }
  static override isInstance(value: unknown): value is RedactionKeyError {
    return RewindError.isInstance(value) && value.code === 'redaction_key';
  }
}
