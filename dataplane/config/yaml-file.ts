/**
 * A config file: read, `--config.expand-env` substituted, and decoded
 * against a spec with Go's yaml.v3 rules (unknown keys rejected, YAML 1.1
 * booleans, merge keys), each error naming the line.
 */
import { readFileSync } from 'node:fs';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Scalar } from 'yaml';
import { parseDuration } from './duration';
import { ConfigError } from './errors';
import {
  checkLeafValue,
  defaultsOf,
  isLeaf,
  kindName,
  type GroupSpec,
  type LeafSpec,
  type LeafValue,
  type ListSpec,
  type RawObject,
} from './schema';

/** Reads, optionally env-expands and decodes a YAML config file. */
export function readYamlConfig(spec: GroupSpec, path: string, expandEnv: boolean, env: NodeJS.ProcessEnv): RawObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`cannot read config file ${path}: ${reason}`, { cause: err });
  }
  return parseYamlConfig(expandEnv ? expandEnvVars(text, env) : text, spec, path);
}

/**
 * Go's `os.Expand` with Piko's mapping, quirks included so files written
 * for Piko expand the same: `$NAME` takes letters, digits and `_`; `${...}`
 * takes anything up to `}`; `${NAME:default}` uses the default when NAME is
 * unset or empty; undefined names become empty. A shell special character
 * after `$` (`$$`, `$1`, `$@`) names a variable, which is normally unset, so
 * it disappears; `${}` and an unclosed `${` are dropped; a `$` followed by
 * anything else is kept.
 */
export function expandEnvVars(text: string, env: NodeJS.ProcessEnv): string {
  const lookup = (name: string): string => {
    const colon = name.indexOf(':');
    const key = colon < 0 ? name : name.slice(0, colon);
    const value = env[key] ?? '';
    return value === '' && colon >= 0 ? name.slice(colon + 1) : value;
  };
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0 || dollar === text.length - 1) break;
    out += text.slice(i, dollar);
    const [name, width] = shellName(text, dollar + 1);
    if (name === '' && width > 0) {
      // Bad syntax: Go eats the characters.
    } else if (name === '') {
      out += '$';
    } else {
      out += lookup(name);
    }
    i = dollar + 1 + width;
  }
  return out + text.slice(i);
}

const isShellSpecial = (c: string | undefined): boolean => c !== undefined && /^[*#$@!?\-0-9]$/.test(c);
const isAlphaNum = (c: string | undefined): boolean => c !== undefined && /^[A-Za-z0-9_]$/.test(c);

// Go's getShellName: the name after `$` and how many characters it used.
function shellName(s: string, start: number): [string, number] {
  if (s[start] === '{') {
    if (s.length - start > 2 && isShellSpecial(s[start + 1]) && s[start + 2] === '}') {
      return [s[start + 1]!, 3];
    }
    const close = s.indexOf('}', start + 1);
    if (close < 0) return ['', 1];
    if (close === start + 1) return ['', 2];
    return [s.slice(start + 1, close), close - start + 1];
  }
  if (isShellSpecial(s[start])) return [s[start]!, 1];
  let end = start;
  while (isAlphaNum(s[end])) end++;
  return [s.slice(start, end), end - start];
}

/**
 * Decodes YAML text against a spec into a partial tree (only the keys the
 * file sets). `file` only labels errors.
 */
export function parseYamlConfig(text: string, spec: GroupSpec, file?: string): RawObject {
  const lines = new LineCounter();
  // `merge` accepts `<<:` merge keys, which Go's yaml.v3 (Piko) supports.
  const doc = parseDocument(text, { lineCounter: lines, merge: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.pos === undefined ? undefined : lines.linePos(first.pos[0]).line;
    throw new ConfigError(`invalid YAML: ${first.message.split('\n')[0]}`, {
      cause: first,
      ...(file === undefined ? {} : { file }),
      ...(line === undefined ? {} : { line }),
    });
  }
  return new Decoder(doc, lines, file).top(spec);
}

type Entry = { key: string; value: Node | null; keyNode: Node };

// YAML 1.1 booleans, which Go's yaml.v3 still accepts for bool fields.
const YAML11_BOOLEANS: Readonly<Record<string, boolean>> = {
  y: true,
  Y: true,
  yes: true,
  Yes: true,
  YES: true,
  on: true,
  On: true,
  ON: true,
  n: false,
  N: false,
  no: false,
  No: false,
  NO: false,
  off: false,
  Off: false,
  OFF: false,
};

class Decoder {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string | undefined,
  ) {}

  top(spec: GroupSpec): RawObject {
    const root = this.resolve(this.doc.contents);
    if (root === null) return {};
    return this.group(root, spec, '', false);
  }

  private fail(message: string, path: string, node: Node | null): never {
    const offset = node?.range?.[0];
    throw new ConfigError(message, {
      path,
      ...(this.file === undefined ? {} : { file: this.file }),
      ...(offset === undefined ? {} : { line: this.lines.linePos(offset).line }),
    });
  }

  // Follows aliases; a missing value or an explicit null becomes null.
  private resolve(node: unknown): Node | null {
    let n = node;
    for (let hops = 0; isAlias(n); hops++) {
      if (hops > 100) return null;
      n = n.resolve(this.doc);
    }
    if (n === undefined || n === null) return null;
    if (isScalar(n) && n.value === null) return null;
    return n as Node;
  }

  // A mapping's entries with `<<` merges applied; explicit keys win, as in YAML 1.1.
  private entries(node: Node, path: string, what: string): Entry[] {
    if (!isMap(node)) this.fail(`${what} must be a mapping`, path, node);
    const explicit: Entry[] = [];
    const merged: Entry[] = [];
    for (const pair of node.items) {
      const keyNode = pair.key as Node;
      if (isScalar(keyNode) && typeof keyNode.value === 'symbol') {
        const source = this.resolve(pair.value);
        const sources = source !== null && isSeq(source) ? source.items.map((i) => this.resolve(i)) : [source];
        for (const s of sources) {
          if (s === null) continue;
          merged.push(...this.entries(s, path, `merge into ${what}`));
        }
        continue;
      }
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.fail(`${what} has a key that is not a string`, path, keyNode);
      }
      explicit.push({ key: String(keyNode.value), value: this.resolve(pair.value), keyNode });
    }
    // Earlier merge sources win over later ones, explicit keys over all.
    const out = [...explicit];
    const seen = new Set(explicit.map((e) => e.key));
    for (const e of merged) {
      if (seen.has(e.key)) continue;
      seen.add(e.key);
      out.push(e);
    }
    return out;
  }

  /**
   * `complete` (list items) starts from the defaults and requires the
   * `required` keys; otherwise only the keys present are returned, to be
   * laid over flags.
   */
  private group(node: Node, spec: GroupSpec, path: string, complete: boolean): RawObject {
    const out: RawObject = complete ? defaultsOf(spec) : {};
    const given = new Set<string>();
    for (const { key, value, keyNode } of this.entries(node, path, path === '' ? 'the config file' : path)) {
      const childPath = path === '' ? key : `${path}.${key}`;
      const child = spec.fields[key];
      if (child === undefined || !Object.hasOwn(spec.fields, key)) this.fail(`unknown key ${childPath}`, childPath, keyNode);
      if (value === null) {
        // yaml.v3 leaves a struct or scalar alone on null and empties a slice.
        if (child.kind === 'list' || child.kind === 'string-list') {
          out[key] = [];
          given.add(key);
        }
        continue;
      }
      given.add(key);
      if (child.kind === 'group') {
        out[key] = this.group(value, child, childPath, complete);
      } else if (child.kind === 'list') {
        out[key] = this.list(value, child, childPath);
      } else {
        out[key] = this.leaf(value, child, childPath);
      }
    }
    if (complete) {
      for (const [key, child] of Object.entries(spec.fields)) {
        if (isLeaf(child) && child.required === true && !given.has(key)) {
          const childPath = path === '' ? key : `${path}.${key}`;
          this.fail(`${childPath} is required`, childPath, node);
        }
      }
    }
    return out;
  }

  private list(node: Node, spec: ListSpec, path: string): RawObject[] {
    if (!isSeq(node)) this.fail(`${path} must be a list`, path, node);
    return node.items.map((item, i) => {
      const itemPath = `${path}[${i}]`;
      const resolved = this.resolve(item);
      if (resolved === null) this.fail(`${itemPath} must be a mapping`, itemPath, node);
      return this.group(resolved, spec.item, itemPath, true);
    });
  }

  private leaf(node: Node, leaf: LeafSpec, path: string): LeafValue {
    const value = this.leafValue(node, leaf, path);
    const problem = checkLeafValue(leaf, value, path);
    if (problem !== undefined) this.fail(problem, path, node);
    return value;
  }

  private leafValue(node: Node, leaf: LeafSpec, path: string): LeafValue {
    const mustBe = (): never => this.fail(`${path} must be ${kindName(leaf.kind)}`, path, node);
    if (leaf.kind === 'string-list') {
      if (!isSeq(node)) return mustBe();
      return node.items.map((item) => {
        const s = this.resolve(item);
        if (s === null || !isScalar(s)) return mustBe();
        return scalarText(s);
      });
    }
    if (!isScalar(node)) return mustBe();
    const v = node.value;
    switch (leaf.kind) {
      case 'string':
        // yaml.v3 decodes any scalar into a string field by its text, so
        // `addr: 3000` and `token: 0123` keep their digits as written.
        return scalarText(node);
      case 'boolean':
        if (typeof v === 'boolean') return v;
        if (typeof v === 'string' && Object.hasOwn(YAML11_BOOLEANS, v)) return YAML11_BOOLEANS[v]!;
        return mustBe();
      case 'integer':
        if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
        return mustBe();
      case 'duration': {
        if (typeof v !== 'string' && typeof v !== 'number') return mustBe();
        try {
          return parseDuration(scalarText(node));
        } catch (err) {
          return this.fail(`${path} must be a duration: ${(err as Error).message}`, path, node);
        }
      }
    }
  }
}

function scalarText(node: Scalar): string {
  if (typeof node.value === 'string') return node.value;
  return node.source ?? String(node.value);
}
