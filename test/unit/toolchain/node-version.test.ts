// Node 24 everywhere: the release scripts/node.sh pins, package.json's engines and @types/node, the Dockerfile's
// images and the README name one major, the tests run on it, and the scripts switch to it whatever node the
// machine has on PATH.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

// This file runs as dist/test/unit/toolchain/: the repository is four levels up.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const read = (relative: string): string => readFileSync(path.join(repoRoot, relative), 'utf8');
const majorOf = (version: string): number => Number(/^v?(\d+)\./.exec(version)?.[1] ?? NaN);

function shellAssignment(script: string, name: string): string {
  const match = new RegExp(`^${name}=(\\S+)$`, 'm').exec(script);
  assert.ok(match?.[1] !== undefined, `scripts/node.sh assigns ${name}`);
  return match[1];
}

const nodeSh = read('scripts/node.sh');
const pinnedMajor = Number(shellAssignment(nodeSh, 'rbd_node_major'));
const pinnedVersion = shellAssignment(nodeSh, 'rbd_node_version');

describe('one Node.js major everywhere', () => {
  test('the pinned release is Node 24 LTS, a full version of the pinned major', () => {
    assert.equal(pinnedMajor, 24);
    assert.match(pinnedVersion, /^\d+\.\d+\.\d+$/);
    assert.equal(majorOf(pinnedVersion), pinnedMajor);
    for (const arch of ['x64', 'arm64']) {
      assert.match(shellAssignment(nodeSh, `rbd_node_sha512_${arch}`), /^[0-9a-f]{128}$/, `a sha512 pinned for ${arch}`);
    }
  });

  test('the tests run on it', () => {
    assert.equal(majorOf(process.versions.node), pinnedMajor, `running on ${process.version}`);
  });

  test("package.json's engines admit that major and no other", () => {
    const engines = (JSON.parse(read('package.json')) as { engines?: { node?: string } }).engines?.node;
    assert.equal(engines, `>=${pinnedMajor} <${pinnedMajor + 1}`);
  });

  test('@types/node is that major in package.json, the lock file and node_modules', () => {
    const wanted = (JSON.parse(read('package.json')) as { devDependencies: Record<string, string> }).devDependencies['@types/node'];
    assert.match(wanted ?? '', new RegExp(`^\\^${pinnedMajor}\\.\\d+\\.\\d+$`));
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version?: string }> };
    const locked = lock.packages['node_modules/@types/node']?.version ?? '';
    assert.equal(majorOf(locked), pinnedMajor, `the lock file has @types/node ${locked}`);
    const installed = (JSON.parse(read('node_modules/@types/node/package.json')) as { version: string }).version;
    assert.equal(installed, locked, 'node_modules has what the lock file says');
  });

  test("every stage of the Dockerfile is a node:<major> image", () => {
    const froms = read('Dockerfile')
      .split('\n')
      .filter((line) => /^FROM\s/i.test(line))
      .map((line) => line.split(/\s+/)[1] ?? '');
    assert.ok(froms.length >= 2, `a build and a runtime stage; FROM lines: ${froms.join(', ')}`);
    for (const image of froms) assert.match(image, new RegExp(`^node:${pinnedMajor}(?:[.-]|$)`), image);
  });

  test('README.md names that major only, and the pinned release', () => {
    const readme = read('README.md');
    const majors = [...readme.matchAll(/\bNode(?:\.js)? (\d+)\b/g)].map((match) => Number(match[1]));
    assert.ok(majors.length > 0, 'README.md says which Node it runs on');
    assert.deepEqual([...new Set(majors)], [pinnedMajor]);
    assert.ok(readme.includes(pinnedVersion), `README.md names ${pinnedVersion}`);
  });

  test('the addon in build/ was built for the Node ABI the tests run on', () => {
    // ensure-deps.sh rebuilds an addon recorded under another ABI; a stale build/ from Node 20 would fail here.
    const recorded = read('build/node-abi').trim();
    assert.equal(recorded, `node-v${process.versions.modules}-${process.platform}-${process.arch}`);
  });
});

describe('scripts/node.sh picks the node every script runs', () => {
  const scratch = realpathSync(mkdtempSync(path.join(tmpdir(), 'node-sh-')));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  let serial = 0;

  /** A stand-in node that reports `version`, answers `-p process.execPath` with its own path, and has headers when asked. */
  function fakeNode(prefix: string, version: string, headers: boolean): string {
    mkdirSync(path.join(prefix, 'bin'), { recursive: true });
    const bin = path.join(prefix, 'bin', 'node');
    writeFileSync(bin, `#!/bin/sh\ncase "$1" in\n  --version) echo v${version} ;;\n  -p) echo "$0" ;;\n  *) exit 1 ;;\nesac\n`);
    chmodSync(bin, 0o755);
    if (headers) {
      mkdirSync(path.join(prefix, 'include', 'node'), { recursive: true });
      writeFileSync(path.join(prefix, 'include', 'node', 'node_api.h'), '');
    }
    return bin;
  }

  /** A machine: its own node first on PATH, a cache, and an npm that fails, so no test can reach the registry. */
  function machine(systemVersion: string, systemHeaders: boolean) {
    const root = path.join(scratch, `machine-${++serial}`);
    const system = path.join(root, 'system');
    fakeNode(system, systemVersion, systemHeaders);
    writeFileSync(path.join(system, 'bin', 'npm'), '#!/bin/sh\necho "npm $*: offline in this test" >&2\nexit 1\n');
    chmodSync(path.join(system, 'bin', 'npm'), 0o755);
    const cache = path.join(root, 'cache');
    const pinned = path.join(cache, 'node', pinnedVersion);
    return { system, cache, pinned };
  }

  /** Sources scripts/node.sh twice (as test.sh and then ensure-deps.sh do) and reports what a script would run. */
  function sourceTwice(m: { system: string; cache: string }) {
    const run = spawnSync(
      'bash',
      ['-c', 'source scripts/node.sh && source scripts/node.sh && printf "%s\\n" "$(command -v node)" "$NODE" "$npm_config_nodedir" "$PATH"'],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { PATH: `${path.join(m.system, 'bin')}:/usr/bin:/bin`, HOME: m.cache, RBD_PROVISIONER_CACHE: m.cache },
      },
    );
    const [onPath = '', node = '', nodedir = '', searchPath = ''] = run.stdout.split('\n');
    return { status: run.status, stderr: run.stderr, onPath, node, nodedir, searchPath: searchPath.split(':') };
  }

  test('an older node on PATH: the cached pinned Node goes first, once, with its headers for node-gyp', () => {
    const m = machine('20.20.2', true);
    const cached = fakeNode(m.pinned, pinnedVersion, true);
    const result = sourceTwice(m);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.onPath, cached);
    assert.equal(result.node, cached);
    assert.equal(result.nodedir, m.pinned);
    assert.equal(result.searchPath[0], path.join(m.pinned, 'bin'));
    assert.equal(result.searchPath.filter((entry) => entry === path.join(m.pinned, 'bin')).length, 1, 'added once');
  });

  test('a Node 24 with headers on PATH is kept and nothing is fetched', () => {
    const m = machine(`${pinnedMajor}.0.0`, true);
    const result = sourceTwice(m);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.node, path.join(m.system, 'bin', 'node'));
    assert.equal(result.nodedir, m.system, 'node-gyp builds against that node\'s own headers');
    assert.equal(result.searchPath[0], path.join(m.system, 'bin'));
    assert.equal(existsSync(path.join(m.cache, 'node')), false, 'no cache was made');
  });

  test('a Node 24 without headers is not enough: the pinned Node is used', () => {
    const m = machine(`${pinnedMajor}.0.0`, false);
    const cached = fakeNode(m.pinned, pinnedVersion, true);
    const result = sourceTwice(m);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.node, cached);
    assert.equal(result.nodedir, m.pinned);
  });

  test('a cached Node that reports another version is fetched again, and a failed fetch stops the script', () => {
    const m = machine('20.20.2', true);
    fakeNode(m.pinned, `${pinnedMajor}.0.0`, true);
    const result = sourceTwice(m);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, new RegExp(`npm pack node-linux-(?:x64|arm64)@${pinnedVersion.replaceAll('.', '\\.')} failed`));
    assert.match(result.stderr, new RegExp(`no Node.js ${pinnedMajor} to build and run with`));
    assert.equal(result.onPath, '', 'nothing ran after the failed source');
    assert.deepEqual(readdirSync(path.join(m.cache, 'node')).filter((name) => name.startsWith('.fetch')), [], 'no scratch left');
  });
});
