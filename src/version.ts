// The version this build reports (--version, rbd_provisioner_build_info): package.json's, read next to the built
// code. dist/src/version.js and package.json are two levels apart both in a checkout and in the image (/app).
import { readFileSync } from 'node:fs';

export interface BuildInfo {
  version: string;
  /** The Node.js running it, e.g. "v24.22.3". */
  nodeVersion: string;
}

let cached: BuildInfo | undefined;

export function buildInfo(): BuildInfo {
  if (cached === undefined) {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    if (typeof manifest.version !== 'string' || manifest.version === '') throw new Error('package.json has no version');
    cached = { version: manifest.version, nodeVersion: process.version };
  }
  return cached;
}
