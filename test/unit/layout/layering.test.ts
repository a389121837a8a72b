// The layering the code map promises, checked on the sources: a loop never reaches Ceph, the Kubernetes plumbing
// knows nothing of storage, and the Ceph layer knows nothing of Kubernetes.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const srcRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(path.join(srcRoot, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.relative(srcRoot, path.join(entry.parentPath, entry.name)));
}

/** What a file imports: src-relative folders/files for relative imports, package names otherwise. */
export function importsOf(file: string, text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) {
    const spec = match[1] ?? match[2] ?? '';
    found.push(spec.startsWith('.') ? path.normalize(path.join(path.dirname(file), spec)) : spec);
  }
  return found;
}

const rules: { layer: string; forbidden: RegExp; why: string }[] = [
  { layer: 'kube', forbidden: /^(ceph|rbd|controllers)\/|^(ceph|rbd|controllers)$/, why: 'the Kubernetes plumbing knows nothing of storage or of any loop' },
  { layer: 'controllers', forbidden: /^(ceph|rbd)\/|^(ceph|rbd)$/, why: 'a loop declares the storage interface it needs; main.ts injects the RBD one' },
  { layer: 'ceph', forbidden: /^(kube|controllers|rbd)\/|^@kubernetes\//, why: 'the Ceph layer is usable without Kubernetes' },
];

describe('layering', () => {
  for (const rule of rules) {
    test(`src/${rule.layer}/ never imports what it must not (${rule.why})`, () => {
      const files = sources(rule.layer);
      assert.ok(files.length > 0, `no sources under src/${rule.layer}`);
      const violations = files.flatMap((file) =>
        importsOf(file, readFileSync(path.join(srcRoot, file), 'utf8'))
          .filter((target) => rule.forbidden.test(target))
          .map((target) => `${file} imports ${target}`));
      assert.deepEqual(violations, []);
    });
  }

  test('the check sees a violation (it cannot pass vacuously)', () => {
    const imports = importsOf('controllers/provision/x.ts', "import { Pool } from '../../ceph/index.js';\nimport type { A } from '@kubernetes/client-node';");
    assert.ok(imports.some((target) => rules[1]!.forbidden.test(target)), JSON.stringify(imports));
    assert.ok(imports.some((target) => rules[2]!.forbidden.test(target)));
  });
});
