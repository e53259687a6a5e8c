/** The trace format version this package reads and writes (SPEC §4, "Versioning"). */
export const SCHEMA_VERSION = 1 as const;
export const FORMAT_NAME = 'rewind-trace';
