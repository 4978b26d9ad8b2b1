/**
 * The part of vitest's API the Xen suite uses, for the arm64 Dom0: Debian's
 * Node 18 there cannot run vitest 4 (it needs Node 20), and its start-up under
 * TCG would take minutes. test/xen/arm64/bundle.mjs compiles the test files
 * with `vitest` resolved to this module; test/xen/arm64/runner.mjs runs what
 * they register and writes vitest's JSON report. Tests are collected into a
 * registry on globalThis, so the runner (plain JS) and every bundle share it.
 */
import { isDeepStrictEqual, inspect } from 'node:util';

type Fn = () => unknown;
export interface TestNode { kind: 'test'; name: string; fn: Fn; timeout: number | undefined }
export interface SuiteNode {
  kind: 'suite';
  name: string;
  children: (TestNode | SuiteNode)[];
  beforeAll: Fn[];
  afterAll: Fn[];
  beforeEach: Fn[];
  afterEach: Fn[];
}
export interface Registry { root: SuiteNode; current: SuiteNode; provided: Record<string, unknown> }

const newSuite = (name: string): SuiteNode => ({ kind: 'suite', name, children: [], beforeAll: [], afterAll: [], beforeEach: [], afterEach: [] });
const g = globalThis as { __xzcTests?: Registry };
const root = newSuite('');
g.__xzcTests ??= { root, current: root, provided: {} };
const reg = (): Registry => g.__xzcTests!;

export function describe(name: string, fn: () => void): void {
  const parent = reg().current;
  const s = newSuite(name);
  parent.children.push(s);
  reg().current = s;
  try {
    fn();
  } finally {
    reg().current = parent;
  }
}

function format(name: string, args: unknown[]): string {
  let i = 0;
  return name.replace(/%[sdijo%]/g, (m) => {
    if (m === '%%') return '%';
    const v = args[i++];
    if (m === '%j') return JSON.stringify(v);
    if (m === '%o') return inspect(v);
    return typeof v === 'function' ? v.name || 'fn' : String(v);
  });
}

type ItFn = ((name: string, fn: Fn, timeout?: number) => void) & {
  each: (table: readonly unknown[]) => (name: string, fn: (...args: any[]) => unknown, timeout?: number) => void;
};
export const it: ItFn = Object.assign(
  (name: string, fn: Fn, timeout?: number) => {
    reg().current.children.push({ kind: 'test', name, fn, timeout });
  },
  {
    each: (table: readonly unknown[]) => (name: string, fn: (...args: any[]) => unknown, timeout?: number) => {
      for (const row of table) {
        const args = Array.isArray(row) ? row : [row];
        it(format(name, args), () => fn(...args), timeout);
      }
    },
  },
);
export const test = it;
export const beforeAll = (fn: Fn): void => void reg().current.beforeAll.push(fn);
export const afterAll = (fn: Fn): void => void reg().current.afterAll.push(fn);
export const beforeEach = (fn: Fn): void => void reg().current.beforeEach.push(fn);
export const afterEach = (fn: Fn): void => void reg().current.afterEach.push(fn);
export function inject(key: string): any {
  return reg().provided[key];
}

// ---- expect ----

abstract class Asymmetric {
  abstract matches(v: unknown): boolean;
  abstract toString(): string;
}
class Any extends Asymmetric {
  constructor(private readonly ctor: unknown) { super(); }
  matches(v: unknown): boolean {
    const c = this.ctor;
    if (c === Number) return typeof v === 'number' || v instanceof Number;
    if (c === String) return typeof v === 'string' || v instanceof String;
    if (c === Boolean) return typeof v === 'boolean';
    if (c === BigInt) return typeof v === 'bigint';
    if (c === Function) return typeof v === 'function';
    if (c === Object) return typeof v === 'object' && v !== null;
    return v instanceof (c as new () => unknown);
  }
  toString(): string { return `Any<${(this.ctor as { name?: string }).name}>`; }
}
class ObjectContaining extends Asymmetric {
  constructor(private readonly sub: Record<string, unknown>) { super(); }
  matches(v: unknown): boolean { return subset(v, this.sub); }
  toString(): string { return `ObjectContaining ${inspect(this.sub)}`; }
}
class StringMatching extends Asymmetric {
  constructor(private readonly re: RegExp | string) { super(); }
  matches(v: unknown): boolean { return typeof v === 'string' && (typeof this.re === 'string' ? v.includes(this.re) : this.re.test(v)); }
  toString(): string { return `StringMatching ${String(this.re)}`; }
}
class ArrayContaining extends Asymmetric {
  constructor(private readonly items: unknown[]) { super(); }
  matches(v: unknown): boolean { return Array.isArray(v) && this.items.every((i) => v.some((x) => equals(x, i))); }
  toString(): string { return `ArrayContaining ${inspect(this.items)}`; }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** vitest's toEqual: recursive, asymmetric matchers, undefined properties ignored. */
function equals(a: unknown, b: unknown): boolean {
  if (b instanceof Asymmetric) return b.matches(a);
  if (a instanceof Asymmetric) return a.matches(b);
  if (Object.is(a, b)) return true;
  if (!isObj(a) || !isObj(b)) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) return isDeepStrictEqual(a, b);
  if (a instanceof Date || b instanceof Date || a instanceof RegExp || b instanceof RegExp) return isDeepStrictEqual(a, b);
  if (a instanceof Map || a instanceof Set) return isDeepStrictEqual(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equals(x, b[i]));
  if (a instanceof Error && b instanceof Error && a.message !== b.message) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!equals(a[k], b[k])) return false;
  return true;
}

/** vitest's toMatchObject: every property of `sub` matches, recursively. */
function subset(v: unknown, sub: unknown): boolean {
  if (sub instanceof Asymmetric) return sub.matches(v);
  if (!isObj(sub) || ArrayBuffer.isView(sub) || sub instanceof Date || sub instanceof RegExp) return equals(v, sub);
  if (!isObj(v)) return false;
  if (Array.isArray(sub)) return Array.isArray(v) && v.length === sub.length && sub.every((s, i) => subset(v[i], s));
  return Object.keys(sub).every((k) => k in v && subset(v[k], sub[k]));
}

export class AssertionError extends Error {
  override name = 'AssertionError';
}

const show = (v: unknown): string => (v instanceof Asymmetric ? v.toString() : inspect(v, { depth: 4, breakLength: Infinity, maxArrayLength: 16, maxStringLength: 200 }));

function throwsMatch(err: unknown, expected: unknown): boolean {
  if (expected === undefined) return true;
  const msg = err instanceof Error ? err.message : String(err);
  if (typeof expected === 'string') return msg.includes(expected);
  if (expected instanceof RegExp) return expected.test(msg);
  if (typeof expected === 'function') return err instanceof (expected as new () => unknown);
  if (expected instanceof Asymmetric) return expected.matches(err);
  if (isObj(expected)) return subset(err, expected);
  return false;
}

type Matchers = Record<string, (...args: any[]) => any>;

function matchers(actual: unknown, negate: boolean): Matchers {
  const check = (pass: boolean, what: string, expected?: unknown, hasExpected = true): void => {
    if (pass === negate) {
      throw new AssertionError(`expected ${show(actual)} ${negate ? 'not ' : ''}${what}${hasExpected ? ` ${show(expected)}` : ''}`);
    }
  };
  const num = (): number | bigint => actual as number;
  return {
    toBe: (e: unknown) => check(Object.is(actual, e), 'to be', e),
    toEqual: (e: unknown) => check(equals(actual, e), 'to equal', e),
    toStrictEqual: (e: unknown) => check(isDeepStrictEqual(actual, e), 'to strictly equal', e),
    toMatchObject: (e: unknown) => check(subset(actual, e), 'to match object', e),
    toBeGreaterThan: (e: number) => check(num() > e, 'to be greater than', e),
    toBeGreaterThanOrEqual: (e: number) => check(num() >= e, 'to be greater than or equal to', e),
    toBeLessThan: (e: number) => check(num() < e, 'to be less than', e),
    toBeLessThanOrEqual: (e: number) => check(num() <= e, 'to be less than or equal to', e),
    toBeCloseTo: (e: number, digits = 2) => check(Math.abs((actual as number) - e) < 10 ** -digits / 2, 'to be close to', e),
    toMatch: (e: RegExp | string) => check(typeof actual === 'string' && (typeof e === 'string' ? actual.includes(e) : e.test(actual)), 'to match', e),
    toHaveLength: (e: number) => check(isObj(actual) || typeof actual === 'string' ? (actual as { length: number }).length === e : false, 'to have length', e),
    toHaveProperty: (k: string, ...v: unknown[]) => check(isObj(actual) && k in actual && (v.length === 0 || equals(actual[k], v[0])), `to have property ${k}`, v[0], v.length > 0),
    toBeUndefined: () => check(actual === undefined, 'to be undefined', undefined, false),
    toBeDefined: () => check(actual !== undefined, 'to be defined', undefined, false),
    toBeNull: () => check(actual === null, 'to be null', undefined, false),
    toBeTruthy: () => check(Boolean(actual), 'to be truthy', undefined, false),
    toBeFalsy: () => check(!actual, 'to be falsy', undefined, false),
    toBeInstanceOf: (c: new () => unknown) => check(actual instanceof c, 'to be an instance of', c),
    toContain: (e: unknown) => check(typeof actual === 'string' ? actual.includes(e as string) : Array.isArray(actual) || ArrayBuffer.isView(actual) ? (actual as unknown[]).includes(e) : false, 'to contain', e),
    toContainEqual: (e: unknown) => check(Array.isArray(actual) && actual.some((x) => equals(x, e)), 'to contain equal', e),
    toThrow: (e?: unknown) => {
      if (typeof actual !== 'function') throw new AssertionError('toThrow needs a function');
      let threw = false;
      let err: unknown;
      try {
        (actual as () => unknown)();
      } catch (x) {
        threw = true;
        err = x;
      }
      const pass = threw && throwsMatch(err, e);
      if (pass === negate) {
        throw new AssertionError(threw
          ? `expected the function ${negate ? 'not ' : ''}to throw${e === undefined ? '' : ` ${show(e)}`}, it threw ${show(err)}`
          : `expected the function to throw${e === undefined ? '' : ` ${show(e)}`}, it did not`);
      }
    },
  };
}

function settled(p: unknown, want: 'resolves' | 'rejects'): Matchers {
  const names = Object.keys(matchers(undefined, false));
  const out: Matchers = {};
  for (const name of names) {
    out[name] = async (...args: unknown[]) => {
      let value: unknown;
      let rejected = false;
      try {
        value = await p;
      } catch (x) {
        rejected = true;
        value = x;
      }
      if (want === 'rejects' && !rejected) throw new AssertionError(`expected the promise to reject, it resolved with ${show(value)}`);
      if (want === 'resolves' && rejected) throw new AssertionError(`expected the promise to resolve, it rejected with ${show(value)}`);
      if (name === 'toThrow') {
        return matchers(() => { throw value; }, false).toThrow!(...args);
      }
      return matchers(value, false)[name]!(...args);
    };
  }
  return out;
}

export interface Expect {
  (actual: unknown, message?: string): Matchers & { not: Matchers; resolves: Matchers; rejects: Matchers };
  any(ctor: unknown): any;
  objectContaining(sub: Record<string, unknown>): any;
  stringMatching(re: RegExp | string): any;
  stringContaining(s: string): any;
  arrayContaining(items: unknown[]): any;
}

export const expect: Expect = Object.assign(
  (actual: unknown) => Object.assign(matchers(actual, false), {
    not: matchers(actual, true),
    resolves: settled(actual, 'resolves'),
    rejects: settled(actual, 'rejects'),
  }),
  {
    any: (ctor: unknown) => new Any(ctor),
    objectContaining: (sub: Record<string, unknown>) => new ObjectContaining(sub),
    stringMatching: (re: RegExp | string) => new StringMatching(re),
    stringContaining: (s: string) => new StringMatching(s),
    arrayContaining: (items: unknown[]) => new ArrayContaining(items),
  },
);
