// Host side of the arm64 suite (runs on the host's Node): compiles the Xen
// test files and the global setup for Debian's Node 18 in the arm64 Dom0.
// `vitest` resolves to vitest-shim.ts; whatever they import from lib/ is left
// to the compiled dist/ (so Dom0 runs the package's real output, unchanged);
// shared modules (the DomU fixture) become shared chunks, loaded once, as with
// vitest's isolate: false.
//   node test/xen/arm64/bundle.mjs OUTDIR test/xen/a.test.ts...
//   node test/xen/arm64/bundle.mjs --plain OUTDIR test/bench/arm64.ts
//       a program, not tests: no global setup, no manifest (bench.sh also
//       builds x86-64's test/bench/run.ts this way, to measure dist/)
import { build } from 'esbuild';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const argv = process.argv.slice(2);
const plain = argv[0] === '--plain';
const [outdir, ...files] = plain ? argv.slice(1) : argv;
if (!outdir || files.length === 0) throw new Error('usage: bundle.mjs [--plain] OUTDIR FILE...');

const entries = plain ? {} : { 'global-setup': resolve(repo, 'test/xen/global-setup.ts') };
for (const f of files) entries[relative(repo, resolve(f)).replace(/\.ts$/, '').replace(/[/.]/g, '_')] = resolve(f);

const redirect = {
  name: 'xzc-arm64',
  setup(b) {
    b.onResolve({ filter: /^vitest$/ }, () => ({ path: resolve(here, 'vitest-shim.ts') }));
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const p = resolve(args.resolveDir, args.path);
      const lib = resolve(repo, 'lib') + '/';
      if (!p.startsWith(lib)) return undefined;
      const out = resolve(repo, 'dist', p.slice(lib.length));
      if (!existsSync(out)) throw new Error(`${out} missing: run npm run build (tsc) first`);
      return { path: out, external: true };
    });
  },
};

rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: entries,
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node18',
  packages: 'external',
  sourcemap: 'inline',
  logLevel: 'warning',
  plugins: [redirect],
});
if (!plain) writeFileSync(resolve(outdir, 'manifest.json'), JSON.stringify(
  Object.entries(entries).filter(([k]) => k !== 'global-setup').map(([k, f]) => ({ name: relative(repo, f), module: `${k}.js` })), null, 1));
