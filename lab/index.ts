export * from './errors.js';
export * from './lab.js';
export * from './traffic.js';
export * from './weft-cluster.js';
export * from './path-switch.js';
export * from './containerd.js';
export * from './cri-client.js';
export * from './cri-cni.js';
export { buildLabImages, importLabImages, defaultImageCacheDir, PAUSE_IMAGE, BUSYBOX_IMAGE, type LabImage, type LabImages } from './cri-images.js';
