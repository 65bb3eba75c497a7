/**
 * The whole `switchboard render` command on a 10k store, as a user runs it: process start-up,
 * module loading, load + validate, render, write (into a fresh output directory each run).
 * Peak RSS and CPU come from rss-probe.js preloaded with --import (the command is unchanged).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { timeProcess } from '../child.js';
import { summarise } from '../stats.js';
import { ensureStore } from '../stores.js';
export const suite = {
    name: 'cli',
    description: 'whole process: node dist/cli/main.js render --store <10k> --out <fresh dir>',
    order: 30,
    async run(ctx) {
        const store = await ensureStore(ctx.root, 10_000, ctx.log);
        const runs = ctx.quick ? 3 : 5;
        const probe = path.join(ctx.root, 'dist', 'bench', 'rss-probe.js');
        const main = path.join(ctx.root, 'dist', 'cli', 'main.js');
        const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'switchboard-bench-cli-'));
        const probeFile = path.join(tmp, 'probe.jsonl');
        const wall = [];
        try {
            for (let i = 0; i <= runs; i++) {
                const out = path.join(tmp, `out-${i}`);
                const r = await timeProcess(process.execPath, ['--import', probe, main, 'render', '--store', store, '--out', out], { ...process.env, SWITCHBOARD_BENCH_PROBE: probeFile });
                if (r.code !== 0)
                    throw new Error(`switchboard render exited with ${r.code}: ${r.stderr.slice(-500)}`);
                await fs.rm(out, { recursive: true, force: true });
                if (i === 0)
                    continue; // warm-up: page cache, compile cache
                wall.push(r.ms);
                ctx.log(`  cli render ${i}/${runs}`);
            }
            const probes = (await fs.readFile(probeFile, 'utf8')).trim().split('\n').slice(1).map((l) => JSON.parse(l));
            const rss = Math.max(...probes.map((p) => p.rssMB));
            return [
                { suite: 'cli', name: '10k `switchboard render` wall', unit: 'ms', stats: summarise(wall), samples: wall, rssMB: rss },
                { suite: 'cli', name: '10k `switchboard render` cpu (user+sys)', unit: 'ms', stats: summarise(probes.map((p) => p.userMs + p.systemMs)), rssMB: rss },
            ];
        }
        finally {
            await fs.rm(tmp, { recursive: true, force: true });
        }
    },
};
//# sourceMappingURL=cli.js.map