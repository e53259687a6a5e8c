export * from './blob-contract.ts';
export * from './contract.ts';
export * from './events.ts';
export * from './generators.ts';
