/**
 * A second, faster compilation of the simple templates: Handlebars parses the source (so
 * whitespace control, standalone lines and comments are exactly Handlebars'), and a template whose
 * syntax tree holds only text, `{{path}}`, `{{#if path}}` and `{{#each path}}` (with `{{else}}`)
 * becomes one plain JavaScript function that concatenates the output directly.
 *
 * It exists because Handlebars' own runtime costs about 10 µs per call of a small template
 * (every call copies and wraps the helpers and builds the prototype-access rules; every field goes
 * through strict, lookupProperty and lambda; every block through a wrapped helper), which is most
 * of a render of 10k agents. The function does the same lookups with the same rules (strict field
 * check, own properties only, `if`'s truthiness and `each`'s iteration of arrays) and, wherever the
 * data leaves the cases it handles (a missing field, a function, an inherited property, an `each`
 * over something that is not an array, a null context entering a block), it gives up: the caller
 * then renders the same view with the Handlebars template, which produces the output or the error
 * it always did. Templates using anything else (helpers with arguments, `@data`, `../`, partials,
 * literals, block parameters, ...) are not compiled here at all and always run on Handlebars.
 */
import type Handlebars from 'handlebars';

/** Thrown (never seen by callers of the template) when the fast path must hand over to Handlebars. */
export class GiveUp extends Error {}
const GIVE_UP = new GiveUp('fast template gives up');

/** The helpers of a fresh Handlebars instance: a mustache naming one is a helper call, not a field. */
const HELPER_NAMES = new Set(['blockHelperMissing', 'each', 'helperMissing', 'if', 'log', 'lookup', 'unless', 'with']);

const hasOwn = Object.prototype.hasOwnProperty;

/** Handlebars' container.lookupProperty for the values it returns unchanged; gives up otherwise. */
function lookup(parent: unknown, name: string): unknown {
  if (parent === null || parent === undefined) throw GIVE_UP; // Handlebars: TypeError
  const v = (parent as Record<string, unknown>)[name];
  if (v === null || v === undefined) return v;
  // Inherited properties go through Handlebars' prototype-access rules; functions are called.
  if (typeof v === 'function' || !hasOwn.call(parent, name)) throw GIVE_UP;
  return v;
}

/** Handlebars' strict-mode field output (container.strict, then lambda, then `!= null ? v : ""`),
 * as the string join() would make of it (every piece the function outputs is a string). */
function field(parent: unknown, name: string): string {
  // Handlebars: "x" not defined (a missing field), or the inherited/function cases of lookup.
  if (!parent || typeof parent !== 'object' || !hasOwn.call(parent, name)) throw GIVE_UP;
  const v = (parent as Record<string, unknown>)[name];
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  // Objects (and functions) are left to Handlebars, which converts them with `+` (valueOf first)
  // where join() would use toString: only primitives, which both convert the same way, pass.
  if (typeof v === 'object' || typeof v === 'function') throw GIVE_UP;
  return '' + (v as string); // a symbol throws here, as join() would: Handlebars then decides
}

/** field() for a piece that must be a string for `+` and join() to agree (see Emitter.program). */
function fieldText(parent: unknown, name: string): string {
  if (!parent || typeof parent !== 'object' || !hasOwn.call(parent, name)) throw GIVE_UP;
  const v = (parent as Record<string, unknown>)[name];
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  throw GIVE_UP;
}

/** `{{this}}`: the context itself (a function would be called by Handlebars' lambda). */
function self(ctx: unknown): string {
  if (typeof ctx === 'string') return ctx;
  if (ctx === null || ctx === undefined) return '';
  if (typeof ctx === 'object' || typeof ctx === 'function') throw GIVE_UP;
  return '' + (ctx as string);
}

/** self() for a piece that must be a string (see fieldText). */
function selfText(ctx: unknown): string {
  if (typeof ctx === 'string') return ctx;
  if (ctx === null || ctx === undefined) return '';
  throw GIVE_UP;
}

/** The value a block helper receives (functions are called by Handlebars: give up). */
function param(v: unknown, ctx: unknown): unknown {
  // A null context enters a block as Handlebars' nullContext, which this code does not model.
  if (typeof v === 'function' || ctx === null || ctx === undefined) throw GIVE_UP;
  return v;
}

/** `if`: Handlebars' `!conditional || isEmpty(conditional)` picks the inverse. */
function truthy(v: unknown): boolean {
  return !(!v || (Array.isArray(v) && v.length === 0));
}

/** `each`: arrays are iterated; anything else that is an object (maps, iterables, plain objects) gives up. */
function eachArray(v: unknown): readonly unknown[] | undefined {
  if (v && typeof v === 'object') {
    if (!Array.isArray(v)) throw GIVE_UP;
    return v.length === 0 ? undefined : v;
  }
  return undefined;
}

/*
 * The common case of field() and lookup(), written into each template's own code so that V8
 * optimises each property read for that template's views (one shape each), where the shared
 * helpers see every template's views: an own property of a plain object that is a string (field)
 * or an object (lookup) is used as it is; anything else goes to the helper, which decides exactly
 * as before. `obj` must be a variable name (it is read more than once); `t` is the function's
 * scratch variable (each expression uses it only until it returns).
 */
function inlineField(fn: string, obj: string, name: string): string {
  const key = JSON.stringify(name);
  return `(typeof ${obj} === "object" && ${obj} !== null && typeof (t = ${obj}[${key}]) === "string" && hasOwn.call(${obj}, ${key}) ? t : ${fn}(${obj}, ${key}))`;
}
function inlineLookup(obj: string, name: string): string {
  const key = JSON.stringify(name);
  return `(typeof ${obj} === "object" && ${obj} !== null && typeof (t = ${obj}[${key}]) === "object" && t !== null && hasOwn.call(${obj}, ${key}) ? t : lookup(${obj}, ${key}))`;
}

type Node = hbs.AST.Node;
type Path = hbs.AST.PathExpression;

class Unsupported extends Error {}

/** Appends `s += expr;`, or adds expr to the statement just before it (one statement for a run of pieces). */
function push(out: string[], expr: string): void {
  const last = out.length - 1;
  if (last >= 0 && out[last]!.startsWith('s += ')) out[last] = `${out[last]!.slice(0, -1)} + ${expr};`;
  else out.push(`s += ${expr};`);
}

/** One context's code: the first-level fields it reads are looked up once, at its start. */
interface Scope {
  ctx: string;
  hoisted: Map<string, string>;
  decls: string[];
}

class Emitter {
  private vars = 0;
  private scope!: Scope;
  /** Text not yet output: runs of text are output as one piece, and text just before an #if
   * goes into each branch (see statement). */
  private pending = '';

  private flush(out: string[]): void {
    if (this.pending) push(out, JSON.stringify(this.pending));
    this.pending = '';
  }

  /** The code of a program that runs with context variable `ctx` (the template, or an each body). */
  scoped(p: hbs.AST.Program | undefined, ctx: string): string[] {
    const outer = this.scope;
    this.scope = { ctx, hoisted: new Map(), decls: [] };
    const body: string[] = [];
    this.program(p, ctx, body, outer === undefined);
    this.flush(body);
    const code = [...this.scope.decls, ...body];
    this.scope = outer;
    return code;
  }

  /** lookup(ctx, name), once per scope: views are plain data, so reading a field twice gives the same value. */
  private first(ctx: string, name: string): string {
    if (ctx !== this.scope.ctx) throw new Error('fast template: context out of scope');
    let v = this.scope.hoisted.get(name);
    if (!v) {
      v = `f${this.vars++}`;
      this.scope.hoisted.set(name, v);
      this.scope.decls.push(`const ${v} = ${inlineLookup(ctx, name)};`);
    }
    return v;
  }

  private path(p: Node, ctx: string, asField: boolean, mustBeString = false): string {
    if (p.type !== 'PathExpression') throw new Unsupported(p.type);
    const path = p as Path;
    if (path.data || path.depth !== 0) throw new Unsupported('data or depth');
    const parts = path.parts as unknown[];
    if (!parts.every((x): x is string => typeof x === 'string')) throw new Unsupported('path part');
    if (parts.length && HELPER_NAMES.has(parts[0] as string)) throw new Unsupported('helper name');
    const names = parts as string[];
    const fieldFn = mustBeString ? 'fieldText' : 'field';
    if (names.length === 0) return asField ? `${mustBeString ? 'selfText' : 'self'}(${ctx})` : ctx;
    if (asField && names.length === 1) return inlineField(fieldFn, ctx, names[0]!);
    let expr = this.first(ctx, names[0]!);
    const last = names.length - 1;
    for (let i = 1; i < last; i++) expr = `lookup(${expr}, ${JSON.stringify(names[i])})`;
    if (last === 0) return expr;
    if (last === 1) return asField ? inlineField(fieldFn, expr, names[1]!) : inlineLookup(expr, names[1]!);
    return `${asField ? fieldFn : 'lookup'}(${expr}, ${JSON.stringify(names[last])})`;
  }

  /**
   * Handlebars returns a program's output as `piece1 + piece2 + ...` (JavaScript `+`, left to
   * right), not as a join: when the first two pieces are both non-strings (two fields holding
   * numbers or booleans, e.g. `{{a}}{{b}}` with 1 and 2), they are added as numbers ("3"), and a
   * block whose body is one such field passes the number itself on. Block values and text are
   * always strings here, so only a program opening with a field followed by another field (or
   * being that field alone, inside a block) is at risk: its first field must then be a string, or
   * the function gives up.
   */
  private program(p: hbs.AST.Program | undefined, ctx: string, out: string[], top = false): void {
    if (!p) return;
    if (p.blockParams && p.blockParams.length) throw new Unsupported('block params');
    const pieces = p.body.filter((s) => s.type !== 'CommentStatement' && !(s.type === 'ContentStatement' && !(s as hbs.AST.ContentStatement).value));
    const first = pieces[0];
    const second = pieces[1];
    const guard = first?.type === 'MustacheStatement' && (second ? second.type === 'MustacheStatement' : !top);
    for (const s of p.body) this.statement(s, ctx, out, guard && s === first);
  }

  private statement(s: hbs.AST.Statement, ctx: string, out: string[], mustBeString = false): void {
    switch (s.type) {
      case 'ContentStatement': {
        this.pending += (s as hbs.AST.ContentStatement).value;
        return;
      }
      case 'CommentStatement':
        return;
      case 'MustacheStatement': {
        const m = s as hbs.AST.MustacheStatement;
        if (m.params.length || m.hash) throw new Unsupported('mustache with arguments');
        this.flush(out);
        push(out, this.path(m.path, ctx, true, mustBeString));
        return;
      }
      case 'BlockStatement': {
        const b = s as hbs.AST.BlockStatement;
        const path = b.path as Node;
        if (path.type !== 'PathExpression') throw new Unsupported('block path');
        const name = (path as Path).original;
        const parts = (path as Path).parts;
        if ((name !== 'if' && name !== 'each') || parts.length !== 1 || parts[0] !== name) throw new Unsupported(`block ${name}`);
        if (b.params.length !== 1 || b.hash || (b.program?.blockParams?.length ?? 0) || (b.inverse?.blockParams?.length ?? 0)) throw new Unsupported('block arguments');
        const v = `v${this.vars++}`;
        out.push(`const ${v} = param(${this.path(b.params[0]!, ctx, false)}, ${ctx});`);
        if (name === 'if') {
          // The text before the block is output with each branch's first text (one piece, not two).
          const before = this.pending;
          this.pending = '';
          out.push(`if (truthy(${v})) {`);
          this.pending = before;
          this.program(b.program, ctx, out);
          this.flush(out);
          out.push('} else {');
          this.pending = before;
          this.program(b.inverse, ctx, out);
          this.flush(out);
          out.push('}');
        } else {
          this.flush(out);
          const arr = `a${this.vars++}`;
          const i = `i${this.vars++}`;
          const item = `c${this.vars++}`;
          out.push(`const ${arr} = eachArray(${v});`, `if (${arr}) {`, `for (let ${i} = 0, n${i} = ${arr}.length; ${i} < n${i}; ${i}++) {`, `if (!(${i} in ${arr})) continue;`, `const ${item} = ${arr}[${i}];`);
          out.push(...this.scoped(b.program, item));
          out.push('}', '} else {');
          this.program(b.inverse, ctx, out);
          this.flush(out);
          out.push('}');
        }
        return;
      }
      default:
        throw new Unsupported(s.type);
    }
  }
}

/** A compiled template: the view's text. */
export type FastTemplate = (view: unknown) => string;

/**
 * The fast function for `source` (a template's text, or its syntax tree from `hb.parse`), or
 * undefined when the template uses anything beyond text, fields, `if` and `each` (it then runs on
 * Handlebars only). Where the data needs Handlebars' own handling, the function returns
 * `fallback(view)` (or, without a fallback, throws GiveUp).
 */
export function compileFast(hb: typeof Handlebars, source: string | hbs.AST.Program, fallback?: (view: unknown) => string): FastTemplate | undefined {
  let ast: hbs.AST.Program;
  try {
    ast = typeof source === 'string' ? hb.parse(source) : source;
  } catch {
    return undefined;
  }
  let body: string[];
  try {
    body = new Emitter().scoped(ast, 'c');
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
  const code = body.join('\n');
  // The output is built with `+` (every piece is a string, so this is exactly join's text): V8
  // keeps it as a tree of concatenations that the caller's one join of many outputs copies out
  // directly, and the caller gets one piece, whose length it knows, instead of ~50 per call. With
  // a fallback, in the same function (one call per render): GiveUp, or anything unexpected, hands
  // the view to it.
  const call = `let t;\nlet s = "";\n${code}\nreturn s;`;
  const whole = `function fastTemplate(c) {\n${fallback ? `try {\n${call}\n} catch {\nreturn fallback(c);\n}` : call}\n}`;
  const src = `"use strict";\n${whole}\nreturn fastTemplate;`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  return new Function('lookup', 'field', 'fieldText', 'self', 'selfText', 'param', 'truthy', 'eachArray', 'fallback', 'hasOwn', src)(
    lookup, field, fieldText, self, selfText, param, truthy, eachArray, fallback, hasOwn,
  ) as FastTemplate;
}
