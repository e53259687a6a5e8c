// The Rewind server (docs/server.md). Filled in by issue 4.
export {};
