/**
 * Preloaded with `node --import dist/bench/rss-probe.js ...` to learn a whole command's peak RSS
 * and CPU time without changing the command: on exit it appends one JSON line to the file named by
 * SWITCHBOARD_BENCH_PROBE. It does nothing when that variable is unset.
 */
import { appendFileSync } from 'node:fs';
const file = process.env['SWITCHBOARD_BENCH_PROBE'];
if (file) {
    process.on('exit', (code) => {
        const u = process.resourceUsage();
        appendFileSync(file, JSON.stringify({ code, rssMB: u.maxRSS / 1024, userMs: u.userCPUTime / 1000, systemMs: u.systemCPUTime / 1000 }) + '\n');
    });
}
//# sourceMappingURL=rss-probe.js.map