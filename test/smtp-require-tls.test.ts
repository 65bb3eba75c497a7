/**
 * [smtp] require_tls: with a login configured, the SMTP password never goes over a connection that
 * is not encrypted (a relay without STARTTLS, or someone stripping it). Real SMTP server on loopback.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDaemonSettings } from '../src/config/settings.js';
import { createSmtpTransport } from '../src/mail/transport.js';
import { smtpTransportSettings } from '../src/workflows/wire.js';
import { startSmtpServer, type TestSmtpServer } from './helpers/smtp.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function settingsWith(smtpLines: string[]) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-smtp-tls-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'store'));
  const file = path.join(dir, 'switchboard.ini');
  writeFileSync(file, ['[store]', 'dir = store', '[smtp]', ...smtpLines, ''].join('\n'));
  return loadDaemonSettings({ configFile: file, env: {}, flags: {} });
}

async function server(): Promise<TestSmtpServer> {
  const s = await startSmtpServer(); // plain text, no STARTTLS offered, login accepted
  cleanups.push(() => s.stop());
  return s;
}

const MAIL = { from: 'vm@example.com', to: 'agent@example.com', subject: 'Voicemail', text: 'hello' };

describe('[smtp] require_tls', () => {
  it('defaults to true when a user is set: nothing is sent, the password never reaches a server without STARTTLS', async () => {
    const smtp = await server();
    const s = settingsWith(['host = 127.0.0.1', `port = ${smtp.port}`, 'from = vm@example.com', 'user = vm', 'password = S3cret-Pass']);
    expect(s.smtp?.requireTls).toBe(true);
    const transport = createSmtpTransport(smtpTransportSettings(s.smtp!));
    cleanups.push(() => transport.close());
    await expect(transport.sendMail(MAIL)).rejects.toThrow(/STARTTLS/i);
    expect(smtp.logins).toEqual([]);
    expect(smtp.messages).toEqual([]);
  });

  it('require_tls = false (a trusted relay) logs in and sends over plain text', async () => {
    const smtp = await server();
    const s = settingsWith(['host = 127.0.0.1', `port = ${smtp.port}`, 'from = vm@example.com', 'user = vm', 'password = S3cret-Pass', 'require_tls = false']);
    const transport = createSmtpTransport(smtpTransportSettings(s.smtp!));
    cleanups.push(() => transport.close());
    await transport.sendMail(MAIL);
    expect(smtp.logins).toEqual([{ username: 'vm', password: 'S3cret-Pass' }]);
    expect(smtp.messages).toHaveLength(1);
  });

  it('without a login it defaults to false (a local relay such as the development stack\'s mail catcher)', async () => {
    const smtp = await server();
    const s = settingsWith(['host = 127.0.0.1', `port = ${smtp.port}`, 'from = vm@example.com']);
    expect(s.smtp?.requireTls).toBe(false);
    const transport = createSmtpTransport(smtpTransportSettings(s.smtp!));
    cleanups.push(() => transport.close());
    await transport.sendMail(MAIL);
    expect(smtp.messages).toHaveLength(1);
  });

  it('require_tls = true without a login refuses a server without STARTTLS too', async () => {
    const smtp = await server();
    const s = settingsWith(['host = 127.0.0.1', `port = ${smtp.port}`, 'from = vm@example.com', 'require_tls = true']);
    const transport = createSmtpTransport(smtpTransportSettings(s.smtp!));
    cleanups.push(() => transport.close());
    await expect(transport.sendMail(MAIL)).rejects.toThrow(/STARTTLS/i);
    expect(smtp.messages).toEqual([]);
  });
});
