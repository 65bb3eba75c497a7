#!/usr/bin/env node
// Extracts the subset of Asterisk's ARI api-docs (Swagger 1.1/1.2, from Asterisk's rest-api/api-docs)
// that switchboard uses, so FakeAriServer serves exactly Asterisk's paths, nicknames, parameters and
// models without depending on ../shared at run time.
//
//   node test/fakes/ari-docs/extract.mjs [/path/to/reference/asterisk/ari]
//
// Resource files are copied whole except `apis`, which keeps only the operations listed below (an
// api path with no kept operation is dropped). `models` are kept whole (events reference Channel,
// Bridge, Playback, LiveRecording, Endpoint, DeviceState, ...: ari-client needs them all).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = resolve(process.argv[2] ?? join(here, '../../../../shared/reference/asterisk/ari'));

/** resource file → nicknames kept. */
export const SUBSET = {
  asterisk: ['getInfo', 'ping'],
  endpoints: ['list', 'listByTech', 'get'],
  channels: ['list', 'originate', 'get', 'originateWithId', 'hangup', 'continueInDialplan', 'answer', 'ring', 'ringStop',
    'play', 'playWithId', 'record', 'getChannelVar', 'setChannelVar'],
  bridges: ['list', 'create', 'createWithId', 'get', 'destroy', 'addChannel', 'removeChannel'],
  recordings: ['listStored', 'getStored', 'deleteStored', 'getStoredFile', 'getLive', 'cancel', 'stop'],
  playbacks: ['get', 'stop'],
  deviceStates: ['list', 'get'],
  events: ['eventWebsocket'],
};

const NOTE = 'Subset extracted by test/fakes/ari-docs/extract.mjs from Asterisk\'s rest-api/api-docs (reference/asterisk/ari); only the "apis" operations switchboard uses are kept. Do not edit by hand.';

const resources = JSON.parse(readFileSync(join(source, 'resources.json'), 'utf8'));
resources._note = NOTE;
resources.apis = resources.apis.filter((a) => Object.keys(SUBSET).includes(a.path.replace(/^\/api-docs\//, '').replace('.{format}', '')));
writeFileSync(join(here, 'resources.json'), JSON.stringify(resources, null, '\t') + '\n');

for (const [name, nicknames] of Object.entries(SUBSET)) {
  const doc = JSON.parse(readFileSync(join(source, `${name}.json`), 'utf8'));
  doc._note = NOTE;
  const seen = new Set();
  doc.apis = doc.apis
    .map((api) => ({ ...api, operations: api.operations.filter((op) => nicknames.includes(op.nickname)) }))
    .filter((api) => api.operations.length > 0);
  for (const api of doc.apis) for (const op of api.operations) seen.add(op.nickname);
  const missing = nicknames.filter((n) => !seen.has(n));
  if (missing.length) throw new Error(`${name}.json has no operation(s) ${missing.join(', ')}`);
  writeFileSync(join(here, `${name}.json`), JSON.stringify(doc, null, '\t') + '\n');
}
console.log(`wrote ${Object.keys(SUBSET).length + 1} files to ${here} from ${source}`);
