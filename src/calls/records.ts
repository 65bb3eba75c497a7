import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { errorMessage } from '../errors.js';
import {
  CallQueryInvalidError,
  CallRecordExistsError,
  CallRecordInvalidError,
  CallRecordNotFoundError,
  CallRecordsStoreError,
} from './errors.js';

export { recordsToCsv, CSV_COLUMNS } from './csv.js';
export { nextInteractionId, InteractionIdGenerator } from './interaction-id.js';

/** Call types, named as the Calls module names them. */
export const CALL_TYPES = ['Direct Agent Call', 'Diverted Call'] as const;
export type CallType = (typeof CALL_TYPES)[number];

export const CALL_OUTCOMES = ['answered', 'voicemail', 'abandoned', 'no message', 'in progress'] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

export const RECORDING_STATUSES = ['available', 'none', 'deleted'] as const;
export type RecordingStatus = (typeof RECORDING_STATUSES)[number];

export const EMAIL_STATUSES = ['queued', 'sent', 'failed', 'no email', 'not applicable'] as const;
export type EmailStatus = (typeof EMAIL_STATUSES)[number];

/** Why a call to an agent's DID was diverted (the only values `divertReason` accepts). */
export const DIVERT_REASONS = ['paused', 'logged out', 'busy', 'no answer', 'failed'] as const;

export interface CallRecord {
  /** Digits from `nextInteractionId()`; any `[A-Za-z0-9_.-]{1,64}` is accepted. */
  interactionId: string;
  callType: CallType;
  agentId: string;
  agentUsername?: string;
  /** ISO 8601; stored (and returned) as UTC `toISOString()` form. */
  startedAt: string;
  callerNumber: string;
  calledNumber: string;
  /** Whole seconds (rounded on write). */
  durationSeconds: number;
  outcome: CallOutcome;
  /** One of DIVERT_REASONS: paused | logged out | busy | no answer | failed. */
  divertReason?: string;
  recordingStatus: RecordingStatus;
  recordingName?: string;
  /** Path of the recording on disk. */
  recordingFile?: string;
  emailStatus: EmailStatus;
  note?: string;
}

export interface CallQuery {
  /** Inclusive. Without `from` and `to`, the last seven days (see `defaultCallQueryRange`). */
  from?: Date;
  /** Inclusive. */
  to?: Date;
  agentId?: string;
  callType?: CallType;
  /** Most rows to return (newest first); no limit by default. */
  limit?: number;
}

export interface CallRecordsOptions {
  /** Clock for the default seven-day range (tests). */
  now?: () => Date;
  /**
   * Told when rows queued by insertSoon could not be written: a database error (the rows stay
   * queued and are retried) or a record refused when written (CallRecordInvalidError,
   * CallRecordExistsError: that row is dropped; the others are written).
   */
  onWriteError?: (err: unknown, interactionIds: string[]) => void;
  /** insertSoon writes its queue once no row was added for this long (default 20 ms)... */
  writeBehindQuietMs?: number;
  /** ...or at the latest this long after the oldest queued row (default 250 ms). */
  writeBehindMaxMs?: number;
}

export const CALL_RECORDS_SCHEMA_VERSION = 1;

const SEVEN_DAYS_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * The range `query` uses when neither `from` nor `to` is given: the seven days up to `now`, as the
 * Calls module's default "Seven Day Filter". Exported so a CLI can print the range it shows.
 */
export function defaultCallQueryRange(now: Date = new Date()): { from: Date; to: Date } {
  return { from: new Date(now.getTime() - SEVEN_DAYS_MS), to: new Date(now.getTime()) };
}

/** Schema changes, applied in order, each once; `schema_version` holds the last one applied. */
const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE calls (
        interaction_id   TEXT PRIMARY KEY NOT NULL,
        call_type        TEXT NOT NULL CHECK (call_type IN (${sqlList(CALL_TYPES)})),
        agent_id         TEXT NOT NULL,
        agent_username   TEXT,
        started_at       TEXT NOT NULL,
        caller_number    TEXT NOT NULL,
        called_number    TEXT NOT NULL,
        duration_seconds INTEGER NOT NULL CHECK (duration_seconds >= 0),
        outcome          TEXT NOT NULL CHECK (outcome IN (${sqlList(CALL_OUTCOMES)})),
        divert_reason    TEXT,
        recording_status TEXT NOT NULL CHECK (recording_status IN (${sqlList(RECORDING_STATUSES)})),
        recording_name   TEXT,
        recording_file   TEXT,
        email_status     TEXT NOT NULL CHECK (email_status IN (${sqlList(EMAIL_STATUSES)})),
        note             TEXT
      );
      CREATE INDEX calls_started_at ON calls (started_at);
      CREATE INDEX calls_agent_started_at ON calls (agent_id, started_at);
    `,
  },
];

interface CallRow {
  interaction_id: string;
  call_type: CallType;
  agent_id: string;
  agent_username: string | null;
  started_at: string;
  caller_number: string;
  called_number: string;
  duration_seconds: number;
  outcome: CallOutcome;
  divert_reason: string | null;
  recording_status: RecordingStatus;
  recording_name: string | null;
  recording_file: string | null;
  email_status: EmailStatus;
  note: string | null;
}

const COLUMNS: readonly (keyof CallRow)[] = [
  'interaction_id', 'call_type', 'agent_id', 'agent_username', 'started_at', 'caller_number', 'called_number',
  'duration_seconds', 'outcome', 'divert_reason', 'recording_status', 'recording_name', 'recording_file',
  'email_status', 'note',
];

/**
 * Call records (one row per interaction) in SQLite, WAL mode. One instance per process, created by
 * `main` and passed to whoever writes or reads records. Times are stored as UTC ISO strings, which
 * sort in time order.
 */
export class CallRecords {
  private readonly insertStmt: Database.Statement;
  private readonly replaceStmt: Database.Statement;
  private readonly getStmt: Database.Statement;
  /** Rows insertSoon queued, by interaction id, in order; written by flush(). */
  private readonly queued = new Map<string, CallRecord>();
  private flushTimer: NodeJS.Timeout | undefined;
  private oldestQueuedAt = 0;
  private readonly quietMs: number;
  private readonly maxDelayMs: number;
  private readonly onWriteError: CallRecordsOptions['onWriteError'];

  private constructor(
    private readonly db: Database.Database,
    private readonly now: () => Date,
    options: CallRecordsOptions = {},
    private readonly path = '',
    /** Opened by openReadOnly: writes throw. */
    readonly readOnly = false,
  ) {
    this.onWriteError = options.onWriteError;
    this.quietMs = options.writeBehindQuietMs ?? 20;
    this.maxDelayMs = options.writeBehindMaxMs ?? 250;
    const names = COLUMNS.join(', ');
    const params = COLUMNS.map((c) => `@${c}`).join(', ');
    this.insertStmt = db.prepare(`INSERT INTO calls (${names}) VALUES (${params})`);
    this.replaceStmt = db.prepare(
      `UPDATE calls SET ${COLUMNS.filter((c) => c !== 'interaction_id').map((c) => `${c} = @${c}`).join(', ')} WHERE interaction_id = @interaction_id`,
    );
    this.getStmt = db.prepare('SELECT * FROM calls WHERE interaction_id = ?');
  }

  /** Opens (creating if needed, with its directory) and migrates the database at `path`. */
  static open(path: string, options: CallRecordsOptions = {}): CallRecords {
    let db: Database.Database;
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      db = new Database(path);
    } catch (err) {
      throw new CallRecordsStoreError(path, `cannot open: ${errorMessage(err)}`, { cause: err });
    }
    try {
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      migrate(db, path);
      return new CallRecords(db, options.now ?? (() => new Date()), options);
    } catch (err) {
      db.close();
      if (err instanceof CallRecordsStoreError) throw err;
      throw new CallRecordsStoreError(path, errorMessage(err), { cause: err });
    }
  }

  /**
   * Opens an existing database for reading only (the CLI: `switchboard calls`, `switchboard
   * recording`). Unlike open() it changes nothing — no journal mode, no migration, no write lock —
   * so it works for a user who may only read the daemon's data directory, and never makes the
   * daemon's (synchronous) writes wait. The schema version is checked, not migrated: a database of
   * another version, a missing file or one that is no call-records database is a
   * CallRecordsStoreError naming the file and what to do.
   *
   * WAL needs its index file `<db>-shm`. While the daemon has the database open (`<db>-wal`
   * exists) it is read in place, through the daemon's index (read-only if need be). Otherwise,
   * reading in place would create `-shm` and `-wal`, which a user who cannot write the directory
   * cannot do, and which, made by a user other than the database's owner, could keep the daemon
   * from opening its database later; so then (unless this process is the owner or root, whose
   * files SQLite gives to the owner) a consistent copy of the file is read in memory instead.
   */
  static openReadOnly(path: string, options: Pick<CallRecordsOptions, 'now'> = {}): CallRecords {
    const now = options.now ?? (() => new Date());
    if (!existsSync(path)) {
      throw new CallRecordsStoreError(path, 'does not exist: give the daemon\'s data directory (the daemon creates calls.sqlite when it starts)');
    }
    for (let attempt = 0; ; attempt++) {
      const walPresent = existsSync(`${path}-wal`);
      if (walPresent || mayCreateWalFiles(path)) {
        let db: Database.Database | undefined;
        try {
          db = new Database(path, { readonly: true, fileMustExist: true });
          db.pragma('busy_timeout = 5000');
          checkSchemaVersion(db, path); // the first read: opens the WAL index
          return new CallRecords(db, now, {}, path, true);
        } catch (err) {
          db?.close();
          if (err instanceof CallRecordsStoreError) throw err;
          // Cannot make the WAL index here (a directory it may not write): read a copy instead.
          const noIndex = isSqliteCode(err, 'SQLITE_READONLY_DIRECTORY') || isSqliteCode(err, 'SQLITE_CANTOPEN');
          if (!noIndex || walHasContent(path) || attempt >= 3) throw readError(path, err);
        }
      }
      const copy = consistentCopy(path);
      if (!copy) {
        if (attempt >= 3) throw new CallRecordsStoreError(path, 'cannot read: it kept changing while being read (the daemon starting?): try again');
        continue; // the daemon started meanwhile: read in place
      }
      let db: Database.Database | undefined;
      try {
        db = new Database(copy, { readonly: true });
        checkSchemaVersion(db, path);
        return new CallRecords(db, now, {}, path, true);
      } catch (err) {
        db?.close();
        if (err instanceof CallRecordsStoreError) throw err;
        throw readError(path, err);
      }
    }
  }

  private assertWritable(): void {
    if (this.readOnly) throw new CallRecordsStoreError(this.path, 'opened read-only: only the daemon writes call records');
  }

  /** Adds a record, durably before it returns. Throws CallRecordExistsError if the interaction id is taken. */
  insert(record: CallRecord): void {
    this.assertWritable();
    const row = toRow(normalise(record));
    this.writeQueue();
    try {
      this.insertStmt.run(row);
    } catch (err) {
      if (isSqliteCode(err, 'SQLITE_CONSTRAINT_PRIMARYKEY')) throw new CallRecordExistsError(record.interactionId);
      throw err;
    }
  }

  /**
   * Adds a record without waiting for the disk: queued (the record object is kept as it is: do not
   * change it afterwards), and written with every other queued row in one transaction (one fsync)
   * once no row was added for `writeBehindQuietMs` (20 ms), or at the latest `writeBehindMaxMs`
   * (250 ms) after the oldest — and before any read, update, insert or close, so nobody in this
   * process ever misses a row. Checked when written: a record that is invalid or whose id is taken
   * is dropped and reported to `onWriteError` (flush() throws for it instead); an id already queued
   * throws CallRecordExistsError at once. For the DID workflow: one fsync (or even one validation
   * and lookup) per call before the caller hears ringing would queue every later caller of a burst
   * behind it. A crash loses at most the last 250 ms of new rows (calls that had only just arrived).
   */
  insertSoon(record: CallRecord): void {
    this.assertWritable();
    if (this.queued.has(record.interactionId)) throw new CallRecordExistsError(record.interactionId);
    this.queued.set(record.interactionId, record);
    if (!this.flushTimer) {
      this.oldestQueuedAt = Date.now();
      this.flushTimer = setTimeout(() => this.flushInBackground(), this.quietMs).unref();
    } else if (Date.now() - this.oldestQueuedAt + this.quietMs <= this.maxDelayMs) {
      this.flushTimer.refresh();
    }
  }

  /**
   * Writes the queue before an insert, read, update or close: a record refused there (another
   * call's) goes to onWriteError as in the background, never to this unrelated caller; a database
   * error is thrown.
   */
  private writeQueue(): void {
    for (const { id, err } of this.writeQueued()) this.onWriteError?.(err, [id]);
  }

  private flushInBackground(): void {
    this.flushTimer = undefined;
    try {
      this.writeQueue();
    } catch (err) {
      this.onWriteError?.(err, [...this.queued.keys()]);
      // Try again later (reads, updates and close also write the queue first).
      this.oldestQueuedAt = Date.now();
      this.flushTimer ??= setTimeout(() => this.flushInBackground(), Math.max(this.maxDelayMs, 1000)).unref();
    }
  }

  /**
   * Writes the rows insertSoon queued (one transaction). A database error leaves them all queued
   * and is thrown; records refused one by one (invalid, id taken) are dropped, the others written,
   * and the first refusal is thrown after the commit.
   */
  flush(): void {
    const refused = this.writeQueued();
    if (refused.length) throw refused[0]!.err;
  }

  /** flush() without the throw for refused records: returns them. */
  private writeQueued(): { id: string; err: unknown }[] {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.queued.size === 0) return [];
    const records = [...this.queued.values()];
    const refused: { id: string; err: unknown }[] = [];
    this.db.transaction(() => {
      refused.length = 0;
      for (const record of records) {
        let row: CallRow;
        try {
          row = toRow(normalise(record));
        } catch (err) {
          refused.push({ id: record.interactionId, err });
          continue;
        }
        try {
          this.insertStmt.run(row);
        } catch (err) {
          if (!isSqliteCode(err, 'SQLITE_CONSTRAINT_PRIMARYKEY')) throw err;
          refused.push({ id: record.interactionId, err: new CallRecordExistsError(record.interactionId) });
        }
      }
    }).immediate();
    this.queued.clear();
    return refused;
  }

  /**
   * Changes some fields of a stored record. An optional field present in `patch` with the value
   * `undefined` is cleared. The interaction id cannot change.
   */
  update(interactionId: string, patch: Partial<CallRecord>): void {
    if (patch.interactionId !== undefined && patch.interactionId !== interactionId) {
      throw new CallRecordInvalidError(interactionId, [`interactionId cannot change (to "${patch.interactionId}")`]);
    }
    this.assertWritable();
    this.writeQueue();
    const change = this.db.transaction(() => {
      const current = this.get(interactionId);
      if (!current) throw new CallRecordNotFoundError(interactionId);
      const merged: CallRecord = { ...current };
      for (const [key, value] of Object.entries(patch) as [keyof CallRecord, unknown][]) {
        if (value === undefined) delete merged[key];
        else (merged as unknown as Record<string, unknown>)[key] = value;
      }
      merged.interactionId = interactionId;
      this.replaceStmt.run(toRow(normalise(merged)));
    });
    change.immediate();
  }

  get(interactionId: string): CallRecord | undefined {
    this.writeQueue();
    const row = this.getStmt.get(interactionId) as CallRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** Records matching every given filter, newest first. */
  query(filter: CallQuery = {}): CallRecord[] {
    this.writeQueue();
    const range = filter.from === undefined && filter.to === undefined ? defaultCallQueryRange(this.now()) : filter;
    const where: string[] = [];
    const params: unknown[] = [];
    if (range.from !== undefined) {
      where.push('started_at >= ?');
      params.push(isoOf(range.from, 'from'));
    }
    if (range.to !== undefined) {
      where.push('started_at <= ?');
      params.push(isoOf(range.to, 'to'));
    }
    if (filter.agentId !== undefined) {
      where.push('agent_id = ?');
      params.push(filter.agentId);
    }
    if (filter.callType !== undefined) {
      if (!CALL_TYPES.includes(filter.callType)) throw new CallQueryInvalidError(`unknown call type "${String(filter.callType)}"`);
      where.push('call_type = ?');
      params.push(filter.callType);
    }
    let sql = 'SELECT * FROM calls';
    if (where.length > 0) sql += ` WHERE ${where.join(' AND ')}`;
    sql += ' ORDER BY started_at DESC, interaction_id DESC';
    if (filter.limit !== undefined) {
      if (!Number.isInteger(filter.limit) || filter.limit < 1) throw new CallQueryInvalidError(`limit must be a positive whole number, got ${filter.limit}`);
      sql += ' LIMIT ?';
      params.push(filter.limit);
    }
    return (this.db.prepare(sql).all(...params) as CallRow[]).map(fromRow);
  }

  close(): void {
    if (this.db.open) {
      try {
        this.writeQueue();
      } finally {
        this.db.close();
      }
    }
  }
}

/**
 * The read-only check of openReadOnly: the schema this switchboard reads, no migration (which
 * would write). Throws CallRecordsStoreError saying what to do otherwise.
 */
function checkSchemaVersion(db: Database.Database, path: string): void {
  const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
  const row = table ? (db.prepare('SELECT version FROM schema_version WHERE id = 1').get() as { version: number } | undefined) : undefined;
  if (!row) {
    throw new CallRecordsStoreError(
      path,
      'has no schema version: it is not a switchboard call-records database, or the daemon never finished creating it; start the daemon (switchboard serve) with this data directory, or give the right one with --data',
    );
  }
  if (row.version > latest) {
    throw new CallRecordsStoreError(path, `schema version ${row.version} is newer than this switchboard reads (${latest}): use the switchboard that wrote it, or upgrade this one`);
  }
  if (row.version < latest) {
    throw new CallRecordsStoreError(path, `schema version ${row.version} is older than this switchboard reads (${latest}): start the daemon (switchboard serve) once with this version, which migrates it, then try again`);
  }
}

/**
 * Whether opening `path` in place may create its `-shm`/`-wal` files without harm: this process is
 * its owner (the files are the owner's anyway), or root (SQLite gives the files it creates to the
 * database's owner). Any other user would leave files the daemon may not be able to open.
 */
function mayCreateWalFiles(path: string): boolean {
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0) return true;
  try {
    return statSync(path).uid === uid;
  } catch {
    return false;
  }
}

/** Whether `<path>-wal` holds transactions not yet in the database file (a daemon that crashed, or runs). */
function walHasContent(path: string): boolean {
  try {
    return statSync(`${path}-wal`).size > 0;
  } catch {
    return false;
  }
}

/**
 * The database file as it is while nobody has it open in WAL mode (no `-wal`): read whole, and
 * undefined if it changed meanwhile or a `-wal` appeared (the daemon started). Marked as a
 * rollback-journal database (header bytes 18-19), which SQLite opens in memory without a WAL index.
 */
function consistentCopy(path: string): Buffer | undefined {
  try {
    const before = statSync(path);
    if (existsSync(`${path}-wal`)) return undefined;
    const bytes = readFileSync(path);
    const after = statSync(path);
    if (existsSync(`${path}-wal`)) return undefined;
    if (before.ino !== after.ino || before.size !== after.size || before.mtimeMs !== after.mtimeMs || bytes.length !== after.size) return undefined;
    if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) {
      bytes[18] = 1;
      bytes[19] = 1;
    }
    return bytes;
  } catch (err) {
    throw readError(path, err);
  }
}

function readError(path: string, err: unknown): CallRecordsStoreError {
  const code = (err as { code?: unknown }).code;
  let hint = '';
  if (code === 'EACCES' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY_DIRECTORY' || code === 'SQLITE_READONLY_RECOVERY' || code === 'SQLITE_READONLY_CANTINIT') {
    hint = ': run this as a user who may read the daemon\'s data directory (the daemon\'s user), or start the daemon';
  } else if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    hint = ': it is not an SQLite database, or it is damaged; give the daemon\'s data directory with --data';
  }
  return new CallRecordsStoreError(path, `cannot read: ${errorMessage(err)}${hint}`, { cause: err });
}

function migrate(db: Database.Database, path: string): void {
  const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
  const run = db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)');
    const row = db.prepare('SELECT version FROM schema_version WHERE id = 1').get() as { version: number } | undefined;
    const current = row?.version ?? 0;
    if (current > latest) {
      throw new CallRecordsStoreError(path, `schema version ${current} is newer than this switchboard knows (${latest}): upgrade switchboard`);
    }
    for (const migration of MIGRATIONS) {
      if (migration.version > current) db.exec(migration.sql);
    }
    db.prepare('INSERT INTO schema_version (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version').run(latest);
  });
  // IMMEDIATE takes the write lock before reading the version, so two processes opening a new
  // database at once cannot both run the same migration.
  run.immediate();
}

const ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_TEXT = 1024;

/** Checks every field (collecting all problems) and returns the record in stored form. */
function normalise(r: CallRecord): CallRecord {
  const issues: string[] = [];
  const id = typeof r.interactionId === 'string' ? r.interactionId : String(r.interactionId);
  if (!ID_RE.test(id)) issues.push(`interactionId "${id}" is invalid: letters, digits, "_", "." or "-", at most 64`);
  oneOf(issues, 'callType', r.callType, CALL_TYPES);
  oneOf(issues, 'outcome', r.outcome, CALL_OUTCOMES);
  oneOf(issues, 'recordingStatus', r.recordingStatus, RECORDING_STATUSES);
  oneOf(issues, 'emailStatus', r.emailStatus, EMAIL_STATUSES);
  if (r.divertReason !== undefined) oneOf(issues, 'divertReason', r.divertReason, DIVERT_REASONS);
  if (typeof r.agentId !== 'string' || r.agentId === '') issues.push('agentId is required');
  text(issues, 'agentId', r.agentId);
  text(issues, 'callerNumber', r.callerNumber, true);
  text(issues, 'calledNumber', r.calledNumber, true);
  for (const key of ['agentUsername', 'recordingName', 'recordingFile', 'note'] as const) text(issues, key, r[key]);
  let startedAt = '';
  const started = typeof r.startedAt === 'string' ? new Date(r.startedAt) : new Date(NaN);
  if (Number.isNaN(started.getTime()) || !/^\d{4}-/.test(started.toISOString())) {
    issues.push(`startedAt "${String(r.startedAt)}" is not an ISO 8601 date-time, e.g. "2024-05-01T09:30:00Z"`);
  } else {
    startedAt = started.toISOString();
  }
  if (typeof r.durationSeconds !== 'number' || !Number.isFinite(r.durationSeconds) || r.durationSeconds < 0) {
    issues.push(`durationSeconds must be a number of seconds >= 0, got ${String(r.durationSeconds)}`);
  }
  if (issues.length > 0) throw new CallRecordInvalidError(id, issues);
  return { ...r, startedAt, durationSeconds: Math.round(r.durationSeconds) };
}

function oneOf(issues: string[], field: string, value: unknown, allowed: readonly string[]): void {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    issues.push(`${field} "${String(value)}" is invalid: one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
  }
}

function text(issues: string[], field: string, value: unknown, required = false): void {
  if (value === undefined && !required) return;
  if (typeof value !== 'string') issues.push(`${field} must be text`);
  else if (value.length > MAX_TEXT) issues.push(`${field} is longer than ${MAX_TEXT} characters`);
}

function toRow(r: CallRecord): CallRow {
  return {
    interaction_id: r.interactionId,
    call_type: r.callType,
    agent_id: r.agentId,
    agent_username: r.agentUsername ?? null,
    started_at: r.startedAt,
    caller_number: r.callerNumber,
    called_number: r.calledNumber,
    duration_seconds: r.durationSeconds,
    outcome: r.outcome,
    divert_reason: r.divertReason ?? null,
    recording_status: r.recordingStatus,
    recording_name: r.recordingName ?? null,
    recording_file: r.recordingFile ?? null,
    email_status: r.emailStatus,
    note: r.note ?? null,
  };
}

function fromRow(row: CallRow): CallRecord {
  return {
    interactionId: row.interaction_id,
    callType: row.call_type,
    agentId: row.agent_id,
    ...(row.agent_username !== null ? { agentUsername: row.agent_username } : {}),
    startedAt: row.started_at,
    callerNumber: row.caller_number,
    calledNumber: row.called_number,
    durationSeconds: row.duration_seconds,
    outcome: row.outcome,
    ...(row.divert_reason !== null ? { divertReason: row.divert_reason } : {}),
    recordingStatus: row.recording_status,
    ...(row.recording_name !== null ? { recordingName: row.recording_name } : {}),
    ...(row.recording_file !== null ? { recordingFile: row.recording_file } : {}),
    emailStatus: row.email_status,
    ...(row.note !== null ? { note: row.note } : {}),
  };
}

function isoOf(date: Date, name: string): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new CallQueryInvalidError(`"${name}" is not a valid date`);
  return date.toISOString();
}

function isSqliteCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

function sqlList(values: readonly string[]): string {
  return values.map((v) => `'${v.replace(/'/g, "''")}'`).join(', ');
}
