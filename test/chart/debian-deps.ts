// What a shared object needs at run time, in Debian packages, as this machine's ldd and dpkg see it;
// and what a Dockerfile's runtime stage installs. The image is built on Debian trixie, this machine may be
// bookworm: the Ceph and C/C++ runtime packages (librbd1, librados2, libc6, libstdc++6, libgcc-s1) keep their
// names from one to the other, so the mapping carries over.
import { realpath } from 'node:fs/promises';
import { execText } from './helm.js';

/** Provided by every Node image (Node itself links them): not the runtime stage's business. */
export const BASE_IMAGE_PACKAGES: ReadonlySet<string> = new Set(['libc6', 'libstdc++6', 'libgcc-s1']);

export interface LinkedLibrary {
  soname: string;
  path: string;
  debianPackage: string;
}

const linkedCache = new Map<string, Promise<LinkedLibrary[]>>();

/** `ldd` resolution of every library the object loads, directly or not, each with the package that ships it. */
export function linkedLibraries(object: string): Promise<LinkedLibrary[]> {
  let cached = linkedCache.get(object);
  if (cached === undefined) {
    cached = resolveLinkedLibraries(object);
    linkedCache.set(object, cached);
  }
  return cached;
}

async function resolveLinkedLibraries(object: string): Promise<LinkedLibrary[]> {
  const ldd = await execText('ldd', [object]);
  if (ldd.status !== 0) throw new Error(`ldd ${object} failed (exit ${String(ldd.status)}): ${ldd.stderr.trim()}`);
  const unresolved = [...ldd.stdout.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]);
  if (unresolved.length > 0) throw new Error(`ldd ${object}: not found on this machine: ${unresolved.join(', ')}`);
  const resolved = [...ldd.stdout.matchAll(/^\s*(\S+) => (\/\S+) \(0x[0-9a-f]+\)$/gm)].map((m) => ({ soname: m[1] as string, path: m[2] as string }));
  return Promise.all(resolved.map(async (lib) => ({ ...lib, debianPackage: await owningPackage(lib.path) })));
}

/** The sonames the object itself names (DT_NEEDED), as opposed to what those pull in. */
export async function directlyNeeded(object: string): Promise<string[]> {
  const readelf = await execText('readelf', ['--dynamic', '--wide', object]);
  if (readelf.status !== 0) throw new Error(`readelf ${object} failed: ${readelf.stderr.trim()}`);
  return [...readelf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] as string);
}

/**
 * The package that ships a file. ldd reports /lib/... paths while dpkg may have recorded /usr/lib/...
 * (or the symlink's target), so every spelling of the path is tried.
 */
export async function owningPackage(file: string): Promise<string> {
  const real = await realpath(file);
  const spellings = new Set<string>();
  for (const candidate of [file, real]) {
    spellings.add(candidate);
    spellings.add(candidate.startsWith('/usr/') ? candidate.slice(4) : `/usr${candidate}`);
  }
  // dpkg-query exits 1 when any spelling is unknown, yet still prints the owners of the others.
  const dpkg = await execText('dpkg-query', ['--search', ...spellings]);
  for (const line of dpkg.stdout.split('\n')) {
    // "librados2:amd64: /usr/lib/x86_64-linux-gnu/librados.so.2"; "diversion by ..." lines are not owners.
    const owner = /^([^\s:,]+)(?::[a-z0-9-]+)?: \//.exec(line);
    if (owner !== null && !line.startsWith('diversion')) return owner[1] as string;
  }
  throw new Error(`no Debian package ships ${file} (tried ${[...spellings].join(', ')})`);
}

/**
 * The packages apt would install for `roots`: the roots and, recursively, their Depends and Pre-Depends,
 * read from this machine's dpkg database. Of alternatives ("a | b") the first one installed here counts.
 */
export async function dependencyClosure(roots: readonly string[]): Promise<Set<string>> {
  const closure = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const pkg = queue.shift() as string;
    if (closure.has(pkg)) continue;
    const fields = await installedFields(pkg);
    if (fields === undefined) throw new Error(`${pkg} is not installed on this machine: cannot follow its dependencies`);
    closure.add(pkg);
    for (const group of fields.split(',')) {
      const alternatives = group
        .split('|')
        .map((alt) => alt.trim().split(/[\s(]/)[0]?.replace(/:any$/, '') ?? '')
        .filter((name) => name !== '');
      for (const alternative of alternatives) {
        if ((await installedFields(alternative)) !== undefined) {
          queue.push(alternative);
          break;
        }
      }
    }
  }
  return closure;
}

const fieldsCache = new Map<string, Promise<string | undefined>>();

function installedFields(pkg: string): Promise<string | undefined> {
  let cached = fieldsCache.get(pkg);
  if (cached === undefined) {
    cached = execText('dpkg-query', ['--show', '--showformat', '${db:Status-Status}\t${Depends},${Pre-Depends}', pkg]).then(
      (query) => {
        if (query.status !== 0) return undefined;
        const [status, deps] = query.stdout.split('\t');
        return status === 'installed' ? deps ?? '' : undefined;
      },
    );
    fieldsCache.set(pkg, cached);
  }
  return cached;
}

export interface DockerStage {
  from: string;
  name: string | undefined;
  /** RUN, COPY, USER, ... with continuation lines joined. */
  instructions: { keyword: string; args: string }[];
}

/** Splits a Dockerfile into stages; comments dropped, backslash continuations joined. */
export function parseDockerfile(text: string): DockerStage[] {
  const logical: string[] = [];
  let pending = '';
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trimEnd();
    // Comments may also sit between the lines of a continued instruction.
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (whole !== '') logical.push(whole);
  }
  const stages: DockerStage[] = [];
  for (const instruction of logical) {
    const [keyword = '', ...rest] = instruction.split(/\s+/);
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (from === null) throw new Error(`unreadable FROM: ${instruction}`);
      stages.push({ from: from[1] as string, name: from[2], instructions: [] });
    } else if (keyword.toUpperCase() !== 'ARG' || stages.length > 0) {
      const stage = stages.at(-1);
      if (stage === undefined) throw new Error(`instruction before the first FROM: ${instruction}`);
      stage.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

/** Package names given to `apt-get install` in a stage's RUN instructions. */
export function aptInstalledPackages(stage: DockerStage): string[] {
  const packages: string[] = [];
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'RUN') continue;
    for (const command of args.split(/&&|;/)) {
      const words = command.trim().split(/\s+/);
      const install = words.findIndex((word, i) => word === 'install' && /^apt(-get)?$/.test(words[i - 1] ?? ''));
      if (install === -1) continue;
      packages.push(...words.slice(install + 1).filter((word) => !word.startsWith('-')));
    }
  }
  return packages;
}
