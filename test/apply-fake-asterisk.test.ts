/**
 * The fake Asterisk must behave like Asterisk 20 where apply depends on it; these tests pin the
 * behaviours and formats read from Asterisk's source (see test/fakes/fake-asterisk.ts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AmiClient } from '../src/asterisk/ami/client.js';
import { PeerRequestError } from '../src/errors.js';
import { FakeAsterisk, parseConfig } from './fakes/fake-asterisk.js';
import { AMI_SECRET, AMI_USER, memoryLogger, tempDir } from './helpers/apply-env.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const PJSIP = `; comment
[alice]
type = endpoint
transport = transport-udp
context = from-sip
disallow = all
allow = ulaw,alaw
aors = alice
auth = alice-auth
call_group = 1,3-5
pickup_group = 64,2 ; 64 is out of range: ignored
mailboxes = 1001@switchboard
set_var = A=1
set_var = B=2

[alice]
type = aor
max_contacts = 1

[alice-auth]
type = auth
username = alice
password = s\\;cret

[transport-udp]
type = transport
protocol = udp
bind = 0.0.0.0:5060
`;

async function start(files: Record<string, string>): Promise<{ fake: FakeAsterisk; client: AmiClient; dir: string }> {
  const dir = await tempDir('fake');
  for (const [n, t] of Object.entries(files)) await fs.writeFile(path.join(dir, n), t);
  const fake = new FakeAsterisk({ configDir: dir, username: AMI_USER, secret: AMI_SECRET, sipReloadDelayMs: 1 });
  const port = await fake.start();
  const client = new AmiClient({ host: '127.0.0.1', port, username: AMI_USER, secret: AMI_SECRET, actionTimeoutMs: 1000 }, memoryLogger().logger);
  client.start();
  await client.waitConnected(2000);
  cleanups.push(async () => {
    await client.stop();
    await fake.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return { fake, client, dir };
}

describe('fake Asterisk', () => {
  it('parses Asterisk config: comments, \\; escapes, block comments, repeated keys, => lines, templates', () => {
    const r = parseConfig('[a](!)\nx = 1\n[b](a)\ny = 2 ; c\ny = 3\n;-- block\n[zz]\n--;\nz => 4,5\nv = a\\;b\n');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.sections.map((s) => s.name)).toEqual(['b']);
    expect(r.sections[0]!.entries.map((e) => [e.key, e.value])).toEqual([['x', '1'], ['y', '2'], ['y', '3'], ['z', '4,5'], ['v', 'a;b']]);
    expect(parseConfig('[a]\nnot a line\n').ok).toBe(false);
    expect(parseConfig('x = 1\n').ok).toBe(false);
  });

  it('PJSIPShowEndpoint answers EndpointDetail/AorDetail/AuthDetail/TransportDetail in Asterisk formats; a missing endpoint is an error', async () => {
    const { client } = await start({ 'pjsip_switchboard.conf': PJSIP });
    const r = await client.listAction('PJSIPShowEndpoint', { Endpoint: 'alice' });
    expect(r.events.map((e) => e.Event)).toEqual(['EndpointDetail', 'AorDetail', 'AuthDetail', 'TransportDetail']);
    expect(r.events[0]).toMatchObject({ ObjectType: 'endpoint', ObjectName: 'alice', Context: 'from-sip', Allow: '(ulaw|alaw)', Transport: 'transport-udp', CallGroup: '1, 3, 4, 5', PickupGroup: '2', MediaEncryption: 'no', Mailboxes: '1001@switchboard', SetVar: 'A=1\nB=2' });
    expect(r.events[1]).toMatchObject({ ObjectName: 'alice', MaxContacts: '1', EndpointName: 'alice' });
    expect(r.events[2]).toMatchObject({ ObjectName: 'alice-auth', Username: 'alice', Password: 's;cret' });
    expect(r.complete).toMatchObject({ Event: 'EndpointDetailComplete', EventList: 'Complete' });
    await expect(client.listAction('PJSIPShowEndpoint', { Endpoint: 'bob' })).rejects.toThrow(/Unable to retrieve endpoint bob/);
    const list = await client.listAction('PJSIPShowEndpoints');
    expect(list.events.map((e) => e.ObjectName)).toEqual(['alice']);
  });

  it('reload: a bad codec on a new endpoint drops it, on an existing one retains the old config; a duplicate keeps everything', async () => {
    const { fake, client, dir } = await start({ 'pjsip_switchboard.conf': PJSIP });
    const file = path.join(dir, 'pjsip_switchboard.conf');
    const bob = '\n[bob]\ntype = endpoint\nallow = pcmu\n';
    await fs.writeFile(file, PJSIP.replace('allow = ulaw,alaw', 'allow = ulaw,G.729') + bob);
    await client.action('Reload', { Module: 'res_pjsip.so' });
    expect(fake.endpoint('alice')?.fields.Allow).toBe('(ulaw|alaw)');
    expect(fake.endpoint('bob')).toBeUndefined();
    expect(fake.log.some((l) => l.includes("Retaining existing configuration for object of type 'endpoint' with id 'alice'"))).toBe(true);
    await fs.writeFile(file, PJSIP.replace('context = from-sip', 'context = other') + '\n[alice-auth]\ntype = auth\nusername = x\n');
    await client.action('Reload', { Module: 'res_pjsip.so' });
    expect(fake.endpoint('alice')?.fields.Context).toBe('from-sip');
    await fs.writeFile(file, PJSIP.replace('context = from-sip', 'context = other'));
    fake.refuseOption('set_var');
    await client.action('Reload', { Module: 'res_pjsip.so' });
    expect(fake.endpoint('alice')?.fields.Context).toBe('from-sip');
    fake.clearControls().dropEndpoint('alice');
    await client.action('Reload', { Module: 'res_pjsip.so' });
    expect(fake.endpoint('alice')).toBeUndefined();
  });

  it('controls: reloadInProgress, hangOn, dropOn; unknown modules; bare Reload is recorded', async () => {
    const { fake, client } = await start({});
    fake.reloadInProgress(1);
    await expect(client.action('Reload', { Module: 'res_pjsip.so' })).rejects.toThrow(/A reload is in progress/);
    await client.action('Reload', { Module: 'res_pjsip.so' });
    await expect(client.action('Reload', { Module: 'chan_nope.so' })).rejects.toThrow(/No such module/);
    fake.hangOn('VoicemailUsersList');
    await expect(client.listAction('VoicemailUsersList', {}, { timeoutMs: 100 })).rejects.toThrow(/no answer/);
    const empty = await client.listAction('VoicemailUsersList');
    expect(empty.events).toEqual([]);
    expect(empty.response.Message).toBe('There are no voicemail users currently defined.');
    fake.dropOn('Reload');
    await expect(client.action('Reload', { Module: 'res_pjsip.so' })).rejects.toMatchObject({ code: 'PEER_DISCONNECTED' });
    expect(fake.reloads).toEqual(['res_pjsip.so']);
  });

  it('chan_sip: SIPshowpeer fields, background reload, type=user not found, unknown keys ignored; voicemail users', async () => {
    const sip = '[general](+)\ntcpenable = yes\n\n[carol]\ntype = friend\ncontext = sales\ndisallow = all\nallow = alaw,bogus\ncallgroup = 2,4-5\nmailbox = 1003@switchboard\nencryption = yes\ncall_group = 9\n\n[dave]\ntype = user\n';
    const vm = '[switchboard]\n1003 => 1234,Carol King,carol@example.com,,attach=yes|saycid=no\n';
    const { fake, client, dir } = await start({ 'sip_switchboard.conf': sip, 'voicemail_switchboard.conf': vm });
    const peer = await client.action('SIPshowpeer', { Peer: 'carol' });
    expect(peer).toMatchObject({ ObjectName: 'carol', Context: 'sales', Codecs: '(alaw)', Callgroup: '2, 4, 5', VoiceMailbox: '1003@switchboard', 'SIP-Encryption': 'Y' });
    await expect(client.action('SIPshowpeer', { Peer: 'dave' })).rejects.toThrow(/Peer dave not found/);
    await expect(client.action('SIPshowpeer', { Peer: 'nobody' })).rejects.toBeInstanceOf(PeerRequestError);
    await fs.writeFile(path.join(dir, 'sip_switchboard.conf'), sip.replace('context = sales', 'context = support'));
    await client.action('Reload', { Module: 'chan_sip.so' });
    expect((await client.action('SIPshowpeer', { Peer: 'carol' })).Context).toBe('sales'); // not yet
    await fake.sipSettled();
    expect((await client.action('SIPshowpeer', { Peer: 'carol' })).Context).toBe('support');
    const users = await client.listAction('VoicemailUsersList');
    expect(users.events).toHaveLength(1);
    expect(users.events[0]).toMatchObject({ Event: 'VoicemailUserEntry', VMContext: 'switchboard', VoiceMailbox: '1003', Fullname: 'Carol King', Email: 'carol@example.com', AttachMessage: 'Yes' });
    const peers = await client.listAction('SIPpeers');
    expect(peers.events.map((e) => e.ObjectName)).toEqual(['carol']);
  });
});
