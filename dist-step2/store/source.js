import { LineCounter, parseDocument, isScalar, isCollection } from 'yaml';
/**
 * Parses one YAML file into a SourceDoc that remembers where each key sits, so that every issue can
 * name a line. YAML syntax errors (and duplicate keys) become issues, not exceptions.
 */
export function parseYamlSource(file, text, issues) {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
    let data = undefined;
    const syntax = (message, offset) => {
        // With prettyErrors off the parser gives no linePos, only offsets: turn them into a line.
        const line = offset === undefined ? undefined : lineCounter.linePos(offset).line;
        issues.add({
            code: 'YAML_SYNTAX',
            file,
            ...(line ? { line } : {}),
            rule: `the file is not valid YAML: ${message.split('\n')[0]}`,
            fix: 'correct the YAML syntax (indentation, quotes, one key per line); the last good config stays in force meanwhile',
        });
    };
    if (doc.errors.length) {
        for (const e of doc.errors)
            syntax(e.message, e.pos?.[0]);
    }
    else {
        try {
            data = doc.toJS({ maxAliasCount: 50 });
        }
        catch (err) {
            // toJS throws (rather than reporting) on an alias to an unknown anchor or too many aliases.
            syntax(err.message, undefined);
        }
    }
    return {
        file,
        data,
        lineOf: (path) => lineOf(doc, lineCounter, path),
        sourceOf: (path) => {
            const node = doc.getIn(path, true);
            if (isScalar(node) && node.range)
                return text.slice(node.range[0], node.range[1]).trim();
            return undefined;
        },
    };
}
function lineOf(doc, lc, path) {
    if (path.length === 0)
        return undefined;
    const node = doc.getIn(path, true);
    if (node && (isScalar(node) || isCollection(node)) && node.range)
        return lc.linePos(node.range[0]).line;
    return undefined;
}
//# sourceMappingURL=source.js.map