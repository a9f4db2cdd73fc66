export * from './errors.js';
export * from './logger.js';
export * from './clock.js';
export * from './startable.js';
export * from './mac.js';
export * from './net.js';
export * from './ids.js';
export * from './paths.js';
