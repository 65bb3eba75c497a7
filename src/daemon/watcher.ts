import path from 'node:path';
import { watch } from 'chokidar';
import { AGENTS_DIR, isStoreFile } from '../store/yaml-store.js';

/** What the daemon needs to know about a file-system event. */
export type WatchEventKind = 'add' | 'change' | 'unlink' | 'addDir' | 'unlinkDir';

export interface StoreWatcher {
  close(): Promise<void>;
}

/**
 * Starts watching a store directory; resolves once the initial scan is done (events after that
 * are reported). `onEvent` gets absolute paths of store files (and of the store and agents
 * directories themselves for addDir/unlinkDir).
 */
export type WatchFactory = (
  dir: string,
  onEvent: (kind: WatchEventKind, absPath: string) => void,
  onError: (err: Error) => void,
) => Promise<StoreWatcher>;

/**
 * The real watcher: chokidar 4 on the store directory (it ignores globs, so the filter is an
 * `ignored` function built on isStoreFile). No `awaitWriteFinish` (it adds latency): the daemon
 * debounces instead. chokidar's `atomic` mode (on by default) turns an editor's
 * unlink-then-rename save into one 'change' and delays a real 'unlink' by ~100 ms.
 */
export const chokidarWatcher: WatchFactory = async (dir, onEvent, onError) => {
  const root = path.resolve(dir);
  const agents = path.join(root, AGENTS_DIR);
  const watcher = watch(root, {
    ignoreInitial: true,
    depth: 1,
    persistent: true,
    ignored: (p: string) => {
      const abs = path.resolve(p);
      return !(abs === root || abs === agents || isStoreFile(root, abs));
    },
  });
  watcher.on('all', (event, p) => {
    if (event === 'add' || event === 'change' || event === 'unlink' || event === 'addDir' || event === 'unlinkDir') onEvent(event, path.resolve(p));
  });
  watcher.on('error', (err) => onError(err instanceof Error ? err : new Error(String(err))));
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return { close: () => watcher.close() };
};
