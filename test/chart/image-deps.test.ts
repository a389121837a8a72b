// The container image, checked without Docker: the runtime stage installs exactly the Debian packages the
// built addon links (per ldd and dpkg on this machine: the package names are trixie's too), and the stages are
// shaped as documented.
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import {
  BASE_IMAGE_PACKAGES,
  aptInstalledPackages,
  dependencyClosure,
  directlyNeeded,
  linkedLibraries,
  parseDockerfile,
  type DockerStage,
} from './debian-deps.js';
import { chartDir, onlyOfKind, render, repoRoot } from './helm.js';
import { CONTROLLER_NODE_FLAGS } from '../../src/node-flags.js';

const addonPath = path.join(repoRoot, 'build', 'Release', 'rbd_native.node');
// ca-certificates may be wanted one day for TLS to something; nothing else without a linked library.
const ALLOWED_WITHOUT_LIBRARY = new Set(['ca-certificates']);
// A base pinned by the digest of its (multi-architecture) index: image:tag@sha256:<64 hex>.
const DIGEST_PINNED = /^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$/;

async function stages(): Promise<{ build: DockerStage; runtime: DockerStage }> {
  const parsed = parseDockerfile(await readFile(path.join(repoRoot, 'Dockerfile'), 'utf8'));
  assert.equal(parsed.length, 2, 'the Dockerfile has a build stage and a runtime stage');
  return { build: parsed[0] as DockerStage, runtime: parsed[1] as DockerStage };
}

function argsOf(stage: DockerStage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

describe('runtime stage packages against the built addon', () => {
  test('the addon is built (npm run build:addon)', async () => {
    await access(addonPath).catch(() => assert.fail(`${path.relative(repoRoot, addonPath)} is missing: build the addon first (npm run build:addon)`));
  });

  test('every library the addon loads comes from a package the runtime stage installs, or from the Node image', async () => {
    const { runtime } = await stages();
    const installed = aptInstalledPackages(runtime);
    const available = await dependencyClosure([...installed, ...BASE_IMAGE_PACKAGES]);
    const libraries = await linkedLibraries(addonPath);
    assert.ok(libraries.some((lib) => lib.debianPackage === 'librbd1'), `ldd shows no librbd: ${JSON.stringify(libraries)}`);
    const uncovered = libraries.filter((lib) => !available.has(lib.debianPackage));
    assert.deepEqual(
      uncovered.map((lib) => `${lib.soname} (${lib.debianPackage})`),
      [],
      `the runtime stage installs ${installed.join(' ')}, which does not bring these`,
    );
  });

  test('the runtime stage installs the packages of the addon\'s own libraries, and nothing more', async () => {
    const { runtime } = await stages();
    const libraries = await linkedLibraries(addonPath);
    const needed = new Set(await directlyNeeded(addonPath));
    const direct = new Set(
      libraries.filter((lib) => needed.has(lib.soname) && !BASE_IMAGE_PACKAGES.has(lib.debianPackage)).map((lib) => lib.debianPackage),
    );
    assert.deepEqual([...direct].sort(), ['librados2', 'librbd1'], 'the addon links librbd and librados, and only those beyond the C/C++ runtime');
    const installed = aptInstalledPackages(runtime);
    const extra = installed.filter((pkg) => !direct.has(pkg) && !ALLOWED_WITHOUT_LIBRARY.has(pkg));
    assert.deepEqual(extra, [], 'runtime packages that no linked library needs');
    assert.deepEqual([...direct].filter((pkg) => !installed.includes(pkg)), [], 'linked libraries the runtime stage leaves to chance');
  });
});

describe('Dockerfile shape', () => {
  test('the build stage compiles on Node 24 trixie with the Ceph headers and prunes dev dependencies', async () => {
    const { build } = await stages();
    assert.match(build.from, DIGEST_PINNED);
    assert.equal(build.from.split('@')[0], 'node:24-trixie');
    assert.ok(build.name !== undefined, 'the build stage is named, for COPY --from');
    const packages = aptInstalledPackages(build);
    for (const pkg of ['build-essential', 'python3', 'librbd-dev', 'librados-dev']) {
      assert.ok(packages.includes(pkg), `build stage installs ${pkg}; it installs ${packages.join(' ')}`);
    }
    const runs = argsOf(build, 'RUN').join('\n');
    assert.match(runs, /\bnpm ci\b/);
    assert.match(runs, /scripts\/build\.sh addon/);
    assert.match(runs, /\btsc -p \./);
    assert.match(runs, /npm prune --omit=dev/);
  });

  test('the runtime stage is Node 24 trixie slim, copies only the built output, and runs as uid 10001', async () => {
    const { build, runtime } = await stages();
    assert.match(runtime.from, DIGEST_PINNED);
    assert.equal(runtime.from.split('@')[0], 'node:24-trixie-slim');
    const copies = argsOf(runtime, 'COPY');
    for (const source of ['/package.json', '/node_modules', '/dist/src', '/build/Release/*.node']) {
      assert.ok(
        copies.some((copy) => copy.startsWith(`--from=${build.name ?? ''} `) && copy.includes(source)),
        `runtime stage copies ${source} from the build stage; COPY lines: ${copies.join(' | ')}`,
      );
    }
    assert.ok(!copies.some((copy) => !copy.startsWith('--from=')), 'nothing comes from the build context directly');
    const packages = aptInstalledPackages(runtime);
    assert.deepEqual(packages.filter((pkg) => /-dev$|^build-essential$|^python3$/.test(pkg)), [], 'no build tools at run time');
    assert.deepEqual(argsOf(runtime, 'USER'), ['10001:10001']);
    assert.deepEqual(argsOf(runtime, 'ENTRYPOINT'), [JSON.stringify(['node', ...CONTROLLER_NODE_FLAGS, 'dist/src/main.js']).replaceAll(',', ', ')]);
  });

  test('the sandbox runs the controller with the V8 flags of the image and the tests', async () => {
    const sandbox = await readFile(path.join(repoRoot, 'scripts', 'sandbox.sh'), 'utf8');
    const starts = sandbox.split('\n').filter((line) => line.includes('dist/src/main.js --kubeconfig'));
    assert.equal(starts.length, 1, 'one line starts the controller');
    assert.ok(starts[0]!.includes(`node ${CONTROLLER_NODE_FLAGS.join(' ')} dist/src/main.js`), starts[0]);
  });

  test('.dockerignore keeps host builds and local state out of the build context', async () => {
    const patterns = (await readFile(path.join(repoRoot, '.dockerignore'), 'utf8')).split('\n').map((line) => line.trim());
    // A host-built addon or node_modules in the context would shadow what the build stage compiles.
    for (const pattern of ['.git', 'node_modules', 'build', 'dist', '.state', '.sandbox']) {
      assert.ok(patterns.includes(pattern), `.dockerignore lists ${pattern}`);
    }
  });

  test('the chart\'s default image is this one, tagged with the chart\'s appVersion (the package version)', async () => {
    const chart = load(await readFile(path.join(chartDir, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    const packageJson = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    assert.equal(chart.appVersion, packageJson.version);
    const deployment = onlyOfKind<V1Deployment>(await render({}), 'Deployment');
    assert.equal(deployment.spec?.template.spec?.containers[0]?.image, `ghcr.io/rbd-provisioner/rbd-provisioner:${packageJson.version}`);
  });
});
