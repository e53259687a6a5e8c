import { RewindError } from '@rewind/schema';

// Errors of opening a metadata store. `isInstance` checks the stable `code`, so it works across
// copies of the package. Bad queries are plain RewindErrors with code `invalid_query`.

/** The store's migrations are newer than this code knows: a newer Rewind wrote it. */
export class StoreTooNewError extends RewindError {
  override readonly name = 'StoreTooNewError';
  readonly location: string;
  /** The newest migration recorded in the store. */
  readonly found: number;
  /** The newest migration this Rewind knows. */
  readonly supported: number;
  constructor(location: string, found: number, supported: number) {
    super(
      'store_too_new',
      `this store (${location}) was written by a newer Rewind: it is at migration ${found}, this Rewind knows up to ${supported}; upgrade Rewind to open it`,
    );
    this.location = location;
    this.found = found;
    this.supported = supported;
  }
  static override isInstance(value: unknown): value is StoreTooNewError {
    return RewindError.isInstance(value) && value.code === 'store_too_new';
  }
}

/** The store cannot be reached or created: an unreachable database, an unwritable directory. */
export class StoreUnavailableError extends RewindError {
  override readonly name = 'StoreUnavailableError';
  readonly location: string;
  constructor(location: string, message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message, options);
    this.location = location;
  }
  static override isInstance(value: unknown): value is StoreUnavailableError {
    return RewindError.isInstance(value) && value.code === 'store_unavailable';
  }
}
