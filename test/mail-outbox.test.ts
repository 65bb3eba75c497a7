import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SwitchboardError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import type { MailJobUnreadableError, MailSendError } from '../src/mail/errors.js';
import { MailOutbox, type MailJob, type MailOutboxOptions, type UnreadableMailJob } from '../src/mail/outbox.js';
import { createSmtpTransport, type MailTransport } from '../src/mail/transport.js';
import { buildVoicemailEmail, loadEmailTemplates, type VoicemailEmailInput } from '../src/mail/voicemail-email.js';
import { parseMessage, startSmtpServer, type TestSmtpServer } from './helpers/smtp.js';
import { waitFor } from './helpers/wait.js';

const FROM = 'Switchboard <voicemail@example.com>';

let dir: string;
let smtp: TestSmtpServer;
const outboxes: MailOutbox[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-outbox-'));
  smtp = await startSmtpServer();
});

afterEach(async () => {
  for (const outbox of outboxes.splice(0)) await outbox.stop();
  await smtp.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Events {
  delivered: MailJob[];
  attempts: { job: MailJob; err: MailSendError; delay: number | null }[];
  failed: { job: MailJob | UnreadableMailJob; err: MailSendError | MailJobUnreadableError }[];
}

function makeOutbox(overrides: Partial<MailOutboxOptions> = {}, server: TestSmtpServer = smtp): { outbox: MailOutbox; events: Events } {
  const events: Events = { delivered: [], attempts: [], failed: [] };
  const outbox = new MailOutbox({
    dir: join(dir, 'outbox'),
    transport: createSmtpTransport({ host: '127.0.0.1', port: server.port, ignoreTLS: true, from: FROM }),
    from: FROM,
    initialDelayMs: 20,
    maxDelayMs: 80,
    failAfterAttempts: 3,
    onDelivered: (job) => void events.delivered.push(job),
    onAttemptFailed: (job, err, delay) => void events.attempts.push({ job, err, delay }),
    onFailed: (job, err) => void events.failed.push({ job, err }),
    ...overrides,
  });
  outboxes.push(outbox);
  return { outbox, events };
}

const job = (interactionId = '1700000000000000123', extra: object = {}) => ({
  to: 'alice@example.com',
  subject: 'Voicemail from +61299998888',
  text: 'You have a new voicemail.',
  interactionId,
  ...extra,
});

const files = (sub: string): string[] => (existsSync(join(dir, 'outbox', sub)) ? readdirSync(join(dir, 'outbox', sub)).sort() : []);

function attachmentOf(raw: string): { filename?: string; body: Buffer } | undefined {
  return parseMessage(raw).parts.find((p) => p.filename !== undefined);
}

function codeOf(err: unknown): string | undefined {
  return err instanceof SwitchboardError ? err.code : undefined;
}

describe('MailOutbox', () => {
  it('delivers a job with its attachment intact, a stable Message-ID, and moves it to sent/', async () => {
    const { outbox, events } = makeOutbox();
    await outbox.start();
    const bytes = Buffer.concat([Buffer.from('RIFF'), randomBytes(50_000), Buffer.from([0, 255, 13, 10, 13, 10, 46])]);
    const queued = await outbox.enqueue(job('1700000000000000123', { attachment: { filename: '20240501_0930_1700000000000000123.wav', content: bytes } }));
    await outbox.drain();

    expect(smtp.messages).toHaveLength(1);
    const message = smtp.messages[0]!;
    expect(message.to).toEqual(['alice@example.com']);
    expect(message.from).toBe('voicemail@example.com');
    const parsed = parseMessage(message.raw);
    expect(parsed.headers['message-id']).toBe(queued.messageId);
    expect(queued.messageId).toMatch(/^<\d{13}-[0-9a-f]{12}\.1700000000000000123@example\.com>$/);
    expect(parsed.headers['subject']).toBe('Voicemail from +61299998888');
    expect(parsed.headers['x-switchboard-interaction-id']).toBe('1700000000000000123');
    const attachment = attachmentOf(message.raw);
    expect(attachment?.filename).toBe('20240501_0930_1700000000000000123.wav');
    expect(attachment?.body.equals(bytes)).toBe(true);

    expect(events.delivered.map((j) => j.id)).toEqual([queued.id]);
    expect(events.attempts).toEqual([]);
    expect(files('pending')).toEqual([]);
    expect(files('sent')).toEqual([`${queued.id}.json`]);
    const sent = JSON.parse(readFileSync(join(dir, 'outbox', 'sent', `${queued.id}.json`), 'utf8')) as Record<string, unknown>;
    expect(sent.deliveredAt).toEqual(expect.any(String));
    expect(sent.attempts).toBe(1);
  });

  it('copies an attachment given by path before enqueue returns', async () => {
    const { outbox } = makeOutbox();
    const source = join(dir, 'vm.wav');
    const bytes = randomBytes(10_000);
    writeFileSync(source, bytes);
    await outbox.enqueue(job('42', { attachment: { filename: 'vm.wav', path: source } }));
    rmSync(source); // the outbox has its own copy
    await outbox.start();
    await outbox.drain();
    expect(attachmentOf(smtp.messages[0]!.raw)?.body.equals(bytes)).toBe(true);
  });

  it('retries while the SMTP server is down and delivers exactly once when it is back', async () => {
    await smtp.setDown(true);
    const { outbox, events } = makeOutbox();
    await outbox.start();
    const queued = await outbox.enqueue(job());
    await waitFor(() => events.attempts.length >= 3);
    expect(events.attempts.slice(0, 3).map((a) => a.delay)).toEqual([20, 40, 80]);
    expect(events.attempts[0]?.err.code).toBe('MAIL_SEND_FAILED');
    expect(events.attempts[0]?.err.message).toContain('ECONNREFUSED');
    expect(events.failed).toHaveLength(1); // failAfterAttempts = 3, reported once
    await smtp.setDown(false);
    await outbox.drain();
    await outbox.stop();

    expect(smtp.messages).toHaveLength(1);
    expect(parseMessage(smtp.messages[0]!.raw).headers['message-id']).toBe(queued.messageId);
    expect(events.delivered).toHaveLength(1);
    expect(events.delivered[0]?.attempts).toBe(events.attempts.length + 1);
    expect(events.failed).toHaveLength(1);
    expect(files('pending')).toEqual([]);
  });

  it('sends what was queued before a crash when a new outbox starts on the directory, once', async () => {
    // First process: jobs made durable, then it "crashes" (never started, never stopped).
    const first = makeOutbox().outbox;
    const a = await first.enqueue(job('1', { attachment: { filename: 'a.wav', content: Buffer.from('AAAA') } }));
    const b = await first.enqueue(job('2'));
    expect(files('pending')).toEqual([`${a.id}.att`, `${a.id}.json`, `${b.id}.json`]);
    // Leftovers of an enqueue interrupted before its commit point: removed on start.
    const stale = [join(dir, 'outbox', 'pending', '.x.json.1234.deadbeef.tmp'), join(dir, 'outbox', 'pending', '0000000000001-aaaaaaaaaaaa.att')];
    for (const file of stale) {
      writeFileSync(file, 'partial');
      utimesSync(file, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
    }

    const second = makeOutbox();
    await second.outbox.start();
    await second.outbox.drain();
    expect(smtp.messages.map((m) => parseMessage(m.raw).headers['message-id']).sort()).toEqual([a.messageId, b.messageId].sort());
    expect(second.events.delivered.map((j) => j.interactionId)).toEqual(['1', '2']);
    expect(files('pending')).toEqual([]);
    await second.outbox.stop();

    const third = makeOutbox();
    await third.outbox.start();
    await third.outbox.waitIdle();
    expect(third.outbox.pending()).toEqual([]);
    expect(smtp.messages).toHaveLength(2);
  });

  it('keeps the attempt count across a restart and delivers once', async () => {
    await smtp.setDown(true);
    const first = makeOutbox();
    await first.outbox.start();
    await first.outbox.enqueue(job());
    await waitFor(() => first.events.attempts.length >= 2);
    await first.outbox.stop();
    const attempts = first.events.attempts.length;
    expect(first.outbox.pending()[0]?.attempts).toBe(attempts);

    await smtp.setDown(false);
    const second = makeOutbox();
    await second.outbox.start();
    await second.outbox.drain();
    expect(smtp.messages).toHaveLength(1);
    expect(second.events.delivered[0]?.attempts).toBe(attempts + 1);
    expect(first.events.delivered).toEqual([]);
  });

  it('retries a 550 rejection, reports the failure once, and delivers when the server accepts', async () => {
    smtp.setReject(550, 'No such user here');
    const { outbox, events } = makeOutbox();
    await outbox.start();
    await outbox.enqueue(job());
    await waitFor(() => events.attempts.length >= 4);
    expect(events.attempts[0]?.err.details.smtpCode).toBe(550);
    expect(events.attempts[0]?.err.message).toContain('No such user here');
    expect(events.failed).toHaveLength(1);
    expect((events.failed[0]?.job as MailJob).attempts).toBe(3);
    expect(smtp.messages).toHaveLength(0);
    smtp.setReject(null);
    await outbox.drain();
    expect(smtp.messages).toHaveLength(1);
    expect(events.delivered).toHaveLength(1);
    expect(events.failed).toHaveLength(1);
  });

  it('gives up after maxAttempts when configured, keeping the job in failed/', async () => {
    smtp.setReject(550);
    const { outbox, events } = makeOutbox({ maxAttempts: 2, failAfterAttempts: 5 });
    await outbox.start();
    const queued = await outbox.enqueue(job('7', { attachment: { filename: 'x.wav', content: Buffer.from('x') } }));
    await outbox.drain();
    expect(events.attempts.map((a) => a.delay)).toEqual([20, null]);
    expect(events.failed).toHaveLength(1);
    expect(files('failed')).toEqual([`${queued.id}.att`, `${queued.id}.json`]);
    expect(files('pending')).toEqual([]);
  });

  it('stop() waits for the send in progress', async () => {
    let release: (() => void) | undefined;
    const sends: string[] = [];
    const transport: MailTransport = {
      sendMail: (mail) => {
        sends.push(String(mail.messageId));
        return new Promise((resolve) => {
          release = () => resolve({ response: '250 OK', accepted: ['alice@example.com'], rejected: [] });
        });
      },
    };
    const { outbox, events } = makeOutbox({ transport });
    await outbox.start();
    const queued = await outbox.enqueue(job());
    await waitFor(() => release);
    let stopped = false;
    const stopping = outbox.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    release?.();
    await stopping;
    expect(events.delivered.map((j) => j.id)).toEqual([queued.id]);
    expect(files('sent')).toEqual([`${queued.id}.json`]);
    expect(sends).toEqual([queued.messageId]);
  });

  it('logs failures with the delay and deliveries, never the SMTP password', async () => {
    const password = 'Sup3r-s3cret-pw';
    await smtp.stop();
    smtp = await startSmtpServer({ credentials: { username: 'relay', password } });
    let log = '';
    const logger = createLogger({
      level: 'debug',
      destination: new Writable({ write: (chunk, _enc, cb) => ((log += String(chunk)), cb()) }),
    });
    const transport = createSmtpTransport({ host: '127.0.0.1', port: smtp.port, ignoreTLS: true, user: 'relay', pass: password, from: FROM });
    const { outbox, events } = makeOutbox({ transport, logger });
    smtp.setReject(451, 'Try again later');
    await outbox.start();
    await outbox.enqueue(job());
    await waitFor(() => events.attempts.length >= 1);
    smtp.setReject(null);
    await outbox.drain();
    expect(smtp.logins).toEqual([{ username: 'relay', password }, { username: 'relay', password }]);
    const lines = log.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.level === 40 && l.delayMs === 20 && l.smtpCode === 451)).toBeDefined();
    expect(lines.find((l) => l.level === 30 && l.msg === 'mail delivered')).toBeDefined();
    expect(log).not.toContain(password);
  });

  it('refuses a bad job without writing anything', async () => {
    const { outbox } = makeOutbox();
    const attempts = [
      job('1', { to: 'alice@example.com\r\nBcc: eve@example.com' }),
      job('bad id'),
      job('1', { attachment: { filename: '../x.wav', content: Buffer.from('x') } }),
      job('1', { attachment: { filename: 'x.wav' } }),
      job('1', { attachment: { filename: 'x.wav', path: join(dir, 'missing.wav') } }),
    ];
    for (const input of attempts) {
      const err = await outbox.enqueue(input).catch((e: unknown) => e);
      expect(codeOf(err)).toBe('MAIL_JOB_INVALID');
    }
    expect(files('pending')).toEqual([]);
  });

  it('refuses to start while another live process holds the lock, takes over a dead one', async () => {
    const { outbox } = makeOutbox();
    await outbox.enqueue(job()); // creates the directories
    const lock = join(dir, 'outbox', 'outbox.lock');
    // Locks as switchboards before lock tokens wrote them: a pid, no host, never refreshed.
    writeFileSync(lock, JSON.stringify({ pid: process.ppid }));
    expect(codeOf(await outbox.start().catch((e: unknown) => e))).toBe('MAIL_OUTBOX_LOCKED');
    // A pid not running here may be a live daemon in another container: held while recent...
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345, since: new Date().toISOString() })); // above Linux's pid_max: not running
    expect(codeOf(await outbox.start().catch((e: unknown) => e))).toBe('MAIL_OUTBOX_LOCKED');
    writeFileSync(lock, JSON.stringify({ pid: process.pid }));
    expect(codeOf(await outbox.start().catch((e: unknown) => e))).toBe('MAIL_OUTBOX_LOCKED');
    // ...and taken over once an hour old.
    utimesSync(lock, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
    await outbox.start();
    await outbox.drain();
    expect(smtp.messages).toHaveLength(1);
    await outbox.stop();
    expect(existsSync(lock)).toBe(false);
  });
});

const outboxDir = () => join(dir, 'outbox');
const lockPath = () => join(dir, 'outbox', 'outbox.lock');
/** Above Linux's pid_max: no such process, here or anywhere. */
const DEAD_PID = 2 ** 22 + 12345;

async function rejection(p: Promise<unknown>): Promise<SwitchboardError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof SwitchboardError)) throw new Error(`expected a SwitchboardError, got ${String(err)}`);
  return err;
}

function memoryLog(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  let text = '';
  const logger = createLogger({ level: 'debug', destination: new Writable({ write: (chunk, _enc, cb) => ((text += String(chunk)), cb()) }) });
  return { logger, lines: () => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** A lock file as another switchboard writes it; `ageMs`: how long ago it was last refreshed. */
function writeForeignLock(fields: Record<string, unknown>, ageMs = 0): string {
  mkdirSync(outboxDir(), { recursive: true });
  const body = JSON.stringify({ pid: 1, host: 'other-host', pidNs: 'pid:[4026531836]', processStartedAt: Date.now() - 60_000, acquiredAt: new Date().toISOString(), leaseMs: 120_000, refreshMs: 10_000, token: 'f0f0f0f0f0f0f0f0', ...fields }) + '\n';
  writeFileSync(lockPath(), body);
  const t = new Date(Date.now() - ageMs);
  utimesSync(lockPath(), t, t);
  return body;
}

const messageIds = (server: TestSmtpServer = smtp): string[] => server.messages.map((m) => String(parseMessage(m.raw).headers['message-id']));

describe('MailOutbox: one running outbox per directory', () => {
  it('refuses a second outbox on the directory while the first runs, even with the same pid (two containers, both pid 1): each mail is sent once', async () => {
    const a = makeOutbox().outbox;
    const b = makeOutbox().outbox;
    const queued = [await a.enqueue(job('1')), await a.enqueue(job('2')), await a.enqueue(job('3'))];
    await a.start();
    const err = await rejection(b.start());
    expect(err.code).toBe('MAIL_OUTBOX_LOCKED');
    expect(err.message).toContain(lockPath());
    expect(err.message).toContain(`pid ${process.pid}`);
    expect(err.details).toMatchObject({ lockFile: lockPath(), pid: process.pid, host: hostname() });
    await a.drain();
    await b.stop(); // must not remove a's lock
    expect(JSON.parse(readFileSync(lockPath(), 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    await a.stop();
    expect(messageIds().sort()).toEqual(queued.map((q) => q.messageId).sort());
    expect(existsSync(lockPath())).toBe(false);
  });

  it('does not take over a fresh lock of another host whose pid looks dead here; does once its lease has run out', async () => {
    const { logger, lines } = memoryLog();
    const { outbox } = makeOutbox({ logger });
    await outbox.enqueue(job());
    writeForeignLock({ pid: DEAD_PID, host: 'other-host' }, 1000);
    const err = await rejection(outbox.start());
    expect(err.code).toBe('MAIL_OUTBOX_LOCKED');
    expect(err.details).toMatchObject({ lockFile: lockPath(), pid: DEAD_PID, host: 'other-host' });
    expect(err.message).toContain(`pid ${DEAD_PID} on host other-host`);
    expect(err.message).toContain(`delete ${lockPath()}`);
    expect(err.details.takeoverInMs).toBeGreaterThan(100_000);
    expect(smtp.messages).toHaveLength(0);

    writeForeignLock({ pid: DEAD_PID, host: 'other-host' }, 121_000); // not refreshed for longer than its lease
    await outbox.start();
    await outbox.drain();
    expect(smtp.messages).toHaveLength(1);
    const lock = JSON.parse(readFileSync(lockPath(), 'utf8')) as Record<string, unknown>;
    expect(lock).toMatchObject({ pid: process.pid, host: hostname(), token: expect.any(String) });
    expect(lock.token).not.toBe('f0f0f0f0f0f0f0f0');
    expect(lines().find((l) => String(l.msg).includes('took over a stale lock') && (l.holder as { host?: string })?.host === 'other-host')).toBeDefined();
  });

  it('under this host name in another pid namespace: held while its holder refreshes it, taken over once it stops', async () => {
    const { outbox } = makeOutbox({ lockLeaseMs: 1200 });
    await outbox.enqueue(job());
    // Another container with the same host name (or this one before a restart), also pid 1 maybe.
    const foreign = { pid: process.pid, host: hostname(), pidNs: 'pid:[1]', leaseMs: 60_000, refreshMs: 400 };
    writeForeignLock(foreign);
    const refresher = setInterval(() => {
      const now = new Date();
      utimesSync(lockPath(), now, now);
    }, 20);
    try {
      expect((await rejection(outbox.start())).code).toBe('MAIL_OUTBOX_LOCKED');
    } finally {
      clearInterval(refresher);
    }
    expect(JSON.parse(readFileSync(lockPath(), 'utf8'))).toMatchObject({ token: 'f0f0f0f0f0f0f0f0' });
    expect(smtp.messages).toHaveLength(0);
    // The holder stops refreshing (it crashed): taken over after a few missed refreshes.
    await outbox.start();
    await outbox.drain();
    expect(smtp.messages).toHaveLength(1);
    expect(JSON.parse(readFileSync(lockPath(), 'utf8'))).toMatchObject({ pid: process.pid, pidNs: expect.not.stringMatching(/^pid:\[1\]$/) });
  });

  it('our pid in this pid namespace from an earlier run started under 2 s before this one (a fast crash-restart): taken over at once', async () => {
    const { logger, lines } = memoryLog();
    const { outbox } = makeOutbox({ logger });
    await outbox.enqueue(job());
    const startedAt = Math.round(Date.now() - process.uptime() * 1000);
    // Written a moment ago by the previous run of this container (pid 1 again), which crashed.
    writeForeignLock({ pid: process.pid, host: hostname(), pidNs: readlinkSync('/proc/self/ns/pid'), incarnation: 'feedfacefeedface', processStartedAt: startedAt - 1500 });
    const t0 = Date.now();
    await outbox.start();
    expect(Date.now() - t0).toBeLessThan(1000);
    await outbox.drain();
    expect(smtp.messages).toHaveLength(1);
    const lock = JSON.parse(readFileSync(lockPath(), 'utf8')) as Record<string, unknown>;
    expect(lock).toMatchObject({ pid: process.pid, incarnation: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(lock.incarnation).not.toBe('feedfacefeedface');
    expect(lock.token).not.toBe('f0f0f0f0f0f0f0f0');
    expect(lines().find((l) => String(l.msg).includes('took over a stale lock: its pid is this process, from an earlier run of it'))).toBeDefined();
    // Another outbox of this very run is still refused.
    const err = await rejection(makeOutbox().outbox.start());
    expect(err.code).toBe('MAIL_OUTBOX_LOCKED');
    expect(err.message).toContain('another outbox in this very process');
  });

  it('several outboxes taking over one stale lock at once: exactly one wins', async () => {
    for (let round = 0; round < 10; round++) {
      writeForeignLock({ pid: DEAD_PID, host: 'gone-host' }, 10 * 60_000);
      const contenders = [makeOutbox().outbox, makeOutbox().outbox, makeOutbox().outbox];
      const results = await Promise.allSettled(contenders.map((o) => o.start()));
      const winners = contenders.filter((_, i) => results[i]!.status === 'fulfilled');
      expect(winners).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(codeOf(r.reason)).toBe('MAIL_OUTBOX_LOCKED');
      const token = (JSON.parse(readFileSync(lockPath(), 'utf8')) as { token: string }).token;
      for (const loser of contenders.filter((o) => o !== winners[0])) await loser.stop();
      expect((JSON.parse(readFileSync(lockPath(), 'utf8')) as { token: string }).token).toBe(token);
      await winners[0]!.stop();
      expect(existsSync(lockPath())).toBe(false);
    }
  });

  it('stops sending once another process took its lock over, and stop() leaves that lock alone', async () => {
    const { logger, lines } = memoryLog();
    const { outbox } = makeOutbox({ logger });
    await outbox.start();
    // Another daemon took the lock (this one was stalled for longer than the lease, say).
    const theirs = writeForeignLock({ pid: 7, host: 'other-host' });
    const queued = await outbox.enqueue(job());
    await outbox.waitIdle();
    expect(smtp.messages).toHaveLength(0);
    expect(files('pending')).toEqual([`${queued.id}.json`]); // left for the new holder
    await outbox.stop();
    expect(readFileSync(lockPath(), 'utf8')).toBe(theirs);
    expect(lines().find((l) => l.level === 50 && String(l.msg).includes('took the outbox lock over'))).toBeDefined();
  });
  it('removes lock debris a crash left (temp and moved-aside lock files) once an hour old', async () => {
    mkdirSync(outboxDir(), { recursive: true });
    const old = ['outbox.lock.4242.0123456789abcdef.tmp', 'outbox.lock.stale.4242.89abcdef'];
    const young = 'outbox.lock.stale.4243.01234567';
    for (const name of [...old, young]) writeFileSync(join(outboxDir(), name), '{}');
    for (const name of old) utimesSync(join(outboxDir(), name), new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
    const { outbox } = makeOutbox();
    await outbox.start();
    expect(readdirSync(outboxDir()).filter((n) => n.startsWith('outbox.lock')).sort()).toEqual(['outbox.lock', young]);
  });

  it('stop() does not remove a lock another process took over', async () => {
    const { outbox } = makeOutbox();
    await outbox.start();
    const theirs = writeForeignLock({ pid: 7, host: 'other-host' });
    await outbox.stop();
    expect(readFileSync(lockPath(), 'utf8')).toBe(theirs);
  });
});

describe('MailOutbox: jobs that cannot be sent', () => {
  it('moves an unreadable job to failed/ with its attachment and reports it through onFailed', async () => {
    const first = makeOutbox().outbox;
    const queued = await first.enqueue(job('1700000000000000001', { attachment: { filename: 'x.wav', content: Buffer.alloc(100) } }));
    // Damaged, hand-edited, or written by a newer switchboard before a downgrade.
    const file = join(outboxDir(), 'pending', `${queued.id}.json`);
    writeFileSync(file, JSON.stringify({ ...(JSON.parse(readFileSync(file, 'utf8')) as object), version: 2 }));

    const second = makeOutbox();
    await second.outbox.start();
    await second.outbox.waitIdle();
    expect(files('pending')).toEqual([]);
    expect(files('failed')).toEqual([`${queued.id}.att`, `${queued.id}.json`]);
    expect(second.events.failed).toHaveLength(1);
    expect(second.events.failed[0]!.job).toEqual({ unreadable: true, id: queued.id, interactionId: '1700000000000000001', file: join(outboxDir(), 'failed', `${queued.id}.json`) });
    expect(codeOf(second.events.failed[0]!.err)).toBe('MAIL_JOB_UNREADABLE');
    await second.outbox.stop();

    // Later starts leave failed/ alone and report nothing again.
    const third = makeOutbox();
    await third.outbox.start();
    await third.outbox.waitIdle();
    expect(files('failed')).toEqual([`${queued.id}.att`, `${queued.id}.json`]);
    expect(third.events.failed).toEqual([]);
    expect(smtp.messages).toHaveLength(0);
  });

  it('takes the interaction id from the file name when the job is not even JSON', async () => {
    const first = makeOutbox().outbox;
    const queued = await first.enqueue(job('1700000000000000002'));
    writeFileSync(join(outboxDir(), 'pending', `${queued.id}.json`), '\0\0\0garbage');
    // A job named as earlier versions named them (no interaction id in the name): its content tells.
    const legacyId = '1700000000000-0123456789ab';
    writeFileSync(join(outboxDir(), 'pending', `${legacyId}.json`), '{"version":3,"id":"1700000000000-0123456789ab","interactionId":"1700000000000000003","to":');
    const { outbox, events } = makeOutbox();
    await outbox.start();
    await outbox.waitIdle();
    expect(events.failed.map((f) => [f.job.id, f.job.interactionId]).sort()).toEqual([[legacyId, '1700000000000000003'], [queued.id, '1700000000000000002']]);
    expect(files('failed')).toEqual([`${legacyId}.json`, `${queued.id}.json`]);
  });

  it('reports a job whose attachment is missing through onFailed', async () => {
    const first = makeOutbox().outbox;
    const queued = await first.enqueue(job('1700000000000000004', { attachment: { filename: 'x.wav', content: Buffer.from('x') } }));
    rmSync(join(outboxDir(), 'pending', `${queued.id}.att`));
    const { outbox, events } = makeOutbox();
    await outbox.start();
    await outbox.waitIdle();
    expect(events.failed.map((f) => [f.job.id, f.job.interactionId, codeOf(f.err)])).toEqual([[queued.id, '1700000000000000004', 'MAIL_JOB_UNREADABLE']]);
    expect(files('failed')).toEqual([`${queued.id}.json`]);
    expect(smtp.messages).toHaveLength(0);
  });
});

describe('MailOutbox: after delivery', () => {
  it('removes a delivered job from pending/ when it cannot be moved to sent/, so a restart does not send it again', async () => {
    const { logger, lines } = memoryLog();
    const first = makeOutbox({ logger });
    await first.outbox.start();
    // sent/ cannot take the job (a full disk says ENOSPC; here it is not a directory: ENOTDIR).
    const sentDir = join(outboxDir(), 'sent');
    rmSync(sentDir, { recursive: true });
    writeFileSync(sentDir, '');
    const queued = await first.outbox.enqueue(job('5', { attachment: { filename: 'a.wav', content: Buffer.from('AAAA') } }));
    await first.outbox.drain();
    expect(messageIds()).toEqual([queued.messageId]);
    expect(first.events.delivered).toHaveLength(1);
    expect(files('pending')).toEqual([]);
    expect(lines().find((l) => l.level === 50 && l.jobId === queued.id && String(l.msg).includes('removed from pending/'))).toBeDefined();
    await first.outbox.stop();

    rmSync(sentDir);
    mkdirSync(sentDir);
    const second = makeOutbox();
    await second.outbox.start();
    await second.outbox.waitIdle();
    expect(second.outbox.pending()).toEqual([]);
    expect(smtp.messages).toHaveLength(1);
  });

  it('prunes sent/ of records older than sentRetentionMs', async () => {
    mkdirSync(join(outboxDir(), 'sent'), { recursive: true });
    const record = (name: string, ageDays: number): string => {
      const file = join(outboxDir(), 'sent', name);
      writeFileSync(file, '{}\n');
      const t = new Date(Date.now() - ageDays * 86_400_000);
      utimesSync(file, t, t);
      return name;
    };
    record('1600000000000-aaaaaaaaaaaa.1.json', 40);
    const recent = record('1700000000000-bbbbbbbbbbbb.2.json', 5);
    const keptLonger = record('1650000000000-cccccccccccc.3.json', 8);
    const { outbox } = makeOutbox({ sentRetentionMs: 10 * 86_400_000 });
    await outbox.start();
    expect(files('sent')).toEqual([keptLonger, recent].sort());
    await outbox.stop();
    const strict = makeOutbox({ sentRetentionMs: 7 * 86_400_000 }).outbox;
    await strict.start();
    expect(files('sent')).toEqual([recent]);
  });

  it('keeps sent/ records for 30 days by default', async () => {
    mkdirSync(join(outboxDir(), 'sent'), { recursive: true });
    for (const [name, ageDays] of [['1600000000000-aaaaaaaaaaaa.1.json', 31], ['1700000000000-bbbbbbbbbbbb.2.json', 29]] as const) {
      writeFileSync(join(outboxDir(), 'sent', name), '{}\n');
      const t = new Date(Date.now() - ageDays * 86_400_000);
      utimesSync(join(outboxDir(), 'sent', name), t, t);
    }
    const { outbox } = makeOutbox();
    await outbox.start();
    expect(files('sent')).toEqual(['1700000000000-bbbbbbbbbbbb.2.json']);
  });

  it('at least once: a crash between the 250 and the move to sent/ sends the mail again, with the same Message-ID and Date', async () => {
    const real = createSmtpTransport({ host: '127.0.0.1', port: smtp.port, ignoreTLS: true, from: FROM });
    const pendingDir = join(outboxDir(), 'pending');
    let snapshot: { name: string; data: Buffer }[] = [];
    const transport: MailTransport = {
      sendMail: async (mail) => {
        const info = await real.sendMail(mail);
        // What the disk holds when the 250 arrives: a crash now would leave exactly this.
        snapshot = readdirSync(pendingDir).map((name) => ({ name, data: readFileSync(join(pendingDir, name)) }));
        return info;
      },
    };
    const first = makeOutbox({ transport });
    await first.outbox.start();
    const queued = await first.outbox.enqueue(job('6', { attachment: { filename: 'a.wav', content: Buffer.from('AAAA') } }));
    await first.outbox.drain();
    await first.outbox.stop();
    // The "crash": the move to sent/ never reached the disk.
    for (const { name, data } of snapshot) writeFileSync(join(pendingDir, name), data);
    rmSync(join(outboxDir(), 'sent', `${queued.id}.json`));

    const second = makeOutbox();
    await second.outbox.start();
    await second.outbox.drain();
    expect(smtp.messages).toHaveLength(2);
    const [one, two] = smtp.messages.map((m) => parseMessage(m.raw).headers);
    expect(one!['date']).toMatch(/\d{4}/);
    expect(one!['message-id']).toBe(queued.messageId);
    expect(two!['message-id']).toBe(queued.messageId);
    expect(two!['date']).toBe(one!['date']);
  });
});

describe('voicemail email', () => {
  const input = (over: Partial<VoicemailEmailInput> = {}, tz = 'Australia/Sydney'): VoicemailEmailInput => ({
    agent: { id: '1001', username: 'alice', displayName: 'Alice Example', email: 'alice@example.com', timezone: tz },
    callerNumber: '+61299998888',
    did: '+61255550100',
    interactionId: '1700000000000000123',
    startedAt: new Date('2024-05-01T23:30:00Z'),
    durationSeconds: 65,
    ...over,
  });

  it('renders the default templates', async () => {
    const templates = await loadEmailTemplates();
    const email = buildVoicemailEmail(input(), templates);
    expect(email.to).toBe('alice@example.com');
    expect(email.subject).toBe('Voicemail from +61299998888 on +61255550100 (2024-05-02 09:30)');
    expect(email.attachmentName).toBe('20240502_0930_1700000000000000123.wav');
    expect(email.text.startsWith('Hello Alice Example,\n')).toBe(true);
    for (const part of ['+61299998888', '2024-05-02 09:30 (Australia/Sydney)', '1:05', '1700000000000000123', '20240502_0930_1700000000000000123.wav']) {
      expect(email.text).toContain(part);
    }
    expect(email.text).not.toMatch(/\{\{|\}\}|&amp;/);
  });

  it('names the attachment yyyymmdd_hhmm_<id>.wav in the agent time zone, across DST changes', async () => {
    const templates = await loadEmailTemplates();
    const name = (iso: string, tz: string): string => buildVoicemailEmail(input({ startedAt: new Date(iso) }, tz), templates).attachmentName;
    expect(name('2024-05-01T23:30:00Z', 'UTC')).toBe('20240501_2330_1700000000000000123.wav');
    expect(name('2024-05-01T23:30:00Z', 'Australia/Sydney')).toBe('20240502_0930_1700000000000000123.wav');
    // Sydney leaves daylight time at 03:00 AEDT on 7 April 2024: 02:30 happens twice.
    expect(name('2024-04-06T15:30:00Z', 'Australia/Sydney')).toBe('20240407_0230_1700000000000000123.wav');
    expect(name('2024-04-06T16:30:00Z', 'Australia/Sydney')).toBe('20240407_0230_1700000000000000123.wav');
    expect(name('2024-04-06T13:59:00Z', 'Australia/Sydney')).toBe('20240407_0059_1700000000000000123.wav');
    // New York springs forward at 02:00 EST on 10 March 2024: 01:59 is followed by 03:00.
    expect(name('2024-03-10T06:59:00Z', 'America/New_York')).toBe('20240310_0159_1700000000000000123.wav');
    expect(name('2024-03-10T07:00:00Z', 'America/New_York')).toBe('20240310_0300_1700000000000000123.wav');
    // Midnight is 00, not 24.
    expect(name('2024-01-01T00:00:00Z', 'UTC')).toBe('20240101_0000_1700000000000000123.wav');
    const bad = (() => {
      try {
        return buildVoicemailEmail(input({}, 'Mars/Olympus'), templates);
      } catch (err) {
        return err;
      }
    })();
    expect(codeOf(bad)).toBe('AGENT_TIMEZONE_INVALID');
  });

  it('keeps the subject on one line whatever the caller id holds', async () => {
    const templates = await loadEmailTemplates();
    const email = buildVoicemailEmail(input({ callerNumber: '123\r\nBcc: eve@example.com\n' }), templates);
    expect(email.subject).toBe('Voicemail from 123 Bcc: eve@example.com on +61255550100 (2024-05-02 09:30)');
    expect(email.subject).not.toMatch(/[\r\n]/);

    const { outbox } = makeOutbox();
    await outbox.start();
    await outbox.enqueue({ ...email, interactionId: '1700000000000000123' });
    await outbox.drain();
    const message = smtp.messages[0]!;
    expect(message.to).toEqual(['alice@example.com']);
    const head = message.raw.slice(0, message.raw.indexOf('\r\n\r\n'));
    expect(head).not.toMatch(/^Bcc:/im);
  });

  it('refuses an agent without a usable email address', async () => {
    const templates = await loadEmailTemplates();
    const codeFor = (email: string): string | undefined => {
      try {
        buildVoicemailEmail({ ...input(), agent: { ...input().agent, email } }, templates);
      } catch (err) {
        return codeOf(err);
      }
      return undefined;
    };
    expect(codeFor('')).toBe('AGENT_EMAIL_MISSING');
    expect(codeFor('alice@example.com\r\nBcc: eve@example.com')).toBe('AGENT_EMAIL_INVALID');
    expect(codeFor('not-an-address')).toBe('AGENT_EMAIL_INVALID');
  });

  it('lets an operator directory override either template, and checks templates at load', async () => {
    const custom = join(dir, 'templates');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(custom);
    writeFileSync(join(custom, 'voicemail-subject.hbs'), '[VM] {{agent.username}} <- {{callerNumber}} & co\n');
    const templates = await loadEmailTemplates(custom);
    expect(templates.files.subject).toBe(join(custom, 'voicemail-subject.hbs'));
    expect(templates.files.body).not.toContain(custom);
    const email = buildVoicemailEmail(input(), templates);
    expect(email.subject).toBe('[VM] alice <- +61299998888 & co');
    expect(email.text).toContain('Hello Alice Example,');

    writeFileSync(join(custom, 'voicemail-body.txt.hbs'), 'Call from {{caller}}\n');
    expect(codeOf(await loadEmailTemplates(custom).catch((e: unknown) => e))).toBe('EMAIL_TEMPLATE_INVALID');
    writeFileSync(join(custom, 'voicemail-body.txt.hbs'), '{{shout callerNumber}}\n');
    expect(codeOf(await loadEmailTemplates(custom).catch((e: unknown) => e))).toBe('EMAIL_TEMPLATE_INVALID');
    writeFileSync(join(custom, 'voicemail-body.txt.hbs'), '{{#if callerNumber}}From {{callerNumber}}{{/if}}\n');
    expect(buildVoicemailEmail(input(), await loadEmailTemplates(custom)).text).toBe('From +61299998888\n');
    expect(codeOf(await loadEmailTemplates(join(dir, 'nowhere')).catch((e: unknown) => e))).toBe('EMAIL_TEMPLATE_INVALID');
  });

  it('goes end to end: voicemail email with the recording, through the outbox, to SMTP', async () => {
    const templates = await loadEmailTemplates();
    const email = buildVoicemailEmail(input(), templates);
    const recording = join(dir, 'rec.wav');
    const bytes = randomBytes(4096);
    writeFileSync(recording, bytes);
    const { outbox } = makeOutbox();
    await outbox.start();
    await outbox.enqueue({ to: email.to, subject: email.subject, text: email.text, interactionId: '1700000000000000123', attachment: { filename: email.attachmentName, path: recording } });
    await outbox.drain();
    const parsed = parseMessage(smtp.messages[0]!.raw);
    const text = parsed.parts.find((p) => p.contentType.startsWith('text/plain'));
    expect(text?.body.toString('utf8').replace(/\r\n/g, '\n')).toBe(email.text);
    const attachment = attachmentOf(smtp.messages[0]!.raw);
    expect(attachment?.filename).toBe('20240502_0930_1700000000000000123.wav');
    expect(attachment?.body.equals(bytes)).toBe(true);
  });
});
