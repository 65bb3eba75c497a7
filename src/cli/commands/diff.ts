import path from 'node:path';
import type { CommandModule } from 'yargs';
import { loadTemplates } from '../../render/templates.js';
import { Renderer } from '../../render/render.js';
import { makeSecretMasker, unifiedDiff } from '../../render/diff.js';
import { BACKENDS, type Backend } from '../../model/types.js';
import { loadValidStore, readIfExists } from '../common.js';
import { EXIT } from '../exit-codes.js';

interface Args { store: string; out: string; backend?: Backend; templates?: string }

export const diffCommand: CommandModule<object, Args> = {
  command: 'diff',
  describe: 'Show a unified diff of what render would change (secrets masked); exit 1 when there is a difference',
  builder: (y) =>
    y
      .option('store', { type: 'string', demandOption: true, describe: 'store directory' })
      .option('out', { type: 'string', demandOption: true, describe: 'directory holding the current generated files' })
      .option('backend', { choices: BACKENDS, describe: 'channel driver(s) (default: from switchboard.yaml)' })
      .option('templates', { type: 'string', describe: 'directory overriding templates' })
      .example('$0 diff --store fixtures/store --out /etc/asterisk', 'review before apply'),
  handler: async (args) => {
    // Templates first, as render does: a broken --templates fails before the store is read.
    const renderer = new Renderer(loadTemplates(args.templates));
    const { store } = await loadValidStore(args.store);
    const files = renderer.render(store, args.backend);
    const mask = makeSecretMasker();
    let different = false;
    for (const [name, content] of files) {
      const current = (await readIfExists(path.join(args.out, name))) ?? '';
      const d = unifiedDiff(mask(current), mask(content), `a/${name}`, `b/${name}`);
      if (current !== content) different = true;
      if (d) process.stdout.write(d);
      else if (current !== content) process.stdout.write(`--- a/${name}\n+++ b/${name}\n(only a secret changed)\n`);
    }
    process.exitCode = different ? EXIT.INVALID_OR_DIFFERENT : EXIT.OK;
  },
};
