import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CALL_RECORDS_SCHEMA_VERSION,
  CallRecords,
  defaultCallQueryRange,
  InteractionIdGenerator,
  nextInteractionId,
  recordsToCsv,
  type CallRecord,
} from '../src/calls/records.js';
import { SwitchboardError } from '../src/errors.js';
import { waitFor } from './helpers/wait.js';

const DAY = 24 * 60 * 60 * 1000;

function record(overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    interactionId: nextInteractionId(),
    callType: 'Diverted Call',
    agentId: '1001',
    agentUsername: 'alice',
    startedAt: new Date().toISOString(),
    callerNumber: '+61299998888',
    calledNumber: '+61255550100',
    durationSeconds: 42,
    outcome: 'voicemail',
    divertReason: 'paused',
    recordingStatus: 'available',
    recordingName: '20240501_0930_1.wav',
    recordingFile: '/var/spool/switchboard/recordings/1.wav',
    emailStatus: 'queued',
    ...overrides,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof SwitchboardError ? err.code : `not a SwitchboardError: ${String(err)}`;
  }
  return undefined;
}

let dir: string;
let path: string;
let store: CallRecords;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sb-calls-'));
  path = join(dir, 'db', 'calls.sqlite');
  store = CallRecords.open(path);
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('CallRecords', () => {
  it('stores and returns a record, optional fields absent when not set', () => {
    const full = record({ startedAt: '2024-05-01T19:30:00+10:00', note: 'left a message' });
    store.insert(full);
    expect(store.get(full.interactionId)).toEqual({ ...full, startedAt: '2024-05-01T09:30:00.000Z' });

    const bare: CallRecord = {
      interactionId: nextInteractionId(),
      callType: 'Direct Agent Call',
      agentId: '1002',
      startedAt: '2024-05-01T09:31:00Z',
      callerNumber: '',
      calledNumber: '+61255550101',
      durationSeconds: 12.6,
      outcome: 'answered',
      recordingStatus: 'none',
      emailStatus: 'not applicable',
    };
    store.insert(bare);
    const got = store.get(bare.interactionId);
    expect(got).toEqual({ ...bare, startedAt: '2024-05-01T09:31:00.000Z', durationSeconds: 13 });
    expect(Object.keys(got ?? {})).not.toContain('note');
    expect(store.get('nope')).toBeUndefined();
  });

  it('refuses a duplicate id and reports every invalid field at once', () => {
    const r = record();
    store.insert(r);
    expect(codeOf(() => store.insert(r))).toBe('CALL_RECORD_EXISTS');
    let error: unknown;
    try {
      store.insert(record({ callType: 'Inbound' as never, startedAt: 'yesterday', durationSeconds: -1, divertReason: 'lunch', interactionId: 'a b' }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SwitchboardError);
    expect((error as SwitchboardError).code).toBe('CALL_RECORD_INVALID');
    const message = (error as Error).message;
    for (const part of ['callType "Inbound"', 'startedAt "yesterday"', 'durationSeconds', 'divertReason "lunch"', 'interactionId "a b"']) {
      expect(message).toContain(part);
    }
  });

  it('updates some fields, clears optional ones, and refuses bad patches', () => {
    const r = record({ outcome: 'in progress', emailStatus: 'not applicable', note: 'ringing' });
    store.insert(r);
    store.update(r.interactionId, { outcome: 'voicemail', durationSeconds: 61, emailStatus: 'queued', note: undefined });
    const got = store.get(r.interactionId);
    expect(got?.outcome).toBe('voicemail');
    expect(got?.durationSeconds).toBe(61);
    expect(got?.emailStatus).toBe('queued');
    expect(got && 'note' in got).toBe(false);
    expect(got?.agentUsername).toBe('alice');

    expect(codeOf(() => store.update('404', { outcome: 'answered' }))).toBe('CALL_RECORD_NOT_FOUND');
    expect(codeOf(() => store.update(r.interactionId, { interactionId: 'other' }))).toBe('CALL_RECORD_INVALID');
    expect(codeOf(() => store.update(r.interactionId, { emailStatus: 'bounced' as never }))).toBe('CALL_RECORD_INVALID');
    expect(codeOf(() => store.update(r.interactionId, { agentId: undefined }))).toBe('CALL_RECORD_INVALID');
    expect(store.get(r.interactionId)).toEqual(got);
  });

  it('queries by range (inclusive), agent and call type, newest first, with a limit', () => {
    const base = Date.parse('2024-05-10T00:00:00Z');
    const at = (h: number): string => new Date(base + h * 3600_000).toISOString();
    const rows = [
      record({ interactionId: 'a', startedAt: at(0), agentId: '1001', callType: 'Diverted Call' }),
      record({ interactionId: 'b', startedAt: at(1), agentId: '1002', callType: 'Direct Agent Call' }),
      record({ interactionId: 'c', startedAt: at(2), agentId: '1001', callType: 'Direct Agent Call' }),
      record({ interactionId: 'd', startedAt: at(3), agentId: '1001', callType: 'Diverted Call' }),
      record({ interactionId: 'e', startedAt: at(48), agentId: '1001', callType: 'Diverted Call' }),
    ];
    for (const r of [rows[2], rows[0], rows[4], rows[1], rows[3]]) store.insert(r as CallRecord);
    const ids = (f: Parameters<CallRecords['query']>[0]): string[] => store.query(f).map((r) => r.interactionId);

    expect(ids({ from: new Date(at(0)), to: new Date(at(3)) })).toEqual(['d', 'c', 'b', 'a']);
    expect(ids({ from: new Date(at(1)), to: new Date(at(2)) })).toEqual(['c', 'b']);
    expect(ids({ from: new Date(at(0)) })).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(ids({ to: new Date(at(1)) })).toEqual(['b', 'a']);
    expect(ids({ from: new Date(at(0)), agentId: '1001' })).toEqual(['e', 'd', 'c', 'a']);
    expect(ids({ from: new Date(at(0)), callType: 'Direct Agent Call' })).toEqual(['c', 'b']);
    expect(ids({ from: new Date(at(0)), agentId: '1001', callType: 'Diverted Call', limit: 2 })).toEqual(['e', 'd']);
    expect(codeOf(() => store.query({ limit: 0 }))).toBe('CALL_QUERY_INVALID');
    expect(codeOf(() => store.query({ from: new Date('nonsense') }))).toBe('CALL_QUERY_INVALID');
  });

  it('defaults to the last seven days when no range is given', () => {
    const now = Date.now();
    store.insert(record({ interactionId: 'old', startedAt: new Date(now - 7 * DAY - 60_000).toISOString() }));
    store.insert(record({ interactionId: 'edge', startedAt: new Date(now - 7 * DAY + 60_000).toISOString() }));
    store.insert(record({ interactionId: 'new', startedAt: new Date(now - 60_000).toISOString() }));
    expect(store.query({}).map((r) => r.interactionId)).toEqual(['new', 'edge']);
    expect(store.query({ agentId: '1001' }).map((r) => r.interactionId)).toEqual(['new', 'edge']);

    const fixed = new Date('2024-05-10T12:00:00Z');
    expect(defaultCallQueryRange(fixed)).toEqual({ from: new Date('2024-05-03T12:00:00Z'), to: fixed });

    const clocked = CallRecords.open(join(dir, 'clocked.sqlite'), { now: () => fixed });
    try {
      clocked.insert(record({ interactionId: 'in', startedAt: '2024-05-04T00:00:00Z' }));
      clocked.insert(record({ interactionId: 'before', startedAt: '2024-05-03T11:59:59Z' }));
      clocked.insert(record({ interactionId: 'after', startedAt: '2024-05-10T12:00:01Z' }));
      expect(clocked.query().map((r) => r.interactionId)).toEqual(['in']);
    } finally {
      clocked.close();
    }
  });

  it('persists across reopen, in WAL mode, with a schema version', () => {
    const r = record();
    store.insert(r);
    expect(existsSync(`${path}-wal`)).toBe(true);
    store.close();
    store = CallRecords.open(path);
    expect(store.get(r.interactionId)?.callerNumber).toBe(r.callerNumber);
    store.close();

    const raw = new Database(path);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.prepare('SELECT version FROM schema_version').all()).toEqual([{ version: CALL_RECORDS_SCHEMA_VERSION }]);
    raw.prepare('UPDATE schema_version SET version = ?').run(CALL_RECORDS_SCHEMA_VERSION + 1);
    raw.close();
    expect(codeOf(() => CallRecords.open(path))).toBe('CALL_RECORDS_STORE');
    store = CallRecords.open(join(dir, 'fresh.sqlite'));
  });
});

describe('CallRecords.openReadOnly (switchboard calls / recording)', () => {
  function messageOf(fn: () => unknown): string {
    try {
      fn();
    } catch (err) {
      return err instanceof SwitchboardError ? `${err.code}: ${err.message}` : `not a SwitchboardError: ${String(err)}`;
    }
    return 'no error';
  }

  it('reads while the daemon holds the write lock, sees only committed rows, and refuses writes', () => {
    const r = record({ note: 'committed' });
    store.insert(r);
    const daemon = new Database(path);
    daemon.pragma('busy_timeout = 0');
    daemon.exec('BEGIN IMMEDIATE');
    daemon.prepare("UPDATE calls SET note = 'uncommitted' WHERE interaction_id = ?").run(r.interactionId);
    try {
      const ro = CallRecords.openReadOnly(path);
      try {
        expect(ro.readOnly).toBe(true);
        expect(ro.get(r.interactionId)?.note).toBe('committed');
        expect(ro.query({ from: new Date(0) }).map((x) => x.interactionId)).toEqual([r.interactionId]);
        expect(messageOf(() => ro.insert(record()))).toMatch(/^CALL_RECORDS_STORE: call records database .*calls\.sqlite: opened read-only/);
        expect(messageOf(() => ro.insertSoon(record()))).toMatch(/^CALL_RECORDS_STORE: /);
        expect(messageOf(() => ro.update(r.interactionId, { note: 'x' }))).toMatch(/^CALL_RECORDS_STORE: /);
      } finally {
        ro.close();
      }
    } finally {
      daemon.exec('COMMIT');
      daemon.close();
    }
    // The daemon's write went through although a reader had the database open meanwhile.
    expect(store.get(r.interactionId)?.note).toBe('uncommitted');
  });

  it('checks the schema version without migrating: missing file, newer, older, not a call-records database', () => {
    store.close();
    const missing = join(dir, 'missing.sqlite');
    expect(messageOf(() => CallRecords.openReadOnly(missing))).toBe(`CALL_RECORDS_STORE: call records database ${missing}: does not exist: give the daemon's data directory (the daemon creates calls.sqlite when it starts)`);
    expect(existsSync(missing)).toBe(false);

    const setVersion = (v: number) => {
      const raw = new Database(path);
      raw.prepare('UPDATE schema_version SET version = ?').run(v);
      raw.close(); // the last connection: checkpoints, leaves no -wal
    };
    setVersion(CALL_RECORDS_SCHEMA_VERSION + 1);
    expect(messageOf(() => CallRecords.openReadOnly(path))).toBe(
      `CALL_RECORDS_STORE: call records database ${path}: schema version ${CALL_RECORDS_SCHEMA_VERSION + 1} is newer than this switchboard reads (${CALL_RECORDS_SCHEMA_VERSION}): use the switchboard that wrote it, or upgrade this one`,
    );
    setVersion(CALL_RECORDS_SCHEMA_VERSION - 1);
    const before = readFileSync(path);
    expect(messageOf(() => CallRecords.openReadOnly(path))).toMatch(
      new RegExp(`^CALL_RECORDS_STORE: call records database ${path.replace(/[.]/g, '\\.')}: schema version ${CALL_RECORDS_SCHEMA_VERSION - 1} is older than this switchboard reads \\(${CALL_RECORDS_SCHEMA_VERSION}\\): start the daemon \\(switchboard serve\\) once`),
    );
    // Not migrated: the file is as it was.
    expect(readFileSync(path).equals(before)).toBe(true);
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT version FROM schema_version').get()).toEqual({ version: CALL_RECORDS_SCHEMA_VERSION - 1 });
    raw.close();

    const other = join(dir, 'other.sqlite');
    const o = new Database(other);
    o.exec('CREATE TABLE t (x)');
    o.close();
    expect(messageOf(() => CallRecords.openReadOnly(other))).toMatch(/other\.sqlite: has no schema version: it is not a switchboard call-records database/);
    const text = join(dir, 'text.sqlite');
    writeFileSync(text, 'this is not a database, but long enough to have a header of one hundred bytes.'.repeat(3));
    expect(messageOf(() => CallRecords.openReadOnly(text))).toMatch(/text\.sqlite: cannot read: file is not a database: it is not an SQLite database/);
    store = CallRecords.open(join(dir, 'fresh.sqlite'));
  });

  it('the daemon stopped (no -wal): as the owner, reads in place; the daemon opens it afterwards as before', () => {
    const r = record();
    store.insert(r);
    store.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
    const ro = CallRecords.openReadOnly(path);
    expect(ro.get(r.interactionId)?.interactionId).toBe(r.interactionId);
    ro.close();
    store = CallRecords.open(path);
    store.insert(record());
    expect(store.query({ from: new Date(0) })).toHaveLength(2);
    expect(readdirSync(join(dir, 'db')).filter((f) => !f.startsWith('calls.sqlite'))).toEqual([]);
  });
});

/** Minimal RFC 4180 reader, to check that quoting round-trips. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i += 1;
    } else cell += ch;
  }
  expect(cell).toBe('');
  expect(row).toEqual([]);
  return rows;
}

describe('CallRecords.insertSoon (write-behind for the DID hot path)', () => {
  /** What another connection (another process: `switchboard calls`) sees on disk. */
  function onDisk(id: string): unknown {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare('SELECT interaction_id FROM calls WHERE interaction_id = ?').get(id);
    } finally {
      db.close();
    }
  }

  it('queues rows and writes them together once no row was added for the quiet time', async () => {
    store.close();
    store = CallRecords.open(path, { writeBehindQuietMs: 30, writeBehindMaxMs: 10_000 });
    const rows = [record(), record(), record()];
    for (const r of rows) store.insertSoon(r);
    expect(onDisk(rows[0]!.interactionId)).toBeUndefined();
    await new Promise((resolve) => setImmediate(resolve));
    expect(onDisk(rows[0]!.interactionId)).toBeUndefined();
    await waitFor(() => onDisk(rows[2]!.interactionId));
    for (const r of rows) expect(onDisk(r.interactionId)).toEqual({ interaction_id: r.interactionId });
  });

  it('a steady stream of rows is still written within the longest delay', () => {
    // Fake clock: one row every 10 ms never leaves the 50 ms quiet time; only the 120 ms limit writes.
    vi.useFakeTimers();
    try {
      store.close();
      store = CallRecords.open(path, { writeBehindQuietMs: 50, writeBehindMaxMs: 120 });
      const first = record();
      store.insertSoon(first);
      let writtenAt: number | undefined;
      for (let t = 10; t <= 600 && writtenAt === undefined; t += 10) {
        vi.advanceTimersByTime(10);
        store.insertSoon(record());
        if (onDisk(first.interactionId) !== undefined) writtenAt = t;
      }
      expect(writtenAt).toBeDefined();
      expect(writtenAt!).toBeLessThanOrEqual(130);
    } finally {
      vi.useRealTimers();
    }
  });

  it('reads, updates and close write the queue first', () => {
    const a = record();
    store.insertSoon(a);
    expect(store.get(a.interactionId)?.interactionId).toBe(a.interactionId);
    const b = record();
    store.insertSoon(b);
    store.update(b.interactionId, { outcome: 'answered' });
    expect(store.get(b.interactionId)?.outcome).toBe('answered');
    const c = record();
    store.insertSoon(c);
    expect(store.query({ from: new Date(Date.now() - DAY), to: new Date(Date.now() + DAY) }).map((r) => r.interactionId)).toContain(c.interactionId);
    const d = record();
    store.insertSoon(d);
    store.close();
    expect(onDisk(d.interactionId)).toEqual({ interaction_id: d.interactionId });
    store = CallRecords.open(path);
  });

  it('an id already queued throws at once; invalid records and taken ids are refused when written, the rest is written', async () => {
    const taken = record();
    store.insert(taken);
    const b = record();
    store.insertSoon(b);
    expect(codeOf(() => store.insertSoon({ ...b }))).toBe('CALL_RECORD_EXISTS');
    const invalid = record({ outcome: 'lost' as never });
    const good = record();
    store.insertSoon({ ...taken, callerNumber: 'someone else' });
    store.insertSoon(invalid);
    store.insertSoon(good);
    // flush() throws the first refusal after writing the others
    expect(codeOf(() => store.flush())).toBe('CALL_RECORD_EXISTS');
    expect(store.get(good.interactionId)?.interactionId).toBe(good.interactionId);
    expect(store.get(b.interactionId)?.interactionId).toBe(b.interactionId);
    expect(store.get(invalid.interactionId)).toBeUndefined();
    expect(store.get(taken.interactionId)?.callerNumber).toBe(taken.callerNumber);

    // in the background, each refusal goes to onWriteError
    store.close();
    const errors: [string, string[]][] = [];
    store = CallRecords.open(path, { writeBehindQuietMs: 1, onWriteError: (err, ids) => errors.push([err instanceof SwitchboardError ? err.code : String(err), ids]) });
    const bad = record({ outcome: 'lost' as never });
    const ok = record();
    store.insertSoon(bad);
    store.insertSoon(ok);
    await waitFor(() => errors.length > 0);
    expect(errors).toEqual([['CALL_RECORD_INVALID', [bad.interactionId]]]);
    expect(onDisk(ok.interactionId)).toEqual({ interaction_id: ok.interactionId });
  });

  it('a queued record refused when written never makes another caller\'s read or update throw: it goes to onWriteError', () => {
    store.close();
    const errors: string[] = [];
    store = CallRecords.open(path, { writeBehindQuietMs: 10_000, onWriteError: (err, ids) => errors.push(`${err instanceof SwitchboardError ? err.code : String(err)} ${ids.join(',')}`) });
    const bad = record({ outcome: 'lost' as never });
    const mine = record();
    store.insert(mine);
    store.insertSoon(bad);
    expect(() => store.update(mine.interactionId, { outcome: 'answered' })).not.toThrow();
    expect(store.get(mine.interactionId)?.outcome).toBe('answered');
    expect(errors).toEqual([`CALL_RECORD_INVALID ${bad.interactionId}`]);
  });

  it('a background write that fails is reported, keeps the rows, and the next write retries them', async () => {
    const errors: string[][] = [];
    store.close();
    store = CallRecords.open(path, { onWriteError: (_err, ids) => errors.push(ids) });
    const blocker = new Database(path);
    blocker.pragma('busy_timeout = 0');
    blocker.exec('BEGIN IMMEDIATE');
    const a = record();
    // the writer's own busy_timeout (5 s) would wait: make it short for this test
    (store as unknown as { db: Database.Database }).db.pragma('busy_timeout = 10');
    store.insertSoon(a);
    await waitFor(() => errors.length > 0, 3000);
    expect(errors).toEqual([[a.interactionId]]);
    blocker.exec('COMMIT');
    blocker.close();
    expect(store.get(a.interactionId)?.interactionId).toBe(a.interactionId);
  });
});

describe('recordsToCsv', () => {
  it('writes a header, quotes per RFC 4180 and neutralises formulas', () => {
    const r = record({
      interactionId: '17000000000000001234',
      agentUsername: '=HYPERLINK("http://evil","x")',
      callerNumber: '+61299998888',
      calledNumber: '-5',
      note: 'said "call back", then\r\nhung up',
      recordingName: '@SUM(1+1)',
      recordingFile: '+cmd|calc',
      divertReason: 'no answer',
      startedAt: '2024-05-01T09:30:00.000Z',
    });
    const spoofed = record({ interactionId: '2', callerNumber: '-2+3', note: '\tTAB', agentUsername: undefined, recordingName: undefined, recordingFile: undefined });
    const csv = recordsToCsv([r, spoofed]);
    expect(csv.endsWith('\r\n')).toBe(true);
    const rows = parseCsv(csv);
    expect(rows[0]).toEqual([
      'Interaction ID', 'Call Type', 'Agent ID', 'Agent Username', 'Date & Time', 'Caller Number', 'Called Number',
      'Duration (s)', 'Outcome', 'Divert Reason', 'Recording Status', 'Recording Name', 'Recording File', 'Email Status', 'Note',
    ]);
    expect(rows).toHaveLength(3);
    expect(rows[1]).toEqual([
      '17000000000000001234', 'Diverted Call', '1001', `'=HYPERLINK("http://evil","x")`, '2024-05-01T09:30:00.000Z',
      '+61299998888', '-5', '42', 'voicemail', 'no answer', 'available', "'@SUM(1+1)", "'+cmd|calc", 'queued',
      'said "call back", then\r\nhung up',
    ]);
    expect(rows[2]?.[3]).toBe('');
    expect(rows[2]?.[5]).toBe("'-2+3");
    expect(rows[2]?.[14]).toBe("'\tTAB");
    // Leading white space does not hide a formula (some spreadsheets trim cells on import).
    const padded = parseCsv(recordsToCsv([record({ interactionId: '3', callerNumber: ' =1+2', calledNumber: '\n@SUM(A1)', note: '  -2+3' })]))[1]!;
    expect([padded[5], padded[6], padded[14]]).toEqual(["' =1+2", "'\n@SUM(A1)", "'  -2+3"]);
    // Every cell a spreadsheet would evaluate starts with a quote mark instead.
    for (const row of rows.slice(1)) {
      for (const cell of row) expect(/^[=+\-@\t\r]/.test(cell) && !/^[+-]?\d+(\.\d+)?$/.test(cell)).toBe(false);
    }
    expect(recordsToCsv([])).toBe(`${rows[0]?.join(',')}\r\n`);
  });
});

describe('interaction ids', () => {
  it('are digits, unique and sorted in creation order', () => {
    const ids = Array.from({ length: 20_000 }, () => nextInteractionId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^\d{19}$/);
    expect([...ids].sort()).toEqual(ids);
  });

  it('keep increasing when the clock stands still or steps back, and differ after a restart', () => {
    let now = 1_700_000_000_000;
    const gen = new InteractionIdGenerator(() => now, () => 7);
    const a = gen.next();
    now -= 5_000; // clock stepped back
    const b = gen.next();
    const burst = Array.from({ length: 1500 }, () => gen.next()); // more than 1000 in one ms
    const all = [a, b, ...burst];
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual(all);
    expect(a).toBe('1700000000000000007');

    // A "restarted" generator (fresh counter) a millisecond later cannot repeat an earlier id.
    const restarted = new InteractionIdGenerator(() => 1_700_000_000_002, () => 7);
    expect(all).not.toContain(restarted.next());
  });
});
