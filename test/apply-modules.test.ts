/** Asterisk without chan_sip (22, or 20 with chan_sip not loaded) answers "No such module" to a
 * chan_sip reload: harmless for an emptied stub, a clear error for a file that needs the module. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SwitchboardError } from '../src/errors.js';
import { exitCodeForError, EXIT } from '../src/cli/exit-codes.js';
import { load, readFiles, setupEnv, type Env } from './helpers/apply-env.js';

const envs: Env[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.close();
});

const NO_CHAN_SIP = ['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so'];

describe('modules Asterisk has not loaded', () => {
  it('a stale sip_switchboard.conf (placeholder or earlier backend) does not fail a pjsip apply', async () => {
    const e = await setupEnv({ fake: { modules: NO_CHAN_SIP } });
    envs.push(e);
    await fs.writeFile(path.join(e.outDir, 'sip_switchboard.conf'), '; placeholder written before switchboard ran\n[general](+)\nnat = no\n');
    const r = await e.applier.apply(await load(e.storeDir), { backend: 'pjsip' });
    expect(r.verified).toBe(true);
    expect(r.modules).toContain('chan_sip.so');
    expect(e.asterisk.reloads).not.toContain('chan_sip.so');
    expect(e.log.text()).toContain('chan_sip.so is not loaded');
  });

  it('a backend that needs chan_sip on an Asterisk without it fails clearly and restores the files', async () => {
    const e = await setupEnv({ fake: { modules: NO_CHAN_SIP } });
    envs.push(e);
    await e.applier.apply(await load(e.storeDir), { backend: 'pjsip' });
    const before = await readFiles(e.outDir);
    const err = await e.applier.apply(await load(e.storeDir), { backend: 'both' }).then(() => undefined, (x: unknown) => x);
    expect(err).toBeInstanceOf(SwitchboardError);
    expect((err as SwitchboardError).code).toBe('MODULE_NOT_LOADED');
    expect((err as Error).message).toMatch(/no chan_sip\.so loaded.*sip_switchboard\.conf/);
    expect(exitCodeForError('MODULE_NOT_LOADED')).toBe(EXIT.ROLLED_BACK);
    expect(await readFiles(e.outDir)).toEqual(before);
  });
});
