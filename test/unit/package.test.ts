/** What `npm pack` ships: what users need to build and use the package, nothing else. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

interface PackEntry {
  path: string;
}

describe('npm pack contents', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files = (JSON.parse(out) as [{ files: PackEntry[] }])[0].files.map((f) => f.path);

  it('ships the addon sources, the compiled API and the module sources', () => {
    for (const f of ['package.json', 'README.md', 'binding.gyp', 'native/addon.cc', 'dist/index.js', 'dist/index.d.ts', 'lib/binding.ts']) {
      expect(files).toContain(f);
    }
  });

  it('leaves out tests, the harness, CI and caches', () => {
    const stray = files.filter((f) => /^(test|\.ci|\.cache|build|node_modules|demo-out|bench-results)\//.test(f) || /\.test\.[jt]s$/.test(f));
    expect(stray).toEqual([]);
  });
});
