import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes a file so that readers see either the old or the new content, never a part: write a temp
 * file in the same directory, fsync it, rename it over the target, then fsync the directory.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o640): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'w', mode);
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
    if (/^\..+\.\d+\.[0-9a-f]{8}\.tmp$/.test(n)) {
      await fs.rm(path.join(dir, n), { force: true });
      removed.push(n);
    }
  }
  return removed;
}
