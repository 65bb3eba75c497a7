/**
 * Runs one measurement in a fresh Node process, so that its peak RSS (`maxRSS`) and its JIT and
 * heap state belong to that measurement alone.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
export const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');
/** Starts `node [nodeArgs] dist/bench/worker.js TASK JSON` and returns its one-line JSON report. */
export function runWorker(task, args, nodeArgs = []) {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [...nodeArgs, WORKER, task, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
        child.on('error', reject);
        child.on('close', (code) => {
            const last = out.trim().split('\n').at(-1) ?? '';
            if (code !== 0 || !last.startsWith('{')) {
                reject(new Error(`bench worker "${task}" exited with ${code}: ${err.trim().split('\n').slice(-5).join(' | ') || out.slice(-500)}`));
                return;
            }
            resolve(JSON.parse(last));
        });
    });
}
/** Runs `command args` as a whole process and returns its wall time (ms) and exit code. */
export function timeProcess(command, args, env = process.env) {
    return new Promise((resolve, reject) => {
        const t0 = performance.now();
        const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
        child.on('error', reject);
        child.on('close', (code) => resolve({ ms: performance.now() - t0, code, stderr }));
    });
}
//# sourceMappingURL=child.js.map