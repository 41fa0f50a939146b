import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'fs';
import { randomBytes } from 'crypto';
import { basename, dirname, join } from 'path';

/**
 * Writes a file so that readers see either the old content or the whole new one, never a torn
 * file, even if the process dies mid-write: temp file in the same directory, fsync, rename over
 * the target, fsync the directory.
 */
export function writeFileAtomic(path: string, content: string | Buffer): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  let fd: number | undefined = openSync(tmp, 'w', 0o644);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
