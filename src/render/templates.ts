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

const OPTIONS = { noEscape: true, strict: true, knownHelpersOnly: true } as const;

/** Handlebars' first compiler pass (AST → opcodes), which its type declarations do not list. */
interface HandlebarsCompiler {
  Compiler: new () => { compile(ast: hbs.AST.Program, options: object): unknown };
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
    const invalid = (err: unknown) => new SwitchboardError('TEMPLATE_INVALID', `template ${file} does not compile: ${(err as Error).message.split('\n')[0]}. Fix the Handlebars syntax (no custom helpers are available)`, { file });
    let ast: hbs.AST.Program;
    try {
      ast = hb.parse(source);
    } catch (err) {
      throw invalid(err);
    }
    // Handlebars generates a template's JavaScript on its first call.
    const compiled = hb.compile(source, OPTIONS);
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
    const fast = compileFast(hb, ast, handlebars);
    try {
      // A fast template (text, fields, `if` and `each` of one path) gets Handlebars' compile-time
      // checks (known helpers) from its first pass alone; its JavaScript, which only a fallback
      // needs, is generated on the fallback's first call. Generating it for every template here
      // was two thirds of loading the templates (medians 44 -> 13 ms), and V8 was still optimising
      // Handlebars' code generator on its helper threads during the render that followed.
      if (fast) new (hb as unknown as HandlebarsCompiler).Compiler().compile(ast, { ...OPTIONS, data: true });
      // Anything else is compiled now (run on no data) so that its errors surface at load, naming the file.
      else compiled({});
    } catch (err) {
      const msg = (err as Error).message;
      if (!/not defined in|strict mode|is not defined/.test(msg) && !/lookup/.test(msg)) throw invalid(err);
    }
    out[name] = fast ?? handlebars;
    out.sources[name] = file;
  }
  return out;
}
