/**
 * Shared pieces of the end-to-end benchmarks (apply latency, DID calls): a clock every process on
 * the machine shares, a harness process started from a suite, a child process driven over IPC,
 * and the daemon's logger as production builds it (JSON at info level, synchronous writes), sent
 * to a file instead of stderr.
 */
import { fork, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createLogger } from '../../log.js';
export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
/**
 * Milliseconds on CLOCK_MONOTONIC (process.hrtime), which is one clock for every process on the
 * machine: a time taken in the daemon's process can be compared with one taken in the fake's.
 */
export function monoMs() {
    return Number(process.hrtime.bigint() / 1000n) / 1000;
}
export function rssMB() {
    return process.memoryUsage.rss() / 1048576;
}
export function maxRssMB() {
    return process.resourceUsage().maxRSS / 1024;
}
/** The daemon's logger (createLogger, info, JSON) writing to `file`, buffered as `switchboard serve` writes to stderr. */
export function fileLogger(file, level = 'info') {
    return createLogger({ level, pretty: false, destination: pino.destination({ dest: file, sync: false, mkdir: true }) });
}
/**
 * Runs `node dist/bench/e2e/<script> JSON` in a fresh process and returns the JSON object it
 * prints last on stdout. Progress lines on its stderr that start with `# ` are passed to `log`.
 */
export function runHarness(script, args, log) {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(E2E_DIR, script), JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        let partial = '';
        child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d) => {
            err += d;
            partial += d;
            let nl;
            while ((nl = partial.indexOf('\n')) !== -1) {
                const line = partial.slice(0, nl);
                partial = partial.slice(nl + 1);
                if (line.startsWith('# '))
                    log(`  ${line.slice(2)}`);
            }
        });
        child.on('error', reject);
        child.on('close', (code) => {
            const last = out.trim().split('\n').at(-1) ?? '';
            if (code !== 0 || !last.startsWith('{')) {
                const tail = err.trim().split('\n').filter((l) => !l.startsWith('# ')).slice(-8).join(' | ');
                reject(new Error(`bench harness ${script} exited with ${code}: ${tail || out.slice(-500)}`));
                return;
            }
            resolve(JSON.parse(last));
        });
    });
}
/** Progress line for runHarness's log (stderr, prefixed so it is told apart from errors). */
export function progress(msg) {
    process.stderr.write(`# ${msg}\n`);
}
/**
 * A child process (the daemon side of a benchmark) driven over IPC: `next(type)` resolves with the
 * next message of that type (messages are queued until asked for), `send` posts one.
 */
export class Child {
    queue = [];
    waiters = [];
    exited;
    /** Set once a `stopped` message arrived: the child exits on its own. */
    stoppedCleanly = false;
    stderr = '';
    proc;
    constructor(script, args, onMessage) {
        // SWITCHBOARD_BENCH_CHILD_ARGS: extra node flags for the child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`.
        const execArgv = (process.env['SWITCHBOARD_BENCH_CHILD_ARGS'] ?? '').split(' ').filter(Boolean);
        this.proc = fork(path.join(E2E_DIR, script), [JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv });
        this.proc.stderr?.setEncoding('utf8').on('data', (d) => {
            this.stderr = (this.stderr + d).slice(-4000);
        });
        this.proc.on('message', (raw) => {
            const m = raw;
            if (m.type === 'stopped')
                this.stoppedCleanly = true;
            onMessage?.(m);
            const i = this.waiters.findIndex((w) => w.types.includes(m.type));
            if (i >= 0) {
                const [w] = this.waiters.splice(i, 1);
                clearTimeout(w.timer);
                w.resolve(m);
            }
            else {
                this.queue.push(m);
            }
        });
        this.proc.on('exit', (code, signal) => {
            this.exited = new Error(`bench child ${script} exited (${code ?? signal}): ${this.stderr.trim().split('\n').slice(-6).join(' | ')}`);
            for (const w of this.waiters.splice(0)) {
                clearTimeout(w.timer);
                w.reject(this.exited);
            }
        });
    }
    send(msg) {
        this.proc.send(msg);
    }
    /** The next message of `type` (queued or future); rejects after `timeoutMs` or if the child exits. */
    next(type, timeoutMs = 30_000) {
        const types = typeof type === 'string' ? [type] : type;
        const i = this.queue.findIndex((m) => types.includes(m.type));
        if (i >= 0)
            return Promise.resolve(this.queue.splice(i, 1)[0]);
        if (this.exited)
            return Promise.reject(this.exited);
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                const k = this.waiters.findIndex((w) => w.timer === timer);
                if (k >= 0)
                    this.waiters.splice(k, 1);
                reject(new Error(`bench child: no "${types.join('" or "')}" message within ${timeoutMs} ms (queued: ${this.queue.map((m) => m.type).join(', ') || 'none'}; stderr: ${this.stderr.trim().split('\n').slice(-3).join(' | ')})`));
            }, timeoutMs);
            this.waiters.push({ types, resolve: resolve, reject, timer });
        });
    }
    /** Drops queued messages of `type` (e.g. events from before a phase started). */
    discard(type) {
        for (let i = this.queue.length - 1; i >= 0; i--)
            if (this.queue[i].type === type)
                this.queue.splice(i, 1);
    }
    /** Waits for the process to exit (killing it after `timeoutMs`). */
    async exit(timeoutMs = 15_000) {
        if (this.proc.exitCode !== null || this.proc.signalCode !== null)
            return;
        await new Promise((resolve) => {
            const timer = setTimeout(() => {
                this.proc.kill('SIGKILL');
            }, timeoutMs);
            this.proc.once('exit', () => {
                clearTimeout(timer);
                resolve();
            });
        });
    }
}
/** In a child: posts a message to the parent. */
export function toParent(msg) {
    process.send?.(msg);
}
export function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
/** Stops the daemon app at the parent's request, reports its memory, and exits the child. */
export function stopAndExit(app) {
    void app.stop().then(() => {
        toParent({ type: 'stopped', maxRssMB: maxRssMB(), rssMB: rssMB() });
        process.disconnect?.();
        process.exit(0);
    });
}
//# sourceMappingURL=common.js.map