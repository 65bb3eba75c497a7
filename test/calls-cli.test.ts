/**
 * `switchboard calls` and `switchboard recording` end to end: runs the built CLI (`npm test` builds
 * dist first; by hand: `npx tsc -p tsconfig.build.json`) against a temp data directory whose call
 * records are written with the real CallRecords store.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { CallRecords, type CallRecord } from '../src/calls/records.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

/**
 * Who runs the CLI in the permission tests: a user other than the data directory's owner. Under
 * root (who may write anything) that is `nobody`; otherwise this user, with the directory and the
 * database made read-only.
 */
const ROOT_USER = process.getuid?.() === 0;
const READER = ROOT_USER ? { uid: 65534, gid: 65534 } : {};

function run(args: string[], env: Record<string, string> = {}, as: { uid?: number; gid?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC', ...env };
  delete childEnv.SWITCHBOARD_DATA_DIR;
  Object.assign(childEnv, env);
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: childEnv, timeout: 15_000, ...as }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 99) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => {
  for (const f of ['calls.js', 'recording.js']) {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'commands', f))) {
      throw new Error(`dist/ is missing cli/commands/${f}: run \`npx tsc -p tsconfig.build.json\` (npm test does it)`);
    }
  }
});

let dataDir: string;
const WAV = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(40, 7), Buffer.from('message bytes')]);
const DAY = 24 * 3600 * 1000;

function record(overrides: Partial<CallRecord>): CallRecord {
  return {
    interactionId: '1', callType: 'Direct Agent Call', agentId: '1001', agentUsername: 'alice.smith',
    startedAt: new Date().toISOString(), callerNumber: '+61400111222', calledNumber: '+61290000001',
    durationSeconds: 65, outcome: 'answered', recordingStatus: 'none', emailStatus: 'not applicable',
    ...overrides,
  };
}

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'sb-calls-cli-'));
  mkdirSync(join(dataDir, 'recordings'));
  const kept = join(dataDir, 'recordings', '20240501_0930_200.wav');
  writeFileSync(kept, WAV);
  const now = Date.now();
  const records = CallRecords.open(join(dataDir, 'calls.sqlite'));
  records.insert(record({ interactionId: '100', startedAt: new Date(now - 1 * DAY).toISOString() }));
  records.insert(record({
    interactionId: '200', callType: 'Diverted Call', agentId: '1002', agentUsername: 'bob.jones', startedAt: new Date(now - 2 * DAY).toISOString(),
    outcome: 'voicemail', divertReason: 'paused', recordingStatus: 'available', recordingName: 'switchboard-200', recordingFile: kept, emailStatus: 'sent', durationSeconds: 12,
  }));
  records.insert(record({ interactionId: '300', startedAt: new Date(now - 10 * DAY).toISOString(), callerNumber: '=HYPERLINK("x")' }));
  records.insert(record({ interactionId: '400', callType: 'Diverted Call', outcome: 'no message', divertReason: 'no answer', startedAt: new Date(now - 3 * DAY).toISOString() }));
  records.insert(record({ interactionId: '500', callType: 'Diverted Call', outcome: 'voicemail', divertReason: 'busy', recordingStatus: 'deleted', startedAt: new Date(now - 3 * DAY).toISOString() }));
  records.insert(record({ interactionId: '600', callType: 'Diverted Call', outcome: 'voicemail', divertReason: 'busy', recordingStatus: 'available', recordingFile: join(dataDir, 'recordings', 'gone.wav'), startedAt: new Date(now - 3 * DAY).toISOString() }));
  records.insert(record({ interactionId: '700', startedAt: '2024-05-01T09:30:00Z' }));
  // Written by a daemon whose data directory has since moved.
  records.insert(record({ interactionId: '800', startedAt: '2024-05-02T09:30:00Z', recordingStatus: 'available', recordingFile: '/old/place/recordings/20240501_0930_200.wav' }));
  records.close();
});

afterEach(() => {
  for (const d of [dataDir, join(dataDir, 'recordings')]) {
    try {
      chmodSync(d, 0o755);
    } catch {
      // gone
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** Adds records to the data directory's database (as the daemon would). */
function addRecords(...records: CallRecord[]): void {
  const store = CallRecords.open(join(dataDir, 'calls.sqlite'));
  try {
    for (const r of records) store.insert(r);
  } finally {
    store.close();
  }
}

describe('switchboard calls', () => {
  it('default: the last seven days, newest first, as a table', async () => {
    const r = await run(['calls', '--data', dataDir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^5 call\(s\) from \d{4}-\d{2}-\d{2} \d{2}:\d{2} to /);
    expect(lines[1]).toMatch(/^Interaction ID\s+Date & Time\s+Call Type\s+Agent\s+Caller Number\s+Called Number\s+Duration\s+Outcome/);
    const ids = lines.slice(3).map((l) => l.split(/\s+/)[0]);
    expect(ids).toEqual(['100', '200', '600', '500', '400']); // same time: higher id first
    expect(lines.find((l) => l.startsWith('200'))).toMatch(/Diverted Call\s+bob\.jones\s+\+61400111222\s+\+61290000001\s+0:12\s+voicemail\s+paused\s+available\s+sent/);
    expect(lines.find((l) => l.startsWith('100'))).toContain('1:05');
  });

  it('--from/--to (whole days), --agent (id or username), --type, --json', async () => {
    const may = await run(['calls', '--data', dataDir, '--from', '2024-05-01', '--to', '2024-05-01', '--json']);
    expect(may.code).toBe(0);
    expect((JSON.parse(may.stdout) as CallRecord[]).map((c) => c.interactionId)).toEqual(['700']);

    const bob = await run(['calls', '--data', dataDir, '--agent', 'bob.jones', '--json']);
    expect((JSON.parse(bob.stdout) as CallRecord[]).map((c) => c.interactionId)).toEqual(['200']);
    const byId = await run(['calls', '--data', dataDir, '--agent', '1002', '--json']);
    expect((JSON.parse(byId.stdout) as CallRecord[]).map((c) => c.interactionId)).toEqual(['200']);

    const diverted = await run(['calls', '--data', dataDir, '--type', 'diverted', '--json']);
    expect((JSON.parse(diverted.stdout) as CallRecord[]).map((c) => c.interactionId)).toEqual(['200', '600', '500', '400']);
    const direct = await run(['calls', '--data', dataDir, '--type', 'Direct Agent Call', '--from', '2000-01-01', '--json']);
    expect((JSON.parse(direct.stdout) as CallRecord[]).map((c) => c.interactionId)).toEqual(['100', '300', '800', '700']);
    expect(JSON.parse(direct.stdout)[0]).toMatchObject({ callType: 'Direct Agent Call', agentUsername: 'alice.smith', durationSeconds: 65 });
  });

  it('--csv: header and rows, formula injection neutralised', async () => {
    const r = await run(['calls', '--data', dataDir, '--from', '2000-01-01', '--csv']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\r\n');
    expect(lines[0]).toBe('Interaction ID,Call Type,Agent ID,Agent Username,Date & Time,Caller Number,Called Number,Duration (s),Outcome,Divert Reason,Recording Status,Recording Name,Recording File,Email Status,Note');
    expect(lines.filter(Boolean)).toHaveLength(9);
    expect(r.stdout).toContain(`"'=HYPERLINK(""x"")"`);
  });

  it('bad input: exit 2 with a clear message; a directory without records: clear error', async () => {
    const bad = await run(['calls', '--data', dataDir, '--from', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--from "yesterday" is not a date');
    expect(bad.stderr).toContain('e.g. --from 2024-05-01 or --from 2024-05-01T09:30:00+10:00');
    const type = await run(['calls', '--data', dataDir, '--type', 'outbound']);
    expect(type.code).toBe(2);
    expect(type.stderr).toContain('--type "outbound" is not a call type');
    const both = await run(['calls', '--data', dataDir, '--json', '--csv']);
    expect(both.code).toBe(2);
    const empty = mkdtempSync(join(tmpdir(), 'sb-calls-empty-'));
    const none = await run(['calls', '--data', empty]);
    rmSync(empty, { recursive: true, force: true });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no call records in');
    expect(existsSync(join(empty, 'calls.sqlite'))).toBe(false);
  });

  it('--from/--to take YYYY-MM-DD or a date-time with a zone; anything else (2024-05, 1, no zone) is refused naming flag, value and an example', async () => {
    for (const [flag, value, why] of [
      ['--to', '2024-05', ''],
      ['--from', '1', ''],
      ['--from', '2024-5-1', ''],
      ['--to', '2024-02-30', ' (no such day)'],
      ['--from', '2024-05-01T09:30', ' (no time zone: add Z for UTC or an offset such as +10:00)'],
      ['--to', 'May 1, 2024', ''],
      ['--from', '1714555800000', ''],
    ] as const) {
      const r = await run(['calls', '--data', dataDir, flag, value]);
      expect(r.code, `${flag} ${value}`).toBe(2);
      expect(r.stderr, `${flag} ${value}`).toContain(`${flag} "${value}" is not a date${why}: use YYYY-MM-DD (a whole day, local time) or an ISO 8601 date-time with a time zone, e.g. ${flag} 2024-05-01 or ${flag} 2024-05-01T09:30:00+10:00`);
      expect(r.stdout).toBe('');
    }
    // Record 700 started at 2024-05-01T09:30:00Z.
    const ids = async (...args: string[]) => {
      const r = await run(['calls', '--data', dataDir, '--json', ...args]);
      expect(r.stderr).toBe('');
      return (JSON.parse(r.stdout) as CallRecord[]).map((c) => c.interactionId);
    };
    expect(await ids('--from', '2024-05-01T19:30:00+10:00', '--to', '2024-05-01T09:30Z')).toEqual(['700']); // inclusive at both ends
    expect(await ids('--from', '2024-05-01T09:30:00.001Z', '--to', '2024-05-01')).toEqual([]);
    expect(await ids('--from', '2024-05-01T04:00-0530', '--to', '2024-05-01T04:00-05:30')).toEqual(['700']);
    // A whole day in local time (TZ): in Sydney (UTC+10) 2024-05-01 ends at 13:59:59.999Z, 2024-05-02 09:30Z is the 2nd's evening.
    const sydney = await run(['calls', '--data', dataDir, '--json', '--from', '2024-05-02', '--to', '2024-05-02'], { TZ: 'Australia/Sydney' });
    expect((JSON.parse(sydney.stdout) as CallRecord[]).map((c) => c.interactionId)).toEqual(['800']);
    const help = await run(['calls', '--help']);
    expect(help.stdout).toMatch(/YYYY-MM-DD\s+\(from 00:00\s+local time\)/);
    expect(help.stdout).toMatch(/whole days in this machine's local time zone \(set TZ to use another\)/);
  });

  it('the table passes no terminal control character from caller ids or names: C0, C1 (CSI), U+2028/9, bidi overrides; JSON escapes them; CSV neutralises formulas', async () => {
    addRecords(
      record({ interactionId: '901', startedAt: '2020-01-01T10:00:00Z', callerNumber: '\u009b31mRED\u009b0m', calledNumber: 'a\u2028b\u2029c', agentUsername: 'eve\u202egnp.exe\u001b]0;x\u0007' }),
      record({ interactionId: '902', startedAt: '2020-01-01T09:00:00Z', callerNumber: ' =1+2', calledNumber: '@SUM(A1)' }),
    );
    const unsafe = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
    const table = await run(['calls', '--data', dataDir, '--from', '2020-01-01', '--to', '2020-01-01']);
    expect(table.code).toBe(0);
    expect(table.stdout).not.toMatch(unsafe);
    expect(table.stdout).toMatch(/^901 .* eve gnp\.exe ]0;x\s+ 31mRED 0m\s+a b c\s/m);

    const json = await run(['calls', '--data', dataDir, '--from', '2020-01-01', '--to', '2020-01-01', '--json']);
    expect(json.stdout).not.toMatch(unsafe);
    expect(json.stdout).toContain('"callerNumber": "\\u009b31mRED\\u009b0m"');
    const parsed = JSON.parse(json.stdout) as CallRecord[];
    expect(parsed[0]).toMatchObject({ callerNumber: '\u009b31mRED\u009b0m', calledNumber: 'a\u2028b\u2029c', agentUsername: 'eve\u202egnp.exe\u001b]0;x\u0007' });

    const csv = await run(['calls', '--data', dataDir, '--from', '2020-01-01', '--to', '2020-01-01', '--csv']);
    const row = csv.stdout.split('\r\n').find((l) => l.startsWith('902,'));
    expect(row).toContain(",' =1+2,'@SUM(A1),");
  });

  it('reads while the daemon holds the write lock, as a user who may only read the data directory', async () => {
    chmodSync(dataDir, 0o755); // others may look in, not write
    const daemon = new Database(join(dataDir, 'calls.sqlite'));
    daemon.pragma('busy_timeout = 0');
    daemon.exec('BEGIN IMMEDIATE');
    daemon.prepare("UPDATE calls SET note = 'uncommitted' WHERE interaction_id = '100'").run();
    try {
      const r = await run(['calls', '--data', dataDir, '--json'], {}, READER);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const rows = JSON.parse(r.stdout) as CallRecord[];
      expect(rows.map((c) => c.interactionId)).toEqual(['100', '200', '600', '500', '400']);
      expect(rows[0]!.note).toBeUndefined();
      // The daemon can still write (the reader held no lock).
      daemon.prepare("UPDATE calls SET note = 'still writing' WHERE interaction_id = '400'").run();
    } finally {
      daemon.exec('COMMIT');
      daemon.close();
    }
  });

  it('the daemon stopped and a data directory this user may not write: calls and recording read it, changing and creating nothing', async () => {
    const db = join(dataDir, 'calls.sqlite');
    expect(existsSync(`${db}-wal`)).toBe(false); // closed by the daemon: no -wal, no -shm
    const outDir = mkdtempSync(join(tmpdir(), 'sb-calls-out-'));
    chmodSync(outDir, 0o777);
    const bytes = readFileSync(db);
    const mtime = statSync(db).mtimeMs;
    chmodSync(db, 0o444);
    chmodSync(dataDir, 0o555);
    try {
      const r = await run(['calls', '--data', dataDir, '--json'], {}, READER);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as CallRecord[]).map((c) => c.interactionId)).toEqual(['100', '200', '600', '500', '400']);
      const out = join(outDir, 'copy.wav');
      const rec = await run(['recording', '200', '--out', out, '--data', dataDir], {}, READER);
      expect(rec.stderr).toBe('');
      expect(rec.code).toBe(0);
      expect(readFileSync(out).equals(WAV)).toBe(true);
      expect(readdirSync(dataDir).sort()).toEqual(['calls.sqlite', 'recordings']);
      expect(readFileSync(db).equals(bytes)).toBe(true);
      expect(statSync(db).mtimeMs).toBe(mtime);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });

  it('a database of another schema version: exit 7 naming the file and what to do', async () => {
    const raw = new Database(join(dataDir, 'calls.sqlite'));
    raw.prepare('UPDATE schema_version SET version = version + 1').run();
    raw.close();
    const r = await run(['calls', '--data', dataDir]);
    expect(r.code).toBe(7);
    expect(r.stderr).toContain(`call records database ${join(dataDir, 'calls.sqlite')}: schema version 2 is newer than this switchboard reads (1): use the switchboard that wrote it, or upgrade this one`);
  });

  it('$SWITCHBOARD_DATA_DIR is the default data directory', async () => {
    const r = await run(['calls', '--json'], { SWITCHBOARD_DATA_DIR: dataDir });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(5);
  });
});

describe('switchboard recording', () => {
  it('says which side failed: reading the stored recording (exit 1) or writing --out (exit 2)', async () => {
    const dirAsFile = join(dataDir, 'recordings', 'a-directory.wav');
    mkdirSync(dirAsFile);
    addRecords(record({ interactionId: '900', callType: 'Diverted Call', outcome: 'voicemail', recordingStatus: 'available', recordingFile: dirAsFile, startedAt: '2020-01-01T00:00:00Z' }));
    const out = join(dataDir, 'x.wav');
    const unreadable = await run(['recording', '900', '--out', out, '--data', dataDir]);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toContain(`cannot read the recording of call 900 (${dirAsFile}): EISDIR`);
    expect(unreadable.stderr).not.toContain('cannot write');
    expect(existsSync(out)).toBe(false);

    // A recording only the daemon's user may read.
    const kept = join(dataDir, 'recordings', '20240501_0930_200.wav');
    chmodSync(dataDir, 0o755);
    chmodSync(kept, 0o600);
    if (!ROOT_USER) chmodSync(kept, 0o000);
    const outDir = mkdtempSync(join(tmpdir(), 'sb-rec-out-'));
    chmodSync(outDir, 0o777);
    try {
      const denied = await run(['recording', '200', '--out', join(outDir, 'y.wav'), '--data', dataDir], {}, READER);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain(`cannot read the recording of call 200 (${kept}): EACCES`);
      expect(existsSync(join(outDir, 'y.wav'))).toBe(false);
    } finally {
      chmodSync(kept, 0o644);
      rmSync(outDir, { recursive: true, force: true });
    }

    const noDir = join(dataDir, 'no-such-dir', 'x.wav');
    const unwritable = await run(['recording', '200', '--out', noDir, '--data', dataDir]);
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toContain(`cannot write ${noDir}: ENOENT`);

    // --force onto the stored recording itself: refused, the recording kept whole.
    const self = await run(['recording', '200', '--out', kept, '--force', '--data', dataDir]);
    expect(self.code).toBe(2);
    expect(self.stderr).toContain(`cannot write ${kept}: it is the stored recording itself`);
    expect(readFileSync(kept).equals(WAV)).toBe(true);
  });

  it('copies the kept recording to --out', async () => {
    const out = join(dataDir, 'copy.wav');
    const r = await run(['recording', '200', '--out', out, '--data', dataDir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(WAV)).toBe(true);
    const again = await run(['recording', '200', '--out', out, '--data', dataDir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists (use --force to overwrite)');
    expect((await run(['recording', '200', '--out', out, '--data', dataDir, '--force'])).code).toBe(0);
  });

  it('finds the recording in <data>/recordings when the data directory moved', async () => {
    const out = join(dataDir, 'moved.wav');
    const r = await run(['recording', '800', '--out', out, '--data', dataDir]);
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(WAV)).toBe(true);
  });

  it('clear errors: unknown call, no recording, deleted, file missing', async () => {
    const out = join(dataDir, 'x.wav');
    const cases: [string, string][] = [
      ['999', 'no call with interaction id "999"'],
      ['400', 'call 400 has no recording (outcome: no message)'],
      ['500', 'the recording of call 500 was deleted'],
      ['600', 'the recording of call 600 is missing'],
    ];
    for (const [id, message] of cases) {
      const r = await run(['recording', id, '--out', out, '--data', dataDir]);
      expect(r.code, id).toBe(1);
      expect(r.stderr, id).toContain(message);
      expect(existsSync(out)).toBe(false);
    }
    const usage = await run(['recording', '200', '--data', dataDir]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('out');
  });
});
