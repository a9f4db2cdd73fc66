export * from './tap.js';
export * from './udp.js';
export * from './netlink.js';
export * from './errors.js';
export * from './nft.js';
export * from './sysctl.js';
