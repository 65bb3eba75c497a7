/**
 * The outbox's onFailed as call control wires it (src/workflows/wire.ts): a mail job found in the
 * outbox that cannot be sent (unreadable, written by another version) marks its call record's
 * email "failed" instead of leaving it "queued" for ever.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CallRecords } from '../src/calls/records.js';
import { silentLogger } from '../src/log.js';
import { MailOutbox } from '../src/mail/outbox.js';
import { startCallControl } from '../src/workflows/wire.js';
import { startSmtpServer } from './helpers/smtp.js';
import { waitFor } from './helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('mail outbox in call control', () => {
  it('an unreadable job in the outbox marks its call record "failed" at start, and its attachment is kept', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sb-outbox-wire-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const smtp = await startSmtpServer();
    cleanups.push(() => smtp.stop());
    const interactionId = '1700000000000000077';

    // As the DID workflow leaves things once the voicemail email is queued...
    const records = CallRecords.open(join(dataDir, 'calls.sqlite'));
    records.insert({
      interactionId, callType: 'Diverted Call', agentId: '1001', startedAt: new Date().toISOString(), callerNumber: '+61400111222',
      calledNumber: '+61290000001', durationSeconds: 12, outcome: 'voicemail', divertReason: 'paused', recordingStatus: 'available', emailStatus: 'queued',
    });
    records.close();
    const queued = await new MailOutbox({ dir: join(dataDir, 'outbox'), transport: { sendMail: () => Promise.reject(new Error('unused')) }, from: 'voicemail@example.com' })
      .enqueue({ to: 'alice@example.com', subject: 's', text: 't', interactionId, attachment: { filename: 'vm.wav', content: Buffer.from('RIFF') } });
    // ...then the job file is damaged (or a newer switchboard wrote it, before a downgrade).
    const file = join(dataDir, 'outbox', 'pending', `${queued.id}.json`);
    writeFileSync(file, readFileSync(file, 'utf8').replace('"version": 1', '"version": 2'));

    const cc = await startCallControl({
      settings: {
        smtp: { host: '127.0.0.1', port: smtp.port, secure: false, requireTls: false, from: 'voicemail@example.com' },
        voicemail: { maxDurationSeconds: 180, maxSilenceSeconds: 5, minDurationSeconds: 2 },
      },
      store: () => undefined,
      presence: { get: () => ({ state: 'available' }) },
      logger: silentLogger(),
      dataDir,
    });
    cleanups.push(() => cc.stop());
    await waitFor(() => cc.records.get(interactionId)?.emailStatus === 'failed');
    expect(readdirSync(join(dataDir, 'outbox', 'failed')).sort()).toEqual([`${queued.id}.att`, `${queued.id}.json`]);
    expect(readdirSync(join(dataDir, 'outbox', 'pending'))).toEqual([]);
    expect(smtp.messages).toHaveLength(0);
  });
});
