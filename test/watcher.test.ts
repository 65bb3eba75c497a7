import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chokidarWatcher, type StoreWatcher, type WatchEventKind } from '../src/daemon/watcher.js';
import { waitFor } from './helpers/wait.js';

interface Ev {
  kind: WatchEventKind;
  path: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function store(opts: { agentsDir?: boolean } = {}): { root: string; agents: string; file: (name: string) => string } {
  const root = mkdtempSync(path.join(tmpdir(), 'sb-watch-'));
  const agents = path.join(root, 'agents');
  writeFileSync(path.join(root, 'switchboard.yaml'), 'company:\n  name: Acme\n');
  if (opts.agentsDir !== false) {
    mkdirSync(agents);
    for (let i = 0; i < 5; i++) writeFileSync(path.join(agents, `100${i}-a${i}.yaml`), `id: 100${i}\n`);
  }
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  return { root, agents, file: (name) => path.join(agents, name) };
}

async function start(root: string): Promise<{ events: Ev[]; errors: Error[]; watcher: StoreWatcher; since: () => Ev[] }> {
  const events: Ev[] = [];
  const errors: Error[] = [];
  const watcher = await chokidarWatcher(root, (kind, p) => events.push({ kind, path: p }), (err) => errors.push(err));
  cleanups.push(() => watcher.close());
  let mark = 0;
  return {
    events, errors, watcher,
    since: () => {
      const out = events.slice(mark);
      mark = events.length;
      return out;
    },
  };
}

const seen = (events: Ev[], p: string, kinds?: WatchEventKind[]) => events.some((e) => e.path === p && (!kinds || kinds.includes(e.kind)));

describe('chokidarWatcher (chokidar on the store directory, fs.watch on the agents directory)', () => {
  it('reports an in-place write, a new file and a deleted file by name', async () => {
    const s = store();
    const w = await start(s.root);
    writeFileSync(s.file('1001-a1.yaml'), 'id: 1001\nlastName: X\n');
    await waitFor(() => seen(w.events, s.file('1001-a1.yaml'), ['change']));
    writeFileSync(s.file('1009-new.yaml'), 'id: 1009\n');
    await waitFor(() => seen(w.events, s.file('1009-new.yaml'), ['add', 'change']));
    unlinkSync(s.file('1002-a2.yaml'));
    await waitFor(() => seen(w.events, s.file('1002-a2.yaml'), ['unlink']));
    // Nothing about files that did not change.
    expect(seen(w.events, s.file('1003-a3.yaml'))).toBe(false);
    expect(w.errors).toEqual([]);
  });

  it('reports an atomic save (temp file renamed over the agent) and ignores temp and backup files', async () => {
    const s = store();
    const w = await start(s.root);
    const tmp = s.file('.1001-a1.yaml.swp');
    writeFileSync(tmp, 'id: 1001\nlastName: Saved\n');
    writeFileSync(s.file('1001-a1.yaml~'), 'backup');
    writeFileSync(s.file('notes.txt'), 'notes');
    renameSync(tmp, s.file('1001-a1.yaml'));
    await waitFor(() => seen(w.events, s.file('1001-a1.yaml')));
    // Let any stray event for the debris arrive before looking for it.
    writeFileSync(s.file('1004-a4.yaml'), 'id: 1004\nlastName: Marker\n');
    await waitFor(() => seen(w.events, s.file('1004-a4.yaml')));
    expect(w.events.filter((e) => !e.path.endsWith('1001-a1.yaml') && !e.path.endsWith('1004-a4.yaml'))).toEqual([]);
  });

  it('reports switchboard.yaml changes (chokidar on the store directory)', async () => {
    const s = store();
    const w = await start(s.root);
    writeFileSync(path.join(s.root, 'switchboard.yaml'), 'company:\n  name: Renamed\n');
    await waitFor(() => seen(w.events, path.join(s.root, 'switchboard.yaml'), ['change']));
  });

  it('follows the agents directory when it is removed and created again', async () => {
    const s = store();
    const w = await start(s.root);
    rmSync(s.agents, { recursive: true });
    await waitFor(() => seen(w.events, s.agents, ['unlinkDir']));
    mkdirSync(s.agents);
    await waitFor(() => seen(w.events, s.agents, ['addDir']));
    w.since();
    writeFileSync(s.file('1007-back.yaml'), 'id: 1007\n');
    await waitFor(() => seen(w.since(), s.file('1007-back.yaml')));
    writeFileSync(s.file('1007-back.yaml'), 'id: 1007\nlastName: Again\n');
    await waitFor(() => seen(w.since(), s.file('1007-back.yaml'), ['change']));
  });

  it('follows the agents directory when another one is renamed into its place', async () => {
    const s = store();
    const w = await start(s.root);
    const next = path.join(s.root, 'agents.next');
    mkdirSync(next);
    writeFileSync(path.join(next, '1001-a1.yaml'), 'id: 1001\nlastName: Next\n');
    renameSync(s.agents, path.join(s.root, 'agents.old'));
    renameSync(next, s.agents);
    await waitFor(() => seen(w.events, s.agents, ['addDir']));
    w.since();
    // An edit in the new directory is reported; one in the old (no longer the store's) is not.
    writeFileSync(path.join(s.root, 'agents.old', '1003-a3.yaml'), 'id: 1003\nlastName: Old\n');
    writeFileSync(s.file('1001-a1.yaml'), 'id: 1001\nlastName: NextEdited\n');
    await waitFor(() => seen(w.since(), s.file('1001-a1.yaml'), ['change']));
    expect(w.events.some((e) => e.path.endsWith('1003-a3.yaml'))).toBe(false);
  });

  it('starts without an agents directory and watches it once it is created', async () => {
    const s = store({ agentsDir: false });
    const w = await start(s.root);
    mkdirSync(s.agents);
    await waitFor(() => seen(w.events, s.agents, ['addDir']));
    writeFileSync(s.file('1001-late.yaml'), 'id: 1001\n');
    await waitFor(() => seen(w.events, s.file('1001-late.yaml')));
  });

  it('reports every file of a burst of writes', async () => {
    const s = store();
    for (let i = 0; i < 300; i++) writeFileSync(s.file(`2${String(i).padStart(3, '0')}-b.yaml`), `id: 2${i}\n`);
    const w = await start(s.root);
    for (let i = 0; i < 300; i++) writeFileSync(s.file(`2${String(i).padStart(3, '0')}-b.yaml`), `id: 2${i}\nlastName: Burst\n`);
    await waitFor(() => {
      for (let i = 0; i < 300; i++) if (!seen(w.events, s.file(`2${String(i).padStart(3, '0')}-b.yaml`))) return false;
      return true;
    }, 5000);
  });

  it('reports nothing once closed', async () => {
    const s = store();
    const w = await start(s.root);
    await w.watcher.close();
    writeFileSync(s.file('1001-a1.yaml'), 'id: 1001\nlastName: Closed\n');
    writeFileSync(path.join(s.root, 'switchboard.yaml'), 'company:\n  name: Closed\n');
    // A second watcher on the same store sees the writes: the first one had the chance to as well.
    const other = await start(s.root);
    writeFileSync(s.file('1002-a2.yaml'), 'id: 1002\nlastName: Other\n');
    await waitFor(() => seen(other.events, s.file('1002-a2.yaml')));
    expect(w.events).toEqual([]);
  });
});
