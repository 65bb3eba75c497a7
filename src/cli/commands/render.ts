import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { loadTemplates } from '../../render/templates.js';
import { Renderer } from '../../render/render.js';
import { BACKENDS, type Backend } from '../../model/types.js';
import { writeFileAtomic } from '../../fsutil.js';
import { loadValidStore, readIfExists } from '../common.js';

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
    const { store, source } = await loadValidStore(args.store);
    const renderer = new Renderer(loadTemplates(args.templates));
    const files = renderer.render(store, args.backend);
    await fs.mkdir(args.out, { recursive: true });
    const summary: { file: string; bytes: number; changed: boolean }[] = [];
    for (const [name, content] of files) {
      const target = path.join(args.out, name);
      const changed = (await readIfExists(target)) !== content;
      if (changed) await writeFileAtomic(target, content, 0o640);
      summary.push({ file: name, bytes: Buffer.byteLength(content), changed });
    }
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
