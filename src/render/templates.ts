import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { SwitchboardError } from '../errors.js';
import { compileFast } from './fast-template.js';

/** Every template the renderer uses; an operator's `--templates DIR` may override any of them. */
export const TEMPLATE_NAMES = [
  'pjsip/file', 'pjsip/agent',
  'sip/file', 'sip/agent',
  'voicemail/file', 'voicemail/agent',
  'extensions/file', 'extensions/context', 'extensions/agent', 'extensions/spy', 'extensions/did',
] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** A template: the view's text. */
export type Template = (view: unknown) => string;
export type Templates = Record<TemplateName, Template> & { sources: Record<TemplateName, string> };

/** `templates/` at the package root (works from src/ under vitest and from dist/). */
export function defaultTemplatesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, 'templates', 'pjsip', 'agent.hbs'))) return path.join(dir, 'templates');
    dir = path.dirname(dir);
  }
  throw new SwitchboardError('TEMPLATES_MISSING', 'cannot find the default templates/ directory next to the switchboard package');
}

/**
 * Compiles the templates with a private Handlebars instance: no HTML escaping (Asterisk is not
 * HTML — safety comes from the model), strict (a misspelt field is an error, not an empty line),
 * and only the built-in block helpers (no logic in templates).
 */
export function loadTemplates(overrideDir?: string): Templates {
  const hb = Handlebars.create();
  const base = defaultTemplatesDir();
  const out = { sources: {} } as Templates;
  if (overrideDir && !existsSync(overrideDir)) {
    throw new SwitchboardError('TEMPLATES_MISSING', `templates directory ${overrideDir} does not exist: pass --templates DIR with a copy of switchboard's templates/ (any file you leave out uses the default)`);
  }
  for (const name of TEMPLATE_NAMES) {
    const override = overrideDir ? path.join(overrideDir, `${name}.hbs`) : undefined;
    const file = override && existsSync(override) ? override : path.join(base, `${name}.hbs`);
    const source = readFileSync(file, 'utf8');
    let compiled: HandlebarsTemplateDelegate;
    try {
      compiled = hb.compile(source, { noEscape: true, strict: true, knownHelpersOnly: true });
      // Compile now so that syntax errors surface at load, naming the file.
      compiled({});
    } catch (err) {
      const msg = (err as Error).message;
      if (!/not defined in|strict mode|is not defined/.test(msg) && !/lookup/.test(msg)) {
        throw new SwitchboardError('TEMPLATE_INVALID', `template ${file} does not compile: ${msg.split('\n')[0]}. Fix the Handlebars syntax (no custom helpers are available)`, { file });
      }
    }
    const handlebars = (view: unknown) => {
      try {
        return compiled(view);
      } catch (err) {
        throw new SwitchboardError('TEMPLATE_INVALID', `template ${file} failed: ${(err as Error).message.split('\n')[0]}. Use only the fields the default template uses`, { file });
      }
    };
    // The same template as plain JavaScript when it is simple enough (see fast-template.ts): same
    // output; where it gives up (or anything unexpected happens), Handlebars renders the view and
    // gives the output, or the error, it always gave.
    out[name] = compileFast(hb, source, handlebars) ?? handlebars;
    out.sources[name] = file;
  }
  return out;
}
