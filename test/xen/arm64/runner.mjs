// The light test runner of the arm64 Dom0 (Node 18, plain JS). Runs the test
// files bundle.mjs compiled (the same test/xen/*.test.ts the x86 suite runs
// under vitest), one after another in this process, with the suite's global
// setup (the shared DomU). Prints one line per test and `N passed, N failed`
// last; --out FILE writes vitest's JSON report (numPassedTests,
// numFailedTests, testResults[].assertionResults[]), as the x86 suite does.
//   node runner.mjs --dir BUNDLES [--out FILE] [-t NAME-REGEX] [FILE-FILTER...]
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';

const args = process.argv.slice(2);
let dir;
let out;
let nameRe;
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--dir') dir = args[++i];
  else if (args[i] === '--out') out = args[++i];
  else if (args[i] === '-t') nameRe = new RegExp(args[++i]);
  else filters.push(args[i]);
}
if (!dir) throw new Error('usage: runner.mjs --dir BUNDLES [--out FILE] [-t REGEX] [FILTER...]');
dir = resolve(dir);

const TEST_TIMEOUT = 120_000; // as vitest.config.ts's xen project
const HOOK_TIMEOUT = 180_000;
const newSuite = (name) => ({ kind: 'suite', name, children: [], beforeAll: [], afterAll: [], beforeEach: [], afterEach: [] });
const reg = { root: newSuite(''), current: undefined, provided: {} };
reg.current = reg.root;
globalThis.__xzcTests = reg;

const colour = !process.env.NO_COLOR && process.stdout.isTTY;
const paint = (c, s) => (colour ? `\x1b[${c}m${s}\x1b[0m` : s);
const now = () => performance.now();

function withTimeout(fn, ms, what) {
  let timer;
  return Promise.race([
    Promise.resolve().then(fn),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out in ${ms}ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const describeError = (e) => (e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : inspect(e));

// Runs a suite; pushes one assertion result per test into `results`.
async function runSuite(suite, ancestors, inherited, results) {
  const path = suite.name ? [...ancestors, suite.name] : ancestors;
  const hooks = { beforeEach: [...inherited.beforeEach, ...suite.beforeEach], afterEach: [...suite.afterEach, ...inherited.afterEach] };
  const tests = [];
  const collect = (s, p) => {
    for (const c of s.children) {
      if (c.kind === 'suite') collect(c, [...p, c.name]);
      else tests.push([...p, c.name].join(' > '));
    }
  };
  collect(suite, path);
  if (nameRe && !tests.some((t) => nameRe.test(t))) return;
  let setupError;
  for (const h of suite.beforeAll) {
    try {
      await withTimeout(h, HOOK_TIMEOUT, 'beforeAll hook');
    } catch (e) {
      setupError = e;
      break;
    }
  }
  for (const c of suite.children) {
    if (c.kind === 'suite') {
      if (setupError) failAll(c, path, setupError, results);
      else await runSuite(c, path, hooks, results);
      continue;
    }
    const full = [...path, c.name].join(' > ');
    if (nameRe && !nameRe.test(full)) {
      results.push({ ancestorTitles: path, fullName: full, status: 'skipped', title: c.name, duration: 0, failureMessages: [] });
      continue;
    }
    const t0 = now();
    let error = setupError;
    if (!error) {
      try {
        for (const h of hooks.beforeEach) await withTimeout(h, HOOK_TIMEOUT, 'beforeEach hook');
        await withTimeout(c.fn, c.timeout ?? TEST_TIMEOUT, 'test');
      } catch (e) {
        error = e;
      }
      for (const h of hooks.afterEach) {
        try {
          await withTimeout(h, HOOK_TIMEOUT, 'afterEach hook');
        } catch (e) {
          error ??= e;
        }
      }
    }
    const duration = Math.round(now() - t0);
    results.push({ ancestorTitles: path, fullName: full, status: error ? 'failed' : 'passed', title: c.name, duration, failureMessages: error ? [describeError(error)] : [] });
    console.log(`${error ? paint(31, '✗') : paint(32, '✓')} ${full} ${paint(2, `${duration}ms`)}`);
    if (error) console.log(describeError(error).replace(/^/gm, '    '));
  }
  for (const h of suite.afterAll) {
    try {
      await withTimeout(h, HOOK_TIMEOUT, 'afterAll hook');
    } catch (e) {
      console.log(`afterAll hook of '${path.join(' > ')}' failed: ${describeError(e)}`);
      results.push({ ancestorTitles: path, fullName: `${path.join(' > ')} (afterAll)`, status: 'failed', title: 'afterAll', duration: 0, failureMessages: [describeError(e)] });
    }
  }
}

function failAll(suite, ancestors, error, results) {
  const path = [...ancestors, suite.name];
  for (const c of suite.children) {
    if (c.kind === 'suite') failAll(c, path, error, results);
    else results.push({ ancestorTitles: path, fullName: [...path, c.name].join(' > '), status: 'failed', title: c.name, duration: 0, failureMessages: [describeError(error)] });
  }
}

const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.name.includes(x)));
const startTime = Date.now();
const report = { testResults: [] };

const { default: globalSetup } = await import(pathToFileURL(join(dir, 'global-setup.js')).href);
let teardown;
try {
  teardown = await globalSetup({ provide: (k, v) => { reg.provided[k] = v; } });
} catch (e) {
  console.log(`global setup failed: ${describeError(e)}`);
  process.exitCode = 1;
}

for (const f of teardown === undefined && process.exitCode ? [] : manifest) {
  const fileStart = Date.now();
  reg.root = newSuite('');
  reg.current = reg.root;
  const results = [];
  let message = '';
  console.log(paint(1, `\n${f.name}`));
  try {
    await import(pathToFileURL(join(dir, f.module)).href);
    await runSuite(reg.root, [], { beforeEach: [], afterEach: [] }, results);
  } catch (e) {
    message = describeError(e);
    console.log(`${paint(31, '✗')} ${f.name} failed to load: ${message}`);
  }
  const failed = message !== '' || results.some((r) => r.status === 'failed');
  report.testResults.push({ assertionResults: results, startTime: fileStart, endTime: Date.now(), status: failed ? 'failed' : 'passed', message, name: join(process.cwd(), f.name) });
}

try {
  await teardown?.();
} catch (e) {
  console.log(`global teardown failed: ${describeError(e)}`);
}

const all = report.testResults.flatMap((r) => r.assertionResults);
const count = (s) => all.filter((r) => r.status === s).length;
const suites = report.testResults;
Object.assign(report, {
  numTotalTestSuites: suites.length,
  numPassedTestSuites: suites.filter((s) => s.status === 'passed').length,
  numFailedTestSuites: suites.filter((s) => s.status === 'failed').length,
  numPendingTestSuites: 0,
  numTotalTests: all.length,
  numPassedTests: count('passed'),
  numFailedTests: count('failed'),
  numPendingTests: count('skipped'),
  numTodoTests: 0,
  startTime,
  success: count('failed') === 0 && suites.every((s) => s.status === 'passed') && !process.exitCode,
});
if (out) writeFileSync(out, JSON.stringify(report));
const secs = ((Date.now() - startTime) / 1000).toFixed(1);
console.log(`\n${suites.length} files in ${secs}s (arm64, Node ${process.versions.node}, light runner)`);
console.log(`${count('passed')} passed, ${count('failed')} failed${count('skipped') ? `, ${count('skipped')} skipped` : ''}`);
// as vitest ends its workers: handles the tests left open (the shared guest's
// xenstore connection) must not keep Dom0 from powering off
process.exit(report.success ? 0 : 1);
