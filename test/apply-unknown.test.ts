/**
 * When a failed apply cannot know what Asterisk runs (a Reload's answer lost, then reloading the
 * restored files failing too), the manifest marks those files unknown: the next apply reloads and
 * verifies them even when the store is back to what the manifest held before.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ApplyRolledBackError } from '../src/apply/index.js';
import { PeerTimeoutError } from '../src/errors.js';
import { header } from './fakes/ami-server.js';
import { editAgent, load, readFiles, setupEnv, type Env } from './helpers/apply-env.js';

let env: Env | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** Actions the fake received from index `from` on, as `Action[:Module]` strings. */
function actionsSince(e: Env, from: number): string[] {
  return e.asterisk.ami.actions().slice(from).map((m) => {
    const module = header(m, 'Module');
    return module ? `${header(m, 'Action')}:${module}` : header(m, 'Action')!;
  });
}

const ALICE = '1001-alice.yaml';
const OLD_CODECS = 'codecs: [ulaw, alaw]';
const NEW_CODECS = 'codecs: [gsm]';
const AGENTS = 13;

describe('Asterisk state unknown after a failed apply', () => {
  it('a Reload whose answer is lost, then a failing restore reload: the next apply of the old content reloads and verifies', async () => {
    const e = (env = await setupEnv({ deps: { reloadTimeoutMs: 200 } }));
    await e.applier.apply(await load(e.storeDir));
    const files = await readFiles(e.outDir);
    await editAgent(e.storeDir, ALICE, OLD_CODECS, NEW_CODECS);
    e.asterisk.hangOn('Reload', 2); // the apply's Reload, then the restore's
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(PeerTimeoutError);
    expect(await readFiles(e.outDir)).toEqual(files);
    expect(e.log.text()).toContain('recorded as unknown, so the next apply reloads and verifies them');

    await editAgent(e.storeDir, ALICE, NEW_CODECS, OLD_CODECS);
    const n = e.asterisk.ami.actions().length;
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r).toMatchObject({ changedFiles: [], modules: ['res_pjsip.so'], reloadSent: true, verified: true });
    const sent = actionsSince(e, n);
    expect(sent.filter((a) => a.startsWith('Reload'))).toEqual(['Reload:res_pjsip.so']);
    // Every endpoint is checked: which ones the lost Reload changed is not known.
    expect(sent.filter((a) => a === 'PJSIPShowEndpoint')).toHaveLength(AGENTS);

    // Verified: known again, nothing to do.
    const m = e.asterisk.ami.actions().length;
    expect((await e.applier.apply(await load(e.storeDir))).modules).toEqual([]);
    expect(actionsSince(e, m)).toEqual([]);
  });

  it('when the next apply changes another agent too, every agent of the unknown file is verified, not only that one', async () => {
    const e = (env = await setupEnv({ deps: { reloadTimeoutMs: 200 } }));
    await e.applier.apply(await load(e.storeDir));
    await editAgent(e.storeDir, ALICE, OLD_CODECS, NEW_CODECS);
    e.asterisk.hangOn('Reload', 2);
    expect(await rejection(e.applier.apply(await load(e.storeDir)))).toBeInstanceOf(PeerTimeoutError);

    await editAgent(e.storeDir, ALICE, NEW_CODECS, OLD_CODECS);
    await editAgent(e.storeDir, '1002-bob.yaml', 'codecs: [g729, ulaw]', 'codecs: [ulaw]');
    const n = e.asterisk.ami.actions().length;
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r).toMatchObject({ modules: ['res_pjsip.so'], verified: true, agents: { added: [], changed: ['bob_jones'], removed: [] } });
    expect(actionsSince(e, n).filter((a) => a === 'PJSIPShowEndpoint')).toHaveLength(AGENTS);
  });

  it('Asterisk took the new file but the verification answer was lost and the restore reload failed: the next apply puts the old config back', async () => {
    const e = (env = await setupEnv({ deps: { reloadTimeoutMs: 200, verifyTimeoutMs: 200 } }));
    await e.applier.apply(await load(e.storeDir));
    await editAgent(e.storeDir, ALICE, OLD_CODECS, NEW_CODECS);
    // The Reload is answered (Asterisk loads gsm); the verification query and the restore's Reload are not.
    e.asterisk.ami.scriptOnce('PJSIPShowEndpoint', () => {
      e.asterisk.hangOn('Reload');
      return { hang: true };
    });
    expect(await rejection(e.applier.apply(await load(e.storeDir)))).toBeInstanceOf(PeerTimeoutError);
    expect(e.asterisk.endpoint('alice.smith')?.fields.Allow).toBe('(gsm)');

    await editAgent(e.storeDir, ALICE, NEW_CODECS, OLD_CODECS);
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r).toMatchObject({ modules: ['res_pjsip.so'], reloadSent: true, verified: true });
    expect(e.asterisk.endpoint('alice.smith')?.fields.Allow).toBe('(ulaw|alaw)');
  });

  it('a rolled-back apply whose restore reload fails says so, and the next apply of the old content reloads and verifies', async () => {
    const e = (env = await setupEnv({ deps: { reloadTimeoutMs: 200 } }));
    await e.applier.apply(await load(e.storeDir));
    e.asterisk.refuseOption('call_group');
    await editAgent(e.storeDir, ALICE, 'callGroup: "1,3-5"', 'callGroup: "2,7"');
    // Once verification starts (the apply's Reload was answered), the restore's Reload gets no answer.
    const earlier = new Set(e.asterisk.ami.actions());
    void e.asterisk.ami.waitForAction('PJSIPShowEndpoint', (m) => !earlier.has(m)).then(() => e.asterisk.hangOn('Reload'));
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(ApplyRolledBackError);
    expect(err.message).toContain('again failed: the next apply reloads and verifies them');

    e.asterisk.clearControls();
    await editAgent(e.storeDir, ALICE, 'callGroup: "2,7"', 'callGroup: "1,3-5"');
    const n = e.asterisk.ami.actions().length;
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r).toMatchObject({ changedFiles: [], modules: ['res_pjsip.so'], reloadSent: true, verified: true });
    expect(actionsSince(e, n).filter((a) => a === 'PJSIPShowEndpoint')).toHaveLength(AGENTS);
    expect(e.asterisk.endpoint('alice.smith')?.fields.CallGroup).toBe('1, 3, 4, 5');
  });
});
