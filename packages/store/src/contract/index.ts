export * from './blob-contract.ts';
export * from './contract.ts';
export * from './events.ts';
export * from './generators.ts';
export * from './replay-queue-contract.ts';
