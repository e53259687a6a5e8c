// Redaction (docs/redaction.md). Filled in by issue 5.
export {};
