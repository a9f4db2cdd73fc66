export * from './errors.js';
export * from './lab.js';
export * from './traffic.js';
export * from './weft-cluster.js';
export * from './path-switch.js';
