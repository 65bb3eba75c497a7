import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes a file so that readers see either the old or the new content, never a part: write a temp
 * file in the same directory, fsync it, rename it over the target, then fsync the directory.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o640): Promise<void> {
  const dir = path.dirname(file);
  const tmp = tempNameFor(file);
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.chmod(tmp, mode);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** Copies `source` to `target` with the same all-or-nothing guarantee as writeFileAtomic. */
export async function copyFileAtomic(source: string, target: string, mode = 0o640): Promise<void> {
  const tmp = tempNameFor(target);
  try {
    await fs.copyFile(source, tmp, fsConstants.COPYFILE_EXCL);
    await fs.chmod(tmp, mode);
    const handle = await fs.open(tmp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(target));
}

/** Renames `from` to `to` and makes the change durable in both directories. */
export async function renameDurable(from: string, to: string): Promise<void> {
  await fs.rename(from, to);
  await fsyncDir(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) await fsyncDir(path.dirname(from));
}

const TEMP_NAME = /^\..+\.\d+\.[0-9a-f]{8}\.tmp$/;

/** The temp file writeFileAtomic/copyFileAtomic use for `file` (same directory, so rename is atomic). */
function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** True for a temp file name of writeFileAtomic/copyFileAtomic (a crash may leave one behind). */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

export async function fsyncDir(dir: string): Promise<void> {
  let h: fs.FileHandle | undefined;
  try {
    h = await fs.open(dir, 'r');
    await h.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await h?.close();
  }
}

/** Removes temp files a crashed writer left behind (`.name.pid.rand.tmp`). */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = await fs.readdir(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (isTempName(n)) {
      await fs.rm(path.join(dir, n), { force: true });
      removed.push(n);
    }
  }
  return removed;
}
