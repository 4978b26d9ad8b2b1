#!/usr/bin/env node
// `npm test`: the unit project here, then the whole Xen suite in the
// QEMU-hosted Xen (or on this host with --host), then one closing line
// `N passed, N failed` summing both. Exit status 0 only if both are green.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const cache = process.env.XZC_CACHE ?? join(root, '.cache', 'xen');
const args = process.argv.slice(2);
const host = args.includes('--host');

function counts(file) {
  if (!existsSync(file)) return undefined;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  return { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + r.numTodoTests };
}

function run(cmd, cmdArgs) {
  const t0 = Date.now();
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
  return { status: r.status ?? 1, seconds: (Date.now() - t0) / 1000 };
}

mkdirSync(cache, { recursive: true });
const unitJson = join(cache, 'unit-results.json');
const xenJson = join(cache, 'xen-results.json');
rmSync(unitJson, { force: true });
rmSync(xenJson, { force: true });

console.log('== unit tests');
const unit = run(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--project', 'unit',
  '--reporter=default', '--reporter=json', `--outputFile.json=${unitJson}`]);
console.log(`\n== Xen suite (${host ? 'this Xen host' : 'QEMU-hosted Xen'})`);
const xen = run('bash', [join(root, 'test/xen/vm'), 'test', ...(host ? ['--host'] : [])]);

const total = { passed: 0, failed: 0, skipped: 0 };
for (const [name, res, file] of [['unit', unit, unitJson], ['xen', xen, xenJson]]) {
  const c = counts(file);
  if (c) {
    total.passed += c.passed;
    total.failed += c.failed;
    total.skipped += c.skipped;
  }
  // A run that failed without failing a test (crash, timeout, kernel-log gate,
  // a suite that could not load) still counts as a failure.
  if (res.status !== 0 && (!c || c.failed === 0)) total.failed += 1;
  console.log(`${name}: ${c ? `${c.passed} passed, ${c.failed} failed` : 'no results'} (status ${res.status}, ${res.seconds.toFixed(1)} s)`);
}
console.log(`${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`);
process.exit(total.failed === 0 ? 0 : 1);
