import type { CommandModule } from 'yargs';
import { loadTemplates } from '../../render/templates.js';
import { Renderer } from '../../render/render.js';
import { BACKENDS, type Backend } from '../../model/types.js';
import { renderToDir } from '../../render/to-dir.js';
import { loadValidStore } from '../common.js';

interface Args { store: string; out: string; backend?: Backend; templates?: string; json: boolean }

export const renderCommand: CommandModule<object, Args> = {
  command: 'render',
  describe: 'Render the Asterisk config files from the store and write them atomically',
  builder: (y) =>
    y
      .option('store', { type: 'string', demandOption: true, describe: 'store directory' })
      .option('out', { type: 'string', demandOption: true, describe: 'output directory (created if missing)' })
      .option('backend', { choices: BACKENDS, describe: 'channel driver(s) to render for (default: backend in switchboard.yaml, else pjsip)' })
      .option('templates', { type: 'string', describe: 'directory overriding any of templates/*/*.hbs' })
      .option('json', { type: 'boolean', default: false, describe: 'print the summary as JSON' })
      .example('$0 render --store fixtures/store --out ./out', 'render the sample store')
      .example('$0 render --store /srv/agents --out /etc/asterisk --backend both --templates ./my-templates', ''),
  handler: async (args) => {
    const started = process.hrtime.bigint();
    // Templates first, as apply and serve do: a broken --templates fails before the store is read.
    const renderer = new Renderer(loadTemplates(args.templates));
    const { store, source } = await loadValidStore(args.store);
    // Straight into the directory, a file at a time: a large store's output is never held whole.
    const summary = await renderToDir(renderer, store, args.backend, args.out);
    await source.saveAssignments(store);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (args.json) {
      process.stdout.write(JSON.stringify({ agents: store.agents.length, out: args.out, files: summary, ms: Math.round(ms) }, null, 2) + '\n');
      return;
    }
    process.stdout.write(`rendered ${store.agents.length} agents into ${args.out} in ${ms.toFixed(0)} ms\n`);
    for (const s of summary) process.stdout.write(`  ${s.file.padEnd(30)} ${String(s.bytes).padStart(9)} bytes  ${s.changed ? 'written' : 'unchanged'}\n`);
  },
};
