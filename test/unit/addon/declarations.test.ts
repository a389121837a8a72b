// The hand-written src/ceph/rbd-native.d.ts and the addon's C++ must describe the same functions: every export is
// declared, and the `// Implements:` comment (the C signature) above a declaration is the one above its wrapper.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// Compiled to dist/test/unit/addon/: the repository root is four levels up.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const declarations = readFileSync(path.join(root, 'src', 'ceph', 'rbd-native.d.ts'), 'utf8');
const sources = readdirSync(path.join(root, 'addon'))
  .filter((name) => name.endsWith('.cc'))
  .map((name) => ({ name, text: readFileSync(path.join(root, 'addon', name), 'utf8') }));

// The exports that wrap no librados/librbd call.
const CONTROLS = new Set(['setMaxInflight', 'poolStats']);

const IMPLEMENTS = /^\s*\/\/ Implements:/;
const CONTINUATION = /^\s*\/\/\s{2,}\S/;

/** The comment as one line: markers and line breaks folded into single spaces. */
function fold(lines: string[]): string {
  return lines.map((line) => line.replace(/^\s*\/\//, '').trim()).join(' ');
}

/** Every `// Implements:` block of a text, with the line after it. */
function implementsBlocks(text: string): { comment: string; next: string }[] {
  const lines = text.split('\n');
  const blocks: { comment: string; next: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!IMPLEMENTS.test(lines[i]!)) continue;
    const block = [lines[i]!];
    while (i + 1 < lines.length && CONTINUATION.test(lines[i + 1]!)) block.push(lines[++i]!);
    blocks.push({ comment: fold(block), next: lines[i + 1] ?? '' });
  }
  return blocks;
}

/** Method name -> its `// Implements:` comment (or undefined), for the RbdNative interface. */
function declared(): Map<string, string | undefined> {
  const body = declarations.slice(declarations.indexOf('export interface RbdNative {'));
  const methods = new Map<string, string | undefined>();
  let pending: string[] = [];
  let inDoc = false;
  for (const line of body.split('\n').slice(1)) {
    const trimmed = line.trim();
    if (inDoc || trimmed.startsWith('/**')) {
      // JSDoc between the comment and the method is fine.
      inDoc = !trimmed.endsWith('*/');
      continue;
    }
    if (IMPLEMENTS.test(line) || (pending.length > 0 && CONTINUATION.test(line))) {
      pending.push(line);
      continue;
    }
    const method = /^\s*(\w+)\(/.exec(line);
    if (method) methods.set(method[1]!, pending.length > 0 ? fold(pending) : undefined);
    pending = [];
  }
  return methods;
}

/** Names the addon exports (Export<...>(env, exports, "name") in module.cc, rados.cc, rbd_*.cc). */
function exported(): Set<string> {
  const names = new Set<string>();
  for (const { text } of sources) {
    for (const match of text.matchAll(/Export(?:Sync)?<\w+>\(env, exports, "(\w+)"\)/g)) names.add(match[1]!);
  }
  return names;
}

test('every export of the addon is declared in rbd-native.d.ts, and nothing else is', () => {
  const names = exported();
  assert.ok(names.size > 30, `found only ${names.size} exports; has the registration changed shape?`);
  assert.deepEqual([...declared().keys()].sort(), [...names].sort());
});

test('every declared Ceph call names its C signature, and the addon has the same comment above its wrapper', () => {
  const inAddon = new Set(sources.flatMap(({ text }) => implementsBlocks(text).map((b) => b.comment)));
  const missing: string[] = [];
  const different: string[] = [];
  for (const [name, comment] of declared()) {
    if (CONTROLS.has(name)) continue;
    if (comment === undefined) missing.push(name);
    else if (!inAddon.has(comment)) different.push(`${name}: ${comment}`);
  }
  assert.deepEqual(missing, [], 'declarations without an // Implements: comment');
  assert.deepEqual(different, [], 'comments that stand above no wrapper in addon/*.cc');
});

test('each // Implements: comment in the addon is declared once, and stands right above a class or a function', () => {
  const inDeclarations = [...declared().values()].filter((c): c is string => c !== undefined);
  for (const { name, text } of sources) {
    for (const { comment, next } of implementsBlocks(text)) {
      assert.equal(inDeclarations.filter((c) => c === comment).length, 1, `${name}: ${comment}`);
      assert.match(next, /^(\/\/ |class \w+|Napi::Value \w+\()/, `${name}: ${comment} is followed by: ${next}`);
    }
  }
});
