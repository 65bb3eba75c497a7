import { randomFillSync } from 'node:crypto';
/** Random numbers below 1000 from a pool refilled 512 at a time (a randomInt call per id showed in the DID hot path). */
function pooledRandom() {
    const pool = new Uint16Array(512);
    let next = pool.length;
    return () => {
        if (next === pool.length) {
            randomFillSync(pool);
            next = 0;
        }
        // 65536 % 1000 = 536: values below 65000 keep the digits uniform
        let v = pool[next++];
        while (v >= 65000) {
            if (next === pool.length) {
                randomFillSync(pool);
                next = 0;
            }
            v = pool[next++];
        }
        return v % 1000;
    };
}
/**
 * Makes numeric interaction ids (ipSCAPE-like, digits only) that sort in creation order:
 * 13 digits of Unix time in ms, a 3-digit counter for ids made in the same ms, 3 random digits.
 * 19 digits, so it also fits a signed 64-bit integer.
 *
 * Within one process ids strictly increase, even if the clock steps back (the generator keeps
 * using the last time it saw). Across restarts the time part differs (a restart takes longer than
 * a millisecond); two processes making an id in the same ms with the same counter still differ in
 * the random digits 999 times in 1000, and the call-records table refuses a duplicate.
 */
export class InteractionIdGenerator {
    clock;
    random;
    lastMs = -1;
    counter = 0;
    constructor(clock = Date.now, random = pooledRandom()) {
        this.clock = clock;
        this.random = random;
    }
    next() {
        let ms = Math.max(Math.floor(this.clock()), this.lastMs);
        if (ms === this.lastMs) {
            this.counter += 1;
            if (this.counter > 999) {
                ms += 1;
                this.counter = 0;
            }
        }
        else {
            this.counter = 0;
        }
        this.lastMs = ms;
        return `${pad(ms, 13)}${pad(this.counter, 3)}${pad(this.random() % 1000, 3)}`;
    }
}
function pad(n, width) {
    return String(n).padStart(width, '0');
}
// The one piece of module state: the counter behind `nextInteractionId()`, whose signature the
// workflow uses. Code that needs a controlled clock creates its own InteractionIdGenerator.
const defaultGenerator = new InteractionIdGenerator();
/** A new unique, sortable, digits-only interaction id (see InteractionIdGenerator). */
export function nextInteractionId() {
    return defaultGenerator.next();
}
//# sourceMappingURL=interaction-id.js.map