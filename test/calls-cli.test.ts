/**
 * `switchboard calls` and `switchboard recording` end to end: runs the built CLI (`npm test` builds
 * dist first; by hand: `npx tsc -p tsconfig.build.json`) against a temp data directory whose call
 * records are written with the real CallRecords store.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CallRecords, type CallRecord } from '../src/calls/records.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC', ...env };
  delete childEnv.SWITCHBOARD_DATA_DIR;
  Object.assign(childEnv, env);
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: childEnv, timeout: 15_000 }, (err, stdout, stderr) => {
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
  rmSync(dataDir, { recursive: true, force: true });
});

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

  it('$SWITCHBOARD_DATA_DIR is the default data directory', async () => {
    const r = await run(['calls', '--json'], { SWITCHBOARD_DATA_DIR: dataDir });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(5);
  });
});

describe('switchboard recording', () => {
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
