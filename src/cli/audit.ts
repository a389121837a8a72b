// `rbd-provisioner audit`: the images that carry our ownership metadata against our PVs, both ways, in the pools of
// our StorageClasses. Report only by default; --delete-orphans removes what orphan collection would remove, by the
// same rules (orphanVerdict, then the same live re-reads, then the provisioner's own deleteOwnedVolume): an image
// that may have had a PV is never deleted. Exit code 1 when something is wrong, so scripts and cron jobs can alert.
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { parseArgs } from 'node:util';
import { ConnectionPool, ImageNotFound } from '../ceph/index.js';
import { DEFAULT_PROVISIONER_NAME } from '../config.js';
import { ANN_PROVISIONED_BY } from '../controllers/provision/decisions.js';
import { orphanVerdict, type OrphanVerdict } from '../controllers/provision/orphans.js';
import type { OwnedVolume } from '../controllers/provision/provisioner.js';
import { createKubeFacade, type KubeFacade, loadKubeConfig } from '../kube/client.js';
import { OWNER_KEYS, ownedVolumeImage, RbdProvisioner, type ImageLocation } from '../rbd/provisioner.js';
import { cachingSecretReader, kubeSecretReader } from '../rbd/secrets.js';
import { readDeleteTarget } from '../rbd/volume.js';
import { cephAccess, COMMAND_CEPH_TIMEOUTS, COMMAND_SECRET_TTL_MS, type CephAccess } from './ceph-access.js';
import type { CommandOutput } from './cluster-id.js';
import { optionsOrExit, UsageError } from './migrate.js';

export const AUDIT_USAGE = `Usage: rbd-provisioner audit [--delete-orphans] [--output=text|json] [--provisioner-name=<name>]

Compares the images that carry this provisioner's ownership metadata, in the pools of its StorageClasses, with its
PVs, both ways: images without a PV, PVs without an image (or whose image is not ours), leftovers in the trash. Only
reports, unless --delete-orphans: then it removes images that provably never had a PV and whose claim is gone, and
finishes interrupted deletes, by exactly the rules of the controller's orphan collection (an image that may have had
a PV is never deleted: it is reported for you to decide). Exit code: 0 all well, 1 something is wrong, 2 bad usage.

  --delete-orphans     remove what orphan collection would remove (default: report only)
  --output             text (default) or json
  --provisioner-name   this provisioner's name (default ${DEFAULT_PROVISIONER_NAME})
  --kubeconfig         kubeconfig file (default $KUBECONFIG, else in-cluster, else ~/.kube/config)
`;

export const OUTPUTS = ['text', 'json'] as const;

export interface AuditOptions {
  deleteOrphans: boolean;
  output: (typeof OUTPUTS)[number];
  provisionerName: string;
  kubeconfig: string | undefined;
}

export function parseAuditArgs(args: readonly string[], env: Readonly<Record<string, string | undefined>>): AuditOptions | 'help' {
  let values: { 'delete-orphans'?: boolean; output?: string; 'provisioner-name'?: string; kubeconfig?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        'delete-orphans': { type: 'boolean' },
        output: { type: 'string', short: 'o' },
        'provisioner-name': { type: 'string' },
        kubeconfig: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help === true) return 'help';
  const output = (values.output ?? 'text').trim();
  if (!(OUTPUTS as readonly string[]).includes(output)) throw new UsageError(`--output: ${JSON.stringify(output)} is not an output format; allowed: ${OUTPUTS.join(', ')}`);
  const provisionerName = (values['provisioner-name'] ?? DEFAULT_PROVISIONER_NAME).trim();
  if (!/^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/.test(provisionerName)) {
    throw new UsageError(`--provisioner-name: ${JSON.stringify(provisionerName)} is not a provisioner name; allowed: a name like "${DEFAULT_PROVISIONER_NAME}" (letters, digits, ".", "-", "_", "/")`);
  }
  return {
    deleteOrphans: values['delete-orphans'] === true,
    output: output as AuditOptions['output'],
    provisionerName,
    kubeconfig: values.kubeconfig?.trim() || env['KUBECONFIG']?.split(':').find((part) => part.trim() !== ''),
  };
}

/** One image that carries our ownership metadata. */
export interface ImageFinding {
  location: string;
  image: string;
  state: OwnedVolume['state'];
  pv: string;
  claim: string;
  verdict: OrphanVerdict;
  /** With --delete-orphans: what was done. */
  action?: 'deleted' | 'kept' | 'failed';
  problem?: string;
}

/** One of our PVs. */
export interface VolumeFinding {
  pv: string;
  image: string;
  verdict: 'ok' | 'image-missing' | 'image-not-ours' | 'unreadable';
  problem?: string;
}

export interface AuditReport {
  provisioner: string;
  locations: { id: string; scanned: boolean; error?: string }[];
  images: ImageFinding[];
  volumes: VolumeFinding[];
  /** How many findings are wrong (what the exit code says). */
  problems: number;
}

/** Whether an image finding is wrong: anything but an image with its PV, or one whose provisioning is under way. */
export function imageIsWrong(finding: ImageFinding): boolean {
  if (finding.action === 'deleted') return false;
  if (finding.verdict === 'has-pv') return finding.state === 'unrecorded';
  return finding.verdict !== 'claim-exists';
}

export interface AuditDeps {
  kube: Pick<KubeFacade, 'list' | 'readClaim' | 'readVolume'>;
  provisioner: Pick<RbdProvisioner, 'volumeLocations' | 'listOwnedVolumes' | 'deleteOwnedVolume'>;
  ceph: CephAccess;
}

export async function runAudit(options: AuditOptions, deps: AuditDeps): Promise<AuditReport> {
  const { kube, provisioner, ceph } = deps;
  const signal = new AbortController().signal;
  const [classes, volumes, claims] = await Promise.all([kube.list('storageClasses'), kube.list('volumes'), kube.list('claims')]);
  const ours = classes.items.filter((c) => c.provisioner === options.provisionerName);
  const ourVolumes = volumes.items.filter((pv) => pv.metadata?.annotations?.[ANN_PROVISIONED_BY] === options.provisionerName);
  const pvNames = new Set(volumes.items.map((pv) => pv.metadata?.name ?? ''));
  const claimUids = new Set(claims.items.map((c) => c.metadata?.uid ?? ''));
  const report: AuditReport = { provisioner: options.provisionerName, locations: [], images: [], volumes: [], problems: 0 };

  const seen = new Set<string>();
  for (const location of provisioner.volumeLocations(ours) as ImageLocation[]) {
    let owned: OwnedVolume[];
    try {
      owned = await provisioner.listOwnedVolumes(location, signal);
      report.locations.push({ id: location.id, scanned: true });
    } catch (error) {
      report.locations.push({ id: location.id, scanned: false, error: (error as Error).message });
      continue;
    }
    for (const volume of owned) {
      const image = `${location.target.pool}/${ownedVolumeImage(volume)}`;
      if (volume.state !== 'deleting') seen.add(`${location.target.monitors}|${location.target.radosNamespace}|${image}`);
      const finding: ImageFinding = {
        location: location.id, image, state: volume.state, pv: volume.pvName, claim: `${volume.claimNamespace}/${volume.claimName}`,
        verdict: orphanVerdict(volume, pvNames.has(volume.pvName), claimUids.has(volume.claimUid)),
      };
      if (finding.verdict === 'unsure') finding.problem = 'no PV and no claim, but a PV may have existed (a Retain PV deleted by hand leaves its image on purpose): never deleted automatically; delete it by hand if it is not needed';
      if (finding.verdict === 'unknown-claim') finding.problem = 'names no claim: never deleted automatically';
      if (finding.verdict === 'orphan') finding.problem = 'never had a PV and its claim is gone: orphan collection removes it';
      if (finding.verdict === 'half-made') finding.problem = 'a create interrupted half-way left this name without an image header: orphan collection removes it';
      if (finding.verdict === 'deleting') finding.problem = 'in the trash after a delete that did not finish: orphan collection purges it';
      if (finding.verdict === 'has-pv' && volume.state === 'unrecorded') finding.problem = 'its PV exists but the image does not record it: the controller records it at its next orphan scan';
      if (options.deleteOrphans && (finding.verdict === 'orphan' || finding.verdict === 'deleting')) finding.action = await collect(volume, finding.verdict, deps, signal, finding);
      report.images.push(finding);
    }
  }

  // The other way: every PV of ours has its image, and the image is ours (its metadata names the PV).
  for (const pv of ourVolumes) report.volumes.push(await checkVolume(pv, ceph));
  report.problems = report.locations.filter((l) => !l.scanned).length + report.images.filter(imageIsWrong).length + report.volumes.filter((v) => v.verdict !== 'ok').length;
  return report;
}

/** Exactly the orphan collector's last checks: the claim and the PV read live, then the provisioner's own delete. */
async function collect(volume: OwnedVolume, verdict: OrphanVerdict, deps: AuditDeps, signal: AbortSignal, finding: ImageFinding): Promise<ImageFinding['action']> {
  try {
    if (verdict !== 'deleting') {
      const claim = await deps.kube.readClaim(volume.claimNamespace, volume.claimName, signal);
      if (claim !== undefined && claim.metadata?.uid === volume.claimUid) return 'kept';
      if ((await deps.kube.readVolume(volume.pvName, signal)) !== undefined) return 'kept';
    }
    await deps.provisioner.deleteOwnedVolume(volume, signal);
    return 'deleted';
  } catch (error) {
    finding.problem = `${finding.problem ?? ''}; delete failed: ${(error as Error).message}`;
    return 'failed';
  }
}

async function checkVolume(pv: V1PersistentVolume, ceph: CephAccess): Promise<VolumeFinding> {
  const name = pv.metadata?.name ?? '';
  let target;
  try {
    target = readDeleteTarget(pv);
  } catch (error) {
    return { pv: name, image: '', verdict: 'unreadable', problem: (error as Error).message };
  }
  const image = `${target.pool}/${target.image}`;
  try {
    const meta = await ceph.withPool(target, (pool) => pool.withImage(target.image, (img) => img.listMetadata(), { readOnly: true }));
    if (meta[OWNER_KEYS.pvName] !== name) {
      return { pv: name, image, verdict: 'image-not-ours', problem: `the image's metadata names PV ${JSON.stringify(meta[OWNER_KEYS.pvName] ?? '')}, not this one` };
    }
    return { pv: name, image, verdict: 'ok' };
  } catch (error) {
    if (error instanceof ImageNotFound) return { pv: name, image, verdict: 'image-missing', problem: 'the PV\'s image does not exist' };
    return { pv: name, image, verdict: 'unreadable', problem: (error as Error).message };
  }
}

export function formatAuditText(report: AuditReport): string {
  const lines: string[] = [];
  for (const l of report.locations) lines.push(l.scanned ? `scanned ${l.id}` : `NOT SCANNED ${l.id}: ${l.error ?? ''}`);
  for (const i of report.images) {
    const wrong = imageIsWrong(i);
    lines.push(`${wrong ? 'PROBLEM' : 'ok'} image ${i.image} (${i.state}) PV ${i.pv} claim ${i.claim}: ${i.verdict}${i.action === undefined ? '' : `, ${i.action}`}${i.problem === undefined ? '' : ` - ${i.problem}`}`);
  }
  for (const v of report.volumes) lines.push(`${v.verdict === 'ok' ? 'ok' : 'PROBLEM'} PV ${v.pv} image ${v.image}: ${v.verdict}${v.problem === undefined ? '' : ` - ${v.problem}`}`);
  lines.push(report.problems === 0 ? 'audit: all well' : `audit: ${report.problems} problem(s)`);
  return `${lines.join('\n')}\n`;
}

/** The subcommand: arguments after "audit"; returns the exit code. */
export async function auditCommand(args: readonly string[], env: Readonly<Record<string, string | undefined>>, out: CommandOutput): Promise<number> {
  const options = optionsOrExit('audit', AUDIT_USAGE, () => parseAuditArgs(args, env), out);
  if (typeof options === 'number') return options;
  const kube = createKubeFacade(loadKubeConfig(options.kubeconfig, env), { qps: 20, burst: 40 });
  // Each admin Secret read once for the whole command, shared by the provisioner's deletes and the PV checks.
  const readSecret = cachingSecretReader(kubeSecretReader(kube), { ttlMs: COMMAND_SECRET_TTL_MS }).read;
  const connections = new ConnectionPool({ timeouts: COMMAND_CEPH_TIMEOUTS });
  const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
  const provisioner = new RbdProvisioner({
    name: options.provisionerName, connections, readSecret, logger: quiet,
    nodeStageSecret: () => Promise.reject(new Error('audit provisions nothing')),
  });
  const ceph = cephAccess(readSecret, connections);
  try {
    const report = await runAudit(options, { kube, provisioner, ceph });
    // Purges that a delete started run in the background: they finish before the command exits.
    await provisioner.drain();
    out.stdout(options.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatAuditText(report));
    return report.problems === 0 ? 0 : 1;
  } finally {
    await ceph.close();
  }
}
