/**
 * What the Applier remembers between applies about the files it reads and writes, so that a
 * one-agent edit does not read back, hash and parse ~14 MB of output and a multi-megabyte manifest
 * every time.
 *
 * Trust rule: a remembered content is used only while the file's `stat` is exactly what it was
 * when the content was read or written: same inode, size, mtime **and ctime**. Any write to the
 * file (in place or by rename), `touch`, `chmod`, a new hard link or even `utimes` setting the old
 * mtime back changes the ctime, which only the kernel sets; so a file changed by anyone else is
 * read again, as before. Nothing is remembered across processes.
 */
import { promises as fs, type Stats } from 'node:fs';
import { isWritten, type WrittenStat } from '../fsutil.js';
import type { Transports } from './conf.js';
import type { Manifest } from './manifest.js';
import { hashContent } from './manifest.js';

/** A file's identity on disk: if any of these differ, it is not the content remembered. */
export interface FileKey {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** A place in a generation directory holding a copy of a content (to hard-link from), and the file it must still be. */
export interface CopyRef extends WrittenStat {
  path: string;
}

/**
 * A file's content: its bytes (read from disk), or the text it is written from (rendered; its UTF-8
 * encoding is the bytes: no Buffer is made for it unless one is needed), or both; and what is
 * derived from it, computed once when first needed.
 */
export interface Content {
  data?: Buffer;
  text?: string;
  /** sha256 of the bytes. */
  hash?: string;
  /** pjsip transports of the text. */
  transports?: Transports;
}

/** One managed file as found on disk: its content, and the stat it is trusted under. */
export interface KnownFile extends Content {
  key: FileKey;
  mode: number;
  /** A generation file with this content that is not this file's inode (see Generations.create). */
  copy?: CopyRef;
}

/** The bytes of a content (encoded once from its text if need be). */
export function bytesOf(c: Content): Buffer {
  return (c.data ??= Buffer.from(c.text!, 'utf8'));
}

/** The text of a content (decoded, not kept, when it was read from disk). */
export function textOf(c: Content): string {
  return c.text ?? c.data!.toString('utf8');
}

/** Whether two contents are the same bytes (texts compare as text: equal text, equal bytes). */
export function sameContent(a: Content | undefined, b: Content | undefined): boolean {
  if (!a || !b) return a === b;
  if (a === b) return true;
  if (a.text !== undefined && b.text !== undefined) return a.text === b.text;
  if (a.data && b.data && a.data.length !== b.data.length) return false;
  return bytesOf(a).equals(bytesOf(b));
}

export function keyOf(st: Stats): FileKey {
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

export function sameKey(a: FileKey, b: FileKey): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

export function hashOf(c: Content): string {
  return (c.hash ??= hashContent(c.data ?? c.text!));
}

/** The remembered content of files by absolute path. */
export class KnownFiles {
  private readonly files = new Map<string, KnownFile>();
  /** Counters, for tests: contents read from disk vs taken from memory. */
  readonly stats = { reads: 0, hits: 0 };

  /** The file's content: remembered if its stat is unchanged, else read (and remembered). Undefined: no such file. */
  async read(file: string): Promise<KnownFile | undefined> {
    let st: Stats;
    try {
      st = await fs.stat(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.files.delete(file);
      return undefined;
    }
    const known = this.files.get(file);
    if (known && sameKey(known.key, keyOf(st)) && known.mode === (st.mode & 0o777)) {
      this.stats.hits++;
      return known;
    }
    this.files.delete(file);
    this.stats.reads++;
    // Read through one descriptor and stat it before and after: the content belongs to the key
    // only if nothing changed the file meanwhile (else it is simply not remembered).
    const h = await fs.open(file, 'r');
    try {
      const before = await h.stat();
      const data = await h.readFile();
      const after = await h.stat();
      const entry: KnownFile = { key: keyOf(after), mode: after.mode & 0o777, data };
      if (sameKey(keyOf(before), entry.key)) this.files.set(file, entry);
      return entry;
    } finally {
      await h.close();
    }
  }

  /**
   * Remembers `content` as what was just written to `file` by writeFileAtomic (which returned
   * `written`), if the file at that path is still it: same inode, size and mtime (its ctime changed
   * with the rename). The content object itself becomes the remembered entry (what was derived
   * from it stays with it).
   */
  async wrote(file: string, written: WrittenStat, content: Content): Promise<void> {
    this.files.delete(file);
    let st: Stats;
    try {
      st = await fs.stat(file);
    } catch {
      return;
    }
    if (!isWritten(st, written)) return;
    if (content.data && content.data.length !== st.size) return;
    const entry = content as KnownFile;
    entry.key = keyOf(st);
    entry.mode = st.mode & 0o777;
    this.files.set(file, entry);
  }

  forget(file: string): void {
    this.files.delete(file);
  }
}

/** The last manifest read or written, by file, trusted under the same rule. */
export class KnownManifests {
  private readonly manifests = new Map<string, { key: FileKey; manifest: Manifest | undefined }>();
  readonly stats = { reads: 0, hits: 0 };

  /** `read` parses the file (readManifest); its result is remembered with the file's stat. */
  async get(file: string, read: (file: string) => Promise<Manifest | undefined>): Promise<Manifest | undefined> {
    const before = await statOrUndefined(file);
    if (!before) {
      this.manifests.delete(file);
      return read(file);
    }
    const known = this.manifests.get(file);
    if (known && sameKey(known.key, keyOf(before))) {
      this.stats.hits++;
      return known.manifest;
    }
    this.stats.reads++;
    const manifest = await read(file);
    const after = await statOrUndefined(file);
    if (after && sameKey(keyOf(before), keyOf(after))) this.manifests.set(file, { key: keyOf(after), manifest });
    else this.manifests.delete(file);
    return manifest;
  }

  /** The file's stat if it is still the one remembered (for hard-linking it), else undefined. */
  async current(file: string): Promise<FileKey | undefined> {
    const known = this.manifests.get(file);
    const st = await statOrUndefined(file);
    return known && st && sameKey(known.key, keyOf(st)) ? known.key : undefined;
  }

  async wrote(file: string, written: WrittenStat, manifest: Manifest): Promise<void> {
    this.manifests.delete(file);
    const st = await statOrUndefined(file);
    if (st && isWritten(st, written)) this.manifests.set(file, { key: keyOf(st), manifest });
  }
}

async function statOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return undefined;
  }
}
