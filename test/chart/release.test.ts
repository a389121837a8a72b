// The release path: the GitHub Actions workflow (actionlint with shellcheck, its shape, its version check run
// here), the Dockerfile (hadolint, digest-pinned trixie bases, OCI labels) and scripts/image.sh's choice of
// engine and its command (printed with --print: no engine runs here).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { load } from 'js-yaml';
import { parseDockerfile } from './debian-deps.js';
import { chartDir, repoRoot, runCommand } from './helm.js';
import { tool } from './tools.js';

const workflowFile = path.join(repoRoot, '.github', 'workflows', 'release.yaml');
const packageVersion = (JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

interface Step {
  id?: string;
  uses?: string;
  run?: string;
  with?: Record<string, string | boolean>;
  env?: Record<string, string>;
}
interface Workflow {
  on: { push: { tags: string[] } };
  jobs: Record<string, { needs?: string | string[]; permissions?: Record<string, string>; steps: Step[] }>;
}

async function workflow(): Promise<Workflow> {
  return load(await readFile(workflowFile, 'utf8')) as Workflow;
}

async function actionlint(files: string[]) {
  const [binary, shellcheck] = await Promise.all([tool('actionlint'), tool('shellcheck')]);
  return runCommand(binary, ['-no-color', '-shellcheck', shellcheck, ...files]);
}

describe('release workflow', () => {
  test('actionlint (with shellcheck on its run: scripts) finds nothing', async () => {
    const run = await actionlint([workflowFile]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.equal(run.stdout, '');
  });

  test('actionlint does flag a broken workflow (so the clean run above means something)', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'rbd-actionlint-'));
    try {
      const broken = path.join(scratch, 'broken.yaml');
      await writeFile(broken, 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "${{ github.nope }}" $UNQUOTED\n');
      const run = await actionlint([broken]);
      assert.equal(run.status, 1, run.stdout + run.stderr);
      assert.match(run.stdout, /property "nope" is not defined/);
      assert.match(run.stdout, /shellcheck reported issue/);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  test('on a v* tag: the image for linux/amd64 and linux/arm64 (QEMU, buildx) to ghcr.io, then the chart as an OCI artifact', async () => {
    const { on, jobs } = await workflow();
    assert.deepEqual(on.push.tags, ['v*']);
    const image = jobs['image'];
    const chart = jobs['chart'];
    assert.ok(image !== undefined && chart !== undefined, Object.keys(jobs).join());
    const uses = image.steps.map((step) => step.uses?.split('@')[0]);
    for (const action of ['docker/setup-qemu-action', 'docker/setup-buildx-action', 'docker/login-action', 'docker/build-push-action']) {
      assert.ok(uses.includes(action), `image job uses ${action}`);
    }
    const build = image.steps.find((step) => step.uses?.startsWith('docker/build-push-action@'));
    assert.equal(build?.with?.['platforms'], 'linux/amd64,linux/arm64');
    assert.equal(build?.with?.['push'], true);
    assert.equal(build?.with?.['tags'], '${{ needs.check.outputs.registry }}/rbd-provisioner:${{ needs.check.outputs.version }}');
    assert.deepEqual(image.permissions, { contents: 'read', packages: 'write' });
    // The chart is pushed only once its image is.
    assert.deepEqual(chart.needs, ['check', 'image']);
    const script = chart.steps.map((step) => step.run ?? '').join('\n');
    assert.match(script, /helm package charts\/rbd-provisioner --version "\$VERSION" --app-version "\$VERSION"/);
    assert.match(script, /helm push "dist-chart\/rbd-provisioner-\$VERSION\.tgz" "oci:\/\/\$REGISTRY\/charts"/);
    assert.match(script, /--password-stdin/, 'the token never appears on a command line');
  });

  describe('its check step, run here', () => {
    let scratch: string;
    before(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'rbd-release-check-'));
    });
    after(async () => {
      await rm(scratch, { recursive: true, force: true });
    });

    async function check(tag: string, owner: string) {
      const { jobs } = await workflow();
      const step = jobs['check']?.steps.find((s) => s.id === 'meta');
      assert.ok(step?.run !== undefined);
      const output = path.join(scratch, `output-${Math.random()}`);
      await writeFile(output, '');
      const run = await runCommand('bash', ['-e', '-c', step.run], { env: { TAG: tag, OWNER: owner, GITHUB_OUTPUT: output } });
      return { run, output: await readFile(output, 'utf8') };
    }

    test('the tag of package.json\'s version, by the owner the chart names: version and registry path (owner in lower case)', async () => {
      const { run, output } = await check(`v${packageVersion}`, 'RBD-Provisioner');
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.equal(output, `version=${packageVersion}\nregistry=ghcr.io/rbd-provisioner\n`);
    });

    test('another version, or another owner than the chart\'s default image names: refused, saying why', async () => {
      const wrongTag = await check('v9.9.9', 'rbd-provisioner');
      assert.equal(wrongTag.run.status, 1);
      assert.match(wrongTag.run.stdout, new RegExp(`::error::tag v9\\.9\\.9 but package\\.json says ${packageVersion.replaceAll('.', '\\.')}`));
      assert.match(wrongTag.run.stdout, /::error::tag v9\.9\.9 but Chart\.yaml's appVersion is /);
      const fork = await check(`v${packageVersion}`, 'someone-else');
      assert.equal(fork.run.status, 1);
      assert.match(fork.run.stdout, /::error::values\.yaml's image\.repository is ghcr\.io\/rbd-provisioner\/rbd-provisioner; this workflow pushes ghcr\.io\/someone-else\/rbd-provisioner/);
    });
  });

  test('the chart\'s default image is the one the workflow pushes for this owner', async () => {
    const values = load(await readFile(path.join(chartDir, 'values.yaml'), 'utf8')) as { image: { repository: string } };
    assert.match(values.image.repository, /^ghcr\.io\/[a-z0-9-]+\/rbd-provisioner$/);
  });
});

describe('Dockerfile', () => {
  test('hadolint finds nothing', async () => {
    const run = await runCommand(await tool('hadolint'), ['--no-color', path.join(repoRoot, 'Dockerfile')]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.equal(run.stdout, '');
  });

  test('hadolint does flag an unpinned base and a loose apt-get (so the clean run above means something)', async () => {
    const run = await runCommand(await tool('hadolint'), ['--no-color', '-'], { input: 'FROM node:latest\nRUN apt-get install curl\n' });
    assert.equal(run.status, 1);
    assert.match(run.stdout, /DL3007/);
    assert.match(run.stdout, /DL3015/);
  });

  test('carries the OCI labels, stamped from build arguments', async () => {
    const stages = parseDockerfile(await readFile(path.join(repoRoot, 'Dockerfile'), 'utf8'));
    const runtime = stages.at(-1);
    const labels = (runtime?.instructions ?? []).filter((i) => i.keyword === 'LABEL').map((i) => i.args).join(' ');
    const keys = [...labels.matchAll(/org\.opencontainers\.image\.([a-z.]+)=/g)].map((m) => m[1]);
    assert.deepEqual(keys.sort(), ['base.name', 'created', 'description', 'licenses', 'revision', 'source', 'title', 'version']);
    assert.match(labels, /org\.opencontainers\.image\.version="\$\{VERSION\}"/);
    const args = (runtime?.instructions ?? []).filter((i) => i.keyword === 'ARG').map((i) => i.args.split('=')[0]);
    assert.deepEqual(args, ['VERSION', 'REVISION', 'CREATED', 'SOURCE']);
  });
});

describe('scripts/image.sh', () => {
  let scratch: string;
  // The tools the script itself needs, linked into a PATH that holds no engine but the stand-ins a test adds.
  const NEEDED = ['bash', 'sed', 'date', 'dirname', 'git'];

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'rbd-image-sh-'));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** Runs image.sh --print with only the given engines on PATH; docker's `info` answers with dockerDaemon. */
  async function imageSh(engines: string[], args: string[] = [], env: Record<string, string> = {}, dockerDaemon = true) {
    const bin = await mkdtemp(path.join(scratch, 'bin-'));
    const which = await runCommand('bash', ['-c', 'for name; do command -v "$name" || exit 1; done', 'which', ...NEEDED]);
    assert.equal(which.status, 0, `${NEEDED.join(', ')} are on this machine`);
    const found = which.stdout.trim().split('\n');
    for (const [i, name] of NEEDED.entries()) await symlink(found[i] as string, path.join(bin, name));
    for (const engine of engines) {
      const info = engine === 'docker' && !dockerDaemon ? 'exit 1' : 'exit 0';
      await writeFile(path.join(bin, engine), `#!/bin/sh\n[ "$1" = info ] && ${info}\necho "${engine} ran" >&2\nexit 3\n`, { mode: 0o755 });
    }
    return runCommand(path.join(bin, 'bash'), [path.join(repoRoot, 'scripts', 'image.sh'), '--print', ...args], {
      env: { PATH: bin, CONTAINER_ENGINE: '', SOURCE_DATE_EPOCH: '0', ...env },
    });
  }

  const expectedCommand = (engine: string, extra: string[] = [], tag = `rbd-provisioner:${packageVersion}`) =>
    RegExp(
      `^${engine} build --file ${repoRoot}/Dockerfile --tag ${tag} --build-arg VERSION=${packageVersion} ` +
        `--build-arg REVISION=[0-9a-f]{40} --build-arg CREATED=1970-01-01T00:00:00Z ${extra.join(' ')}${extra.length ? ' ' : ''}${repoRoot} \n$`,
    );

  test('prefers docker when its daemon answers, then podman, then buildah', async () => {
    const docker = await imageSh(['docker', 'podman', 'buildah']);
    assert.equal(docker.status, 0, docker.stderr);
    assert.match(docker.stdout, expectedCommand('docker'));
    const podman = await imageSh(['podman', 'buildah']);
    assert.match(podman.stdout, expectedCommand('podman'));
    const buildah = await imageSh(['buildah']);
    assert.match(buildah.stdout, expectedCommand('buildah'));
  });

  test('a docker client without a daemon is passed over', async () => {
    const run = await imageSh(['docker', 'buildah'], [], {}, false);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, expectedCommand('buildah'));
  });

  test('no engine: fails saying what to install; docker without a daemon is named', async () => {
    const none = await imageSh([]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no usable container engine: none installed; install docker, podman or buildah/);
    const clientOnly = await imageSh(['docker'], [], {}, false);
    assert.equal(clientOnly.status, 1);
    assert.match(clientOnly.stderr, /no usable container engine: docker \(no daemon answers\)/);
  });

  test('CONTAINER_ENGINE chooses; --tag and --platform reach the command; unknown arguments are refused', async () => {
    const chosen = await imageSh(['docker', 'podman'], ['--tag', 'registry.example/rbd:dev', '--platform', 'linux/arm64'], { CONTAINER_ENGINE: 'podman' });
    assert.equal(chosen.status, 0, chosen.stderr);
    assert.match(chosen.stdout, expectedCommand('podman', ['--platform', 'linux/arm64'], 'registry.example/rbd:dev'));
    const missing = await imageSh(['docker'], [], { CONTAINER_ENGINE: 'podman' });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /CONTAINER_ENGINE=podman is not on PATH/);
    const unknown = await imageSh(['docker'], ['--push']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown argument --push/);
  });
});
