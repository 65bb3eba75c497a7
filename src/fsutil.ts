import { promises as fs, closeSync, constants as fsConstants, fstatSync, fsync, openSync, readFileSync, readSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Identity of a file's content as written: its inode, size and modification time. */
export interface WrittenStat {
  ino: number;
  size: number;
  mtimeMs: number;
}

/** Whether a stat (or another WrittenStat) is of the very file `written` describes. */
export function isWritten(st: WrittenStat, written: WrittenStat): boolean {
  return st.ino === written.ino && st.size === written.size && st.mtimeMs === written.mtimeMs;
}

/**
 * Writes a file so that readers see either the old or the new content, never a part: write a temp
 * file in the same directory, fsync it, rename it over the target, then fsync the directory.
 * Resolves with the written file's inode, size and mtime (taken before the rename), so a caller can
 * later tell whether the file at `file` is still the one it wrote. `mode` is a new file's: a file
 * that is replaced keeps its owner, group and mode (see takeOwnerAndMode).
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o640): Promise<WrittenStat> {
  const prepared = await prepareFileAtomic(file, data, mode);
  await prepared.commit();
  return prepared.written;
}

/** A file written to its temp file and fsynced, not yet renamed over its target. */
export interface PreparedFile {
  readonly file: string;
  readonly written: WrittenStat;
  /**
   * Renames it over the target and fsyncs the directory (the temp file is removed if that fails).
   * `syncDir: false` leaves the directory's fsync to the caller (fsyncDir), who may overlap it with
   * other work but must wait for it before relying on the rename having reached the disk.
   */
  commit(opts?: { syncDir?: boolean }): Promise<void>;
  /** Removes the temp file; the target is left as it was. */
  discard(): Promise<void>;
}

/**
 * writeFileAtomic in two steps: the content goes to a temp file beside `file` and is fsynced now;
 * commit() puts it in place later, so a caller can do other work (or wait for it) in between.
 */
export async function prepareFileAtomic(file: string, data: string | Buffer, mode = 0o640): Promise<PreparedFile> {
  const dir = path.dirname(file);
  const tmp = tempNameFor(file);
  const handle = await fs.open(tmp, 'wx', mode);
  let written: WrittenStat;
  try {
    writeAllSync(handle.fd, data);
    await handle.sync();
    const st = fstatSync(handle.fd);
    written = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
  } catch (err) {
    await handle.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  let state: 'ready' | 'done' = 'ready';
  return {
    file,
    written,
    commit: async (opts) => {
      if (state !== 'ready') throw new Error(`${file}: already committed or discarded`);
      state = 'done';
      await placeTemp(tmp, file, mode);
      if (opts?.syncDir !== false) await fsyncDir(dir);
    },
    discard: async () => {
      if (state !== 'ready') return;
      state = 'done';
      await fs.rm(tmp, { force: true });
    },
  };
}

/** Strings are written in slices of this many UTF-16 units (a few MB at most in flight). */
const SLICE = 1 << 20;

/**
 * Writes all of `data` with synchronous writes: for the multi-megabyte config files this is a
 * third faster than FileHandle.writeFile (which converts and writes 512 KiB at a time through the
 * thread pool), and the fsync, the slow part on a busy disk, stays asynchronous. A string goes in
 * 1 Mi-unit slices, so that a 70 MB file is never copied whole into a second buffer.
 */
function writeAllSync(fd: number, data: string | Buffer): void {
  if (typeof data !== 'string') {
    for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
    return;
  }
  for (let i = 0; i < data.length;) {
    let end = Math.min(data.length, i + SLICE);
    // Never split a surrogate pair: each half alone would be written as U+FFFD.
    if (end < data.length && (data.charCodeAt(end - 1) & 0xfc00) === 0xd800) end--;
    const piece = i === 0 && end === data.length ? data : data.slice(i, end);
    const n = writeSync(fd, piece);
    const bytes = Buffer.byteLength(piece);
    if (n < bytes) {
      const buf = Buffer.from(piece);
      for (let off = n; off < bytes;) off += writeSync(fd, buf, off, bytes - off);
    }
    i = end;
  }
}

const fsyncAsync = promisify(fsync);
/** String.prototype.isWellFormed (ES2024, in Node 20): false when a string holds a lone surrogate. */
const wellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
/** StagedFile's encoding buffer: the pieces are encoded into it and written once about this full. */
const STAGE_BYTES = 1 << 20;

/**
 * A file written piece by piece, for output too large to hold whole: the pieces are encoded
 * straight into a buffer that goes to a temp file next to `target` whenever it is about full (1 MiB,
 * compared on the way with the target's current bytes), and commit() then either renames the temp
 * file over the target with the guarantees of writeFileAtomic, or, when the content is what the
 * target already holds, removes it and leaves the target untouched. "Already holds" means what
 * comparing the target's text (read as UTF-8) with the content would say: the bytes decide, except
 * for content holding U+FFFD or a lone surrogate, where the text comparison is made (or its answer
 * known) instead. end() (or prepare()) once the last piece is pushed does the comparison and starts
 * the temp file's fsync at once, so that it overlaps what the caller does before commit().
 */
export class StagedFile {
  readonly tmp: string;
  /** UTF-8 bytes written so far. */
  bytes = 0;
  private fd: number | undefined;
  /** The target, open for reading while every byte so far equals the content. */
  private current: number | undefined;
  /** Encoded content not yet written: stage[0, staged). */
  private stage: Buffer | undefined;
  private staged = 0;
  /** A high surrogate that ended the last piece, held back until the piece that completes its pair. */
  private carry = '';
  private hasReplacement = false;
  private hasLoneSurrogate = false;
  private existed = false;
  private readBuf: Buffer | undefined;

  constructor(readonly target: string, private readonly mode = 0o640) {
    this.tmp = tempNameFor(target);
    this.fd = openSync(this.tmp, 'wx', mode);
    try {
      this.current = openSync(target, 'r');
      this.existed = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.discardSync();
        throw err;
      }
    }
  }

  push(piece: string): void {
    if (this.carry) {
      piece = this.carry + piece;
      this.carry = '';
    }
    if (piece === '') return;
    // Encoded alone, each half of a surrogate pair split between two pieces would become U+FFFD.
    if ((piece.charCodeAt(piece.length - 1) & 0xfc00) === 0xd800) {
      this.carry = piece.slice(-1);
      piece = piece.slice(0, -1);
    }
    this.encode(piece);
  }

  /** Encodes text into the stage (writing the stage first when it could not hold it). */
  private encode(piece: string): void {
    // Only a comparison with an existing target needs to know these (see commit()).
    if (this.existed) {
      if (!this.hasReplacement && piece.includes('\ufffd')) this.hasReplacement = true;
      if (!this.hasLoneSurrogate && !wellFormed(piece)) this.hasLoneSurrogate = true;
    }
    const most = piece.length * 3; // UTF-8 bytes at most
    let stage = this.stage;
    if (stage && this.staged + most > stage.length) this.flush();
    if (!stage || most > stage.length) stage = this.stage = Buffer.allocUnsafe(Math.max(STAGE_BYTES, most));
    this.staged += stage.write(piece, this.staged);
  }

  /** Writes the staged bytes (and compares them with the target's). */
  private flush(): void {
    const n = this.staged;
    if (n === 0) return;
    const buf = this.stage!.subarray(0, n);
    this.staged = 0;
    for (let off = 0; off < buf.length;) off += writeSync(this.fd!, buf, off, buf.length - off);
    if (this.current !== undefined && !this.sameAsCurrent(buf)) this.closeCurrent();
    this.bytes += buf.length;
  }

  /** True when the target's next bytes (from this.bytes on) are buf. */
  private sameAsCurrent(buf: Buffer): boolean {
    if (!this.readBuf || this.readBuf.length < buf.length) this.readBuf = Buffer.allocUnsafe(Math.max(buf.length, 1 << 16));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(this.current!, this.readBuf, got, buf.length - got, this.bytes + got);
      if (n === 0) return false;
      got += n;
    }
    return this.readBuf.subarray(0, buf.length).equals(buf);
  }

  private closeCurrent(): void {
    if (this.current === undefined) return;
    closeSync(this.current);
    this.current = undefined;
  }

  /** Settles once the content is complete: the temp file fsync'd, or removed when the target
   * already holds this content (then `unchanged`). */
  private prepared: Promise<void> | undefined;
  private unchanged = false;

  /**
   * Ends the content: writes what is staged, compares with the target, and starts the temp
   * file's fsync (or removes the temp file when the target already holds this content). Called as
   * soon as the last piece is pushed, the fsync overlaps whatever comes next; commit() waits for
   * it. Idempotent; nothing may be pushed after it.
   */
  prepare(): Promise<void> {
    return (this.prepared ??= this.doPrepare());
  }

  /** The content is complete: prepare() now (its error, if any, is thrown by commit()). */
  end(): void {
    this.prepare().catch(() => undefined);
  }

  private async doPrepare(): Promise<void> {
    if (this.carry) {
      // The content ends in a lone high surrogate: it is written (as U+FFFD) like any other.
      const last = this.carry;
      this.carry = '';
      this.encode(last);
    }
    this.flush();
    this.stage = undefined;
    let same = this.current !== undefined && fstatSync(this.current).size === this.bytes;
    this.closeCurrent();
    // Comparing text, a lone surrogate never equals what a file reads back; U+FFFD may equal bytes
    // that are not valid UTF-8.
    if (this.hasLoneSurrogate) same = false;
    else if (!same && this.existed && this.hasReplacement) same = readFileSync(this.tmp, 'utf8') === readFileSync(this.target, 'utf8');
    if (same) {
      this.unchanged = true;
      this.discardSync();
      return;
    }
    const fd = this.fd!;
    this.fd = undefined;
    try {
      await fsyncAsync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Finishes the file: true when the target was replaced, false when it already held this
   * content (then it is left as it was).
   */
  async commit(): Promise<boolean> {
    await this.prepare();
    if (this.unchanged) return false;
    await placeTemp(this.tmp, this.target, this.mode);
    await fsyncDir(path.dirname(this.target));
    return true;
  }

  /** Removes the temp file; the target is left as it was. */
  discardSync(): void {
    this.closeCurrent();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    try {
      unlinkSync(this.tmp);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Gives a finished temp file the owner, group and permission bits of the file it is about to
 * replace, or `mode` when there is none: a daemon running as root must not turn the operator's
 * asterisk:asterisk 0640 file into a root:root one that Asterisk (running as `asterisk`) cannot
 * read. Giving a file away needs privilege: without it (EPERM; EINVAL for an id outside this user
 * namespace) the temp file stays the writer's, as every file it writes is.
 */
async function takeOwnerAndMode(tmp: string, target: string, mode: number): Promise<void> {
  let replaced: Stats | undefined;
  try {
    replaced = await fs.stat(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (replaced) {
    try {
      // lchown: a symlink planted at the temp file's name is not followed.
      await fs.lchown(tmp, replaced.uid, replaced.gid);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'EINVAL') throw err;
    }
  }
  // After the chown, which may clear set-id bits; those (and the sticky bit) are never kept.
  await fs.chmod(tmp, replaced ? replaced.mode & 0o777 : mode);
}

/** Gives a finished temp file its owner and mode (takeOwnerAndMode) and renames it over `target` (removing it if either fails). */
async function placeTemp(tmp: string, target: string, mode: number): Promise<void> {
  try {
    await takeOwnerAndMode(tmp, target, mode);
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Copies `source` to `target` with the same all-or-nothing guarantee as writeFileAtomic. */
export async function copyFileAtomic(source: string, target: string, mode = 0o640): Promise<void> {
  const tmp = tempNameFor(target);
  try {
    await fs.copyFile(source, tmp, fsConstants.COPYFILE_EXCL);
    await takeOwnerAndMode(tmp, target, mode);
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

/** `.name.<pid>.<rand>.tmp`; group 1 is the writer's pid. */
const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/** The temp file writeFileAtomic/copyFileAtomic use for `file` (same directory, so rename is atomic). */
function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** True for a temp file name of writeFileAtomic/copyFileAtomic (a crash may leave one behind). */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** A text file's content, or undefined when there is no such file (other errors are thrown). */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
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

/**
 * Removes temp files a crashed writer left behind (`.name.pid.rand.tmp`). With `writerAlive`, a
 * temp file whose writer (the pid in its name) is alive is kept: it may be renamed into place yet.
 * `writerAlive` is given the temp file's mtime too, to tell a live pid from a reused one.
 */
export async function removeStaleTemps(dir: string, writerAlive?: (pid: number, modifiedMs: number) => boolean): Promise<string[]> {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = await fs.readdir(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    const m = TEMP_NAME.exec(n);
    if (!m) continue;
    if (writerAlive) {
      const st = await fs.lstat(path.join(dir, n)).catch(() => undefined);
      if (!st || writerAlive(Number(m[1]), st.mtimeMs)) continue;
    }
    await fs.rm(path.join(dir, n), { force: true });
    removed.push(n);
  }
  return removed;
}
