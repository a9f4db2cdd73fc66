/**
 * Offline images for a lab container runtime, built from Debian packages with umoci (OCI layout
 * tarballs) and loaded with `ctr images import`: nothing is pulled.
 *
 *   pause    /pause = catatonit (static), entrypoint `/pause -P` (pause mode)
 *   busybox  a static busybox (unpacked from busybox-static by scripts/prereqs.sh) and a symlink per applet (sh, sleep, ping, ip, nc, ...)
 *
 * The tarballs are cached under a directory keyed by a hash of the inputs, so every test of a run
 * (and later runs) reuse them; a build writes to a private directory and renames into place.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../src/platform/linux/run.js';
import { LabError } from './errors.js';

export const PAUSE_IMAGE = 'weft.lab/pause:3.6';
export const BUSYBOX_IMAGE = 'weft.lab/busybox:1';

const CATATONIT = '/usr/bin/catatonit';
/** Unpacked from Debian's busybox-static by scripts/prereqs.sh (not installed: it would replace a dynamic busybox). */
const BUSYBOX = '/var/cache/weft/busybox-static/bin/busybox';
/** Bump when the recipe below changes, so cached tarballs are rebuilt. */
const RECIPE = 'weft-lab-images/1';

export interface LabImage {
  /** The name the runtime knows it by, e.g. 'weft.lab/pause:3.6'. */
  ref: string;
  /** OCI layout tarball. */
  tar: string;
}

export interface LabImages {
  pause: LabImage;
  busybox: LabImage;
}

/** Default cache directory of the image tarballs. */
export function defaultImageCacheDir(): string {
  return join(tmpdir(), 'weft-lab-images');
}

/** Builds the pause and busybox tarballs unless the cache already has them. */
export async function buildLabImages(cacheDir = defaultImageCacheDir()): Promise<LabImages> {
  const key = await inputKey();
  const dir = join(cacheDir, key);
  const images: LabImages = {
    pause: { ref: PAUSE_IMAGE, tar: join(dir, 'pause.tar') },
    busybox: { ref: BUSYBOX_IMAGE, tar: join(dir, 'busybox.tar') },
  };
  if ((await isFile(images.pause.tar)) && (await isFile(images.busybox.tar))) return images;
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, 'build-'));
  try {
    await buildImage(work, 'pause', tagOf(PAUSE_IMAGE), images.pause.tar, async (rootfs) => {
      await copyFile(CATATONIT, join(rootfs, 'pause'));
    }, ['--config.entrypoint', '/pause', '--config.entrypoint', '-P', '--clear=config.cmd']);
    await buildImage(work, 'busybox', tagOf(BUSYBOX_IMAGE), images.busybox.tar, async (rootfs) => {
      await mkdir(join(rootfs, 'bin'), { recursive: true });
      await mkdir(join(rootfs, 'tmp'));
      await chmod(join(rootfs, 'tmp'), 0o1777);
      await copyFile(BUSYBOX, join(rootfs, 'bin', 'busybox'));
      const applets = (await run(BUSYBOX, ['--list'])).split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
      for (const a of applets) await symlink('busybox', join(rootfs, 'bin', a));
    }, ['--config.cmd', 'sh', '--config.env', 'PATH=/bin']);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return images;
}

/** Loads the images into the runtime behind `socket` (containerd namespace k8s.io, where CRI looks). */
export async function importLabImages(socket: string, images: LabImages): Promise<void> {
  for (const img of [images.pause, images.busybox]) {
    const base = img.ref.slice(0, img.ref.lastIndexOf(':'));
    await run('ctr', ['--address', socket, '--namespace', 'k8s.io', 'images', 'import', '--base-name', base, img.tar], { timeoutMs: 60_000 });
  }
}

async function buildImage(
  work: string,
  name: string,
  tag: string,
  out: string,
  fill: (rootfs: string) => Promise<void>,
  config: string[],
): Promise<void> {
  const layout = join(work, name);
  const image = `${layout}:${tag}`;
  const bundle = join(work, `${name}-bundle`);
  const umoci = (args: string[]): Promise<string> => run('umoci', args, { timeoutMs: 60_000 });
  try {
    await umoci(['init', '--layout', layout]);
    await umoci(['new', '--image', image]);
    await umoci(['unpack', '--image', image, bundle]);
    await fill(join(bundle, 'rootfs'));
    await umoci(['repack', '--image', image, bundle]);
    await umoci(['config', '--image', image, ...config]);
    await umoci(['gc', '--layout', layout]);
  } catch (err) {
    throw new LabError(`building the lab image ${name} with umoci in ${work} failed (are umoci, catatonit and busybox-static installed? see scripts/prereqs.sh)`, { cause: err });
  }
  const partial = `${out}.${process.pid}.partial`;
  await run('tar', ['-C', layout, '-cf', partial, '.'], { timeoutMs: 60_000 });
  await rename(partial, out);
}

function tagOf(ref: string): string {
  return ref.slice(ref.lastIndexOf(':') + 1);
}

async function inputKey(): Promise<string> {
  const h = createHash('sha256').update(RECIPE);
  for (const f of [CATATONIT, BUSYBOX]) {
    try {
      h.update(await readFile(f));
    } catch (err) {
      throw new LabError(`${f} is missing: install catatonit and busybox-static (scripts/prereqs.sh)`, { cause: err });
    }
  }
  h.update(await run('umoci', ['--version']).catch(() => 'umoci ?'));
  return h.digest('hex').slice(0, 16);
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}
