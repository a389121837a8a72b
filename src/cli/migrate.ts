// `rbd-provisioner migrate`: replaces the retired external-storage rbd-provisioner's in-tree `spec.rbd` PVs with the
// csi PVs our provisioner makes (Kubernetes 1.31+ has no in-tree rbd), each bound to the same image and to a claim of
// the same name and spec. A PV's volume source is immutable, so each claim is deleted and recreated: downtime.
//
// Dry run by default (the plan, per PV and claim); --apply carries it out. Every step is idempotent and is detected
// as done from what the API and Ceph show, and the plan is recorded on the old PV, then on the new one (both exist
// while the claim is swapped), so a re-run after a crash at any point finishes the job.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { parseArgs } from 'node:util';
import { ConnectionPool } from '../ceph/index.js';
import { type AdminCalls, createKubeFacade, isAlreadyExists, isConflict, type JsonPatchOperation, type KubeFacade, loadKubeConfig } from '../kube/client.js';
import { cachingSecretReader, kubeSecretReader } from '../rbd/secrets.js';
import { DNS_LABEL, DNS_SUBDOMAIN, isKubeName } from '../kube/names.js';
import { DEFAULT_PROVISIONER_NAME } from '../config.js';
import {
  convertVolume, isLegacyVolume, LEGACY_PROVISIONER_NAME, LegacyAdminError, legacyAdminOf, legacyClassParameters, MIGRATION_ANNOTATION,
  migratedVolumeName, readLegacyVolume, readMigrationRecord, type LegacyAdmin, type MigrationRecord,
} from '../rbd/legacy.js';
import { NodeSecrets } from '../rbd/node-secret.js';
import { OWNER_KEYS, PV_MAY_EXIST_KEY } from '../rbd/provisioner.js';
import { ANNOTATIONS, readDeleteTarget, type DeleteTarget } from '../rbd/volume.js';
import { classClusterID } from '../rbd/parameters.js';
import { cephAccess, COMMAND_CEPH_TIMEOUTS, COMMAND_SECRET_TTL_MS, type CephAccess } from './ceph-access.js';
import type { CommandOutput } from './cluster-id.js';

export const MIGRATE_USAGE = `Usage: rbd-provisioner migrate (--all | --pv=<name> ...) [--apply] [flags]

Converts PVs of the retired external-storage rbd-provisioner (in-tree spec.rbd) to the csi PVs this provisioner
makes, for clusters moving to Kubernetes 1.31+. DOWNTIME: each claim is deleted and recreated with the same name and
spec, bound to the same image; no Pod may use it meanwhile (scale its workload to zero first). Claims in use by a Pod
are refused. Without --apply nothing is changed: the plan is printed. A re-run finishes a migration a crash cut short.

  --all                   every PV of --from-provisioner, and every migration left unfinished
  --pv=<name>             one PV of the old provisioner (repeatable)
  --apply                 carry out the plan (default: dry run)
  --from-provisioner      the old provisioner's name in pv.kubernetes.io/provisioned-by (default ${LEGACY_PROVISIONER_NAME})
  --provisioner-name      this provisioner's name, written on the new PVs and images (default ${DEFAULT_PROVISIONER_NAME})
  --namespace             this provisioner's namespace, where it keeps node Secrets in ceph-csi's format
                          (default $POD_NAMESPACE, else "default")
  --admin-id              Ceph admin id, only for PVs whose StorageClass is gone (default "admin")
  --admin-secret          <namespace>/<name> of the admin Secret (data key "key"), only for PVs whose StorageClass is
                          gone; the key itself is never given on the command line
  --cluster-id            the clusterID of the new PVs, when your classes set one (default: derived from the monitors,
                          as for a class without one; see "rbd-provisioner cluster-id")
  --csi-driver            default rbd.csi.ceph.com
  --wait-timeout          seconds to wait for a deleted claim or PV to go, or a new claim to bind (default 120)
  --kubeconfig            kubeconfig file (default $KUBECONFIG, else in-cluster, else ~/.kube/config)
`;

/** The steps of one PV's migration, in order; each is skipped when found done. */
export const MIGRATION_STEPS = ['record', 'create-pv', 'delete-claim', 'delete-old-pv', 'create-claim', 'tag-image', 'restore-policy'] as const;
export type MigrationStep = (typeof MIGRATION_STEPS)[number];

export interface MigrateOptions {
  all: boolean;
  pvs: string[];
  apply: boolean;
  fromProvisioner: string;
  provisionerName: string;
  namespace: string;
  adminId: string | undefined;
  adminSecret: { namespace: string; name: string } | undefined;
  clusterID: string | undefined;
  csiDriver: string | undefined;
  waitTimeoutMs: number;
  kubeconfig: string | undefined;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * A subcommand's options, or its exit code when there is nothing to run: 2 after a usage error (printed with the
 * usage), 0 after --help.
 */
export function optionsOrExit<T>(subcommand: string, usage: string, parse: () => T | 'help', out: CommandOutput): T | number {
  let options: T | 'help';
  try {
    options = parse();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out.stderr(`rbd-provisioner ${subcommand}: ${error.message}\n\n${usage}`);
    return 2;
  }
  if (options === 'help') {
    out.stdout(usage);
    return 0;
  }
  return options;
}

const QUALIFIED_NAME = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;

/** Parses migrate's arguments; throws UsageError naming the flag and what it allows. */
export function parseMigrateArgs(args: readonly string[], env: Readonly<Record<string, string | undefined>>): MigrateOptions | 'help' {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        all: { type: 'boolean' },
        pv: { type: 'string', multiple: true },
        apply: { type: 'boolean' },
        'from-provisioner': { type: 'string' },
        'provisioner-name': { type: 'string' },
        namespace: { type: 'string' },
        'admin-id': { type: 'string' },
        'admin-secret': { type: 'string' },
        'cluster-id': { type: 'string' },
        'csi-driver': { type: 'string' },
        'wait-timeout': { type: 'string' },
        kubeconfig: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values['help'] === true) return 'help';
  const pvs = (values['pv'] as string[] | undefined ?? []).map((name) => name.trim());
  const all = values['all'] === true;
  if (all === (pvs.length > 0)) throw new UsageError('give either --all or one or more --pv=<name>, not both and not neither');
  for (const name of pvs) {
    if (!isKubeName(DNS_SUBDOMAIN, name)) throw new UsageError(`--pv: ${JSON.stringify(name)} is not a PV name; allowed: ${DNS_SUBDOMAIN.allowed}`);
  }
  const named = (flag: string, fallback: string): string => {
    const value = (values[flag] as string | undefined)?.trim() ?? fallback;
    if (!QUALIFIED_NAME.test(value)) throw new UsageError(`--${flag}: ${JSON.stringify(value)} is not a provisioner name; allowed: a name like "${fallback}" (letters, digits, ".", "-", "_", "/")`);
    return value;
  };
  const fromProvisioner = named('from-provisioner', LEGACY_PROVISIONER_NAME);
  const provisionerName = named('provisioner-name', DEFAULT_PROVISIONER_NAME);
  if (fromProvisioner === provisionerName) throw new UsageError(`--from-provisioner: ${JSON.stringify(fromProvisioner)} is --provisioner-name too; allowed: the retired provisioner's name, e.g. ${LEGACY_PROVISIONER_NAME}`);
  const namespace = ((values['namespace'] as string | undefined) ?? env['POD_NAMESPACE'] ?? 'default').trim();
  if (!isKubeName(DNS_LABEL, namespace)) throw new UsageError(`--namespace: ${JSON.stringify(namespace)} is not a namespace name; allowed: ${DNS_LABEL.allowed}`);
  let adminSecret: MigrateOptions['adminSecret'];
  const adminSecretText = (values['admin-secret'] as string | undefined)?.trim();
  if (adminSecretText !== undefined) {
    const [secretNamespace = '', secretName = '', ...rest] = adminSecretText.split('/');
    if (rest.length > 0 || !isKubeName(DNS_LABEL, secretNamespace) || !isKubeName(DNS_SUBDOMAIN, secretName)) {
      throw new UsageError(`--admin-secret: ${JSON.stringify(adminSecretText)} is not <namespace>/<name> of a Secret; allowed: e.g. kube-system/ceph-admin (the key is read from its data key "key")`);
    }
    adminSecret = { namespace: secretNamespace, name: secretName };
  }
  const adminId = (values['admin-id'] as string | undefined)?.trim();
  if (adminId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(adminId)) {
    throw new UsageError(`--admin-id: ${JSON.stringify(adminId)} is not a Ceph client id; allowed: letters, digits, ".", "_" and "-", without "client."`);
  }
  if (adminId !== undefined && adminSecret === undefined) throw new UsageError('--admin-id needs --admin-secret=<namespace>/<name>');
  const waitText = (values['wait-timeout'] as string | undefined)?.trim() ?? '120';
  const waitSeconds = Number(waitText);
  if (!/^\d+$/.test(waitText) || waitSeconds < 1 || waitSeconds > 3600) throw new UsageError(`--wait-timeout: ${JSON.stringify(waitText)} is not a whole number of seconds; allowed: 1 to 3600`);
  return {
    all,
    pvs,
    apply: values['apply'] === true,
    fromProvisioner,
    provisionerName,
    namespace,
    adminId,
    adminSecret,
    clusterID: (values['cluster-id'] as string | undefined)?.trim(),
    csiDriver: (values['csi-driver'] as string | undefined)?.trim(),
    waitTimeoutMs: waitSeconds * 1000,
    kubeconfig: (values['kubeconfig'] as string | undefined)?.trim() || env['KUBECONFIG']?.split(':').find((part) => part.trim() !== ''),
  };
}

// ---- the plan ---------------------------------------------------------------------------------------------------

/** What one PV (by the old PV's name) needs, as observed now. */
export interface PlanEntry {
  readonly oldPv: string;
  readonly claim: string;
  readonly image: string;
  /**
   * convert: start; resume: finish an interrupted one; done: nothing left; skip: nothing to migrate (not bound);
   * refuse: cannot (reason says why).
   */
  readonly action: 'convert' | 'resume' | 'done' | 'skip' | 'refuse';
  /** The clusterID the new PV gets: ceph-csi's config map needs an entry for it. */
  readonly clusterID?: string;
  readonly reason?: string;
  /** The steps still to do, in order. */
  readonly steps: readonly MigrationStep[];
}

/** What is known about one migration unit: the old PV, the new PV, the claim (live), the Pods using it. */
export interface Observed {
  readonly oldPvName: string;
  readonly oldPv: V1PersistentVolume | undefined;
  readonly newPv: V1PersistentVolume | undefined;
  readonly claim: V1PersistentVolumeClaim | undefined;
  readonly podsUsingClaim: readonly string[];
  /** Whether the image carries our ownership metadata naming the new PV and claim (undefined: not looked). */
  readonly imageTagged?: boolean;
}

/** Which steps are left, from what is observed. Pure: the whole of migrate's resume logic. */
export function planEntry(observed: Observed, fromProvisioner: string, clusterID?: string): PlanEntry {
  const { oldPv, newPv, claim, oldPvName } = observed;
  const refuse = (reason: string, claimName = '', image = ''): PlanEntry => ({ oldPv: oldPvName, claim: claimName, image, action: 'refuse', reason, steps: [] });
  let record: MigrationRecord | undefined;
  try {
    record = (newPv && readMigrationRecord(newPv)) ?? (oldPv && readMigrationRecord(oldPv));
  } catch (error) {
    return refuse((error as Error).message);
  }
  if (record === undefined) {
    // Not started: the old PV must be a bound legacy PV whose claim is there and idle.
    if (oldPv === undefined) return refuse(`PV ${oldPvName} does not exist`);
    if (!isLegacyVolume(oldPv, [fromProvisioner])) return refuse(`PV ${oldPvName} is not an in-tree rbd PV of ${fromProvisioner}`);
    let image: string;
    let claimRef: { namespace: string; name: string; uid: string } | undefined;
    let newClusterID: string;
    try {
      const legacy = readLegacyVolume(oldPv);
      image = `${legacy.pool}/${legacy.image}`;
      claimRef = legacy.claim;
      // As for a class with these monitors (and --cluster-id as a class's clusterID).
      newClusterID = classClusterID(legacy.monitors, '', clusterID);
    } catch (error) {
      return refuse((error as Error).message);
    }
    if (newPv !== undefined) return refuse(`PV ${migratedVolumeName(oldPvName)} exists and is not this migration's; remove or rename it first`, '', image);
    if (claimRef === undefined || oldPv.status?.phase !== 'Bound') {
      // No claim, no Pod can use it: nothing to convert (its image goes with it, or stays, by its reclaim policy).
      return { oldPv: oldPvName, claim: '', image, action: 'skip', reason: `PV ${oldPvName} is ${oldPv.status?.phase ?? 'in no phase'}, not Bound to a claim: only bound PVs are migrated; delete it or keep it`, steps: [] };
    }
    const claimName = `${claimRef.namespace}/${claimRef.name}`;
    if (claim === undefined || claim.metadata?.uid !== claimRef.uid) return refuse(`claim ${claimName} (uid ${claimRef.uid}) no longer exists`, claimName, image);
    if (observed.podsUsingClaim.length > 0) {
      return refuse(`claim ${claimName} is in use by Pod(s) ${observed.podsUsingClaim.join(', ')}: migrating deletes and recreates the claim, so stop them first (scale the workload to zero)`, claimName, image);
    }
    return { oldPv: oldPvName, claim: claimName, image, action: 'convert', clusterID: newClusterID, steps: [...MIGRATION_STEPS] };
  }
  const claimName = `${record.claim.namespace}/${record.claim.name}`;
  const image = imageOfRecord(newPv ?? oldPv);
  if (record.done === true) return { oldPv: oldPvName, claim: claimName, image, action: 'done', steps: [] };
  const steps: MigrationStep[] = [];
  if (newPv === undefined) steps.push('create-pv');
  const oldClaimThere = claim !== undefined && claim.metadata?.uid === record.claim.uid;
  const newClaimThere = claim !== undefined && !oldClaimThere && claim.spec?.volumeName === record.newPv;
  if (claim !== undefined && !oldClaimThere && !newClaimThere) {
    return refuse(`claim ${claimName} was recreated by someone else (uid ${claim.metadata?.uid ?? ''}, not bound to ${record.newPv}); delete it, or bind it to ${record.newPv} by hand`, claimName, image);
  }
  if (oldClaimThere) {
    if (observed.podsUsingClaim.length > 0) {
      return refuse(`claim ${claimName} is in use by Pod(s) ${observed.podsUsingClaim.join(', ')}: migrating deletes and recreates the claim, so stop them first (scale the workload to zero)`, claimName, image);
    }
    steps.push('delete-claim');
  }
  if (oldPv !== undefined) steps.push('delete-old-pv');
  if (!newClaimThere) steps.push('create-claim');
  if (observed.imageTagged !== true) steps.push('tag-image');
  steps.push('restore-policy');
  return { oldPv: oldPvName, claim: claimName, image, action: 'resume', steps };
}

function imageOfRecord(pv: V1PersistentVolume | undefined): string {
  const a = pv?.metadata?.annotations ?? {};
  if (a[ANNOTATIONS.image] !== undefined) return `${a[ANNOTATIONS.pool] ?? ''}/${a[ANNOTATIONS.image]}`;
  return pv?.spec?.rbd ? `${pv.spec.rbd.pool ?? 'rbd'}/${pv.spec.rbd.image}` : '';
}

const STEP_TEXT: Record<MigrationStep, (entry: PlanEntry, record: { newPv: string; policy: string }) => string> = {
  'record': (e, r) => `set PV ${e.oldPv}'s reclaim policy to Retain (from ${r.policy}; its image can no longer be deleted with it) and record the migration on it`,
  'create-pv': (e, r) => `create PV ${r.newPv}: csi, volumeHandle = image ${e.image}${e.clusterID === undefined ? '' : `, clusterID ${e.clusterID} (ceph-csi's config map needs it)`}, pre-bound to claim ${e.claim}, reclaim policy Retain for now`,
  'delete-claim': (e) => `delete claim ${e.claim} (DOWNTIME starts: no Pod may use it until step "create-claim")`,
  'delete-old-pv': (e) => `delete PV ${e.oldPv} (policy Retain: its image stays)`,
  'create-claim': (e, r) => `recreate claim ${e.claim} with the same spec, bound to PV ${r.newPv} (DOWNTIME ends)`,
  'tag-image': (e, r) => `write this provisioner's ownership metadata on image ${e.image} (claim ${e.claim}, PV ${r.newPv}; a PV exists for it)`,
  'restore-policy': (_e, r) => `set PV ${r.newPv}'s reclaim policy back to ${r.policy}`,
};

export function describeEntry(entry: PlanEntry, policy: string): string {
  const head = `PV ${entry.oldPv}${entry.claim === '' ? '' : ` (claim ${entry.claim})`}${entry.image === '' ? '' : ` image ${entry.image}`}: ${entry.action}`;
  if (entry.action === 'refuse' || entry.action === 'skip') return `${head}: ${entry.reason ?? ''}\n`;
  if (entry.action === 'done') return `${head}: already migrated to ${migratedVolumeName(entry.oldPv)}\n`;
  const record = { newPv: migratedVolumeName(entry.oldPv), policy };
  return `${head}\n${entry.steps.map((step, i) => `  ${i + 1}. ${step}: ${STEP_TEXT[step](entry, record)}\n`).join('')}`;
}

// ---- carrying it out --------------------------------------------------------------------------------------------

export type MigrateKube = Pick<KubeFacade, 'readClaim' | 'readVolume' | 'readSecretData' | 'readSecret' | 'createSecret' | 'replaceSecret' | 'createVolume' | 'deleteVolume' | 'patchVolume' | 'list'> & AdminCalls;

export interface MigrateDeps {
  kube: MigrateKube;
  ceph: CephAccess;
  out: CommandOutput;
  /** Test-only: called after each step is carried out (fault injection kills the process here). */
  afterStep?: (pv: string, step: MigrationStep) => void;
  /** Sleeps between polls of a deletion or a binding. */
  sleep?: (ms: number) => Promise<void>;
}

/** Runs the command; returns the exit code: 0 when every selected PV is migrated (or planned), 1 when one is refused or failed. */
export async function runMigrate(options: MigrateOptions, deps: MigrateDeps): Promise<number> {
  const { kube, out } = deps;
  const volumes = (await kube.list('volumes')).items;
  const names = new Set<string>(options.pvs);
  if (options.all) {
    for (const pv of volumes) {
      if (isLegacyVolume(pv, [options.fromProvisioner])) names.add(pv.metadata?.name ?? '');
      // Unfinished migrations whose old PV is already gone are found by their new PV's record.
      const text = pv.metadata?.annotations?.[MIGRATION_ANNOTATION];
      if (text !== undefined) {
        try {
          const record = readMigrationRecord(pv);
          if (record !== undefined && record.done !== true) names.add(record.oldPv);
        } catch {
          names.add(pv.metadata?.name ?? '');
        }
      }
    }
  }
  out.stdout(`${options.apply ? 'Migrating' : 'Plan (dry run: nothing is changed; add --apply to carry it out)'}: ${names.size} PV(s) of ${options.fromProvisioner}.\n` +
    'Downtime: each claim is deleted and recreated, so no Pod may use it meanwhile; claims in use are refused.\n\n');
  let failed = 0;
  for (const name of [...names].sort()) {
    const observe = async (): Promise<{ observed: Observed; entry: PlanEntry }> => {
      const oldPv = await kube.readVolume(name);
      const newPv = await kube.readVolume(migratedVolumeName(name));
      let record: MigrationRecord | undefined;
      try {
        record = (newPv && readMigrationRecord(newPv)) ?? (oldPv && readMigrationRecord(oldPv));
      } catch {
        record = undefined;
      }
      const claimRef = record?.claim ?? oldPv?.spec?.claimRef;
      const claim = claimRef?.namespace && claimRef.name ? await kube.readClaim(claimRef.namespace, claimRef.name) : undefined;
      const pods = claim ? await podsUsing(kube, claim) : [];
      const imageTagged = record !== undefined && newPv !== undefined && claim !== undefined && claim.metadata?.uid !== record.claim.uid
        ? await imageNamesClaim(deps.ceph, newPv, claim)
        : undefined;
      const observed: Observed = { oldPvName: name, oldPv, newPv, claim, podsUsingClaim: pods, ...(imageTagged === undefined ? {} : { imageTagged }) };
      let entry = planEntry(observed, options.fromProvisioner, options.clusterID);
      // Before anything is changed: the admin credentials must be known (the image is opened with them).
      if (entry.action === 'convert' && oldPv !== undefined) {
        try {
          await adminFor(oldPv, options, kube);
        } catch (error) {
          if (!(error instanceof LegacyAdminError)) throw error;
          entry = { ...entry, action: 'refuse', steps: [], reason: `${error.message}; or give --admin-secret=<namespace>/<name> (and --admin-id)` };
        }
      }
      return { observed, entry };
    };
    try {
      const { observed, entry } = await observe();
      const policy = observed.oldPv?.spec?.persistentVolumeReclaimPolicy ?? 'Retain';
      const recorded = observed.newPv ?? observed.oldPv;
      let originalPolicy = policy;
      try {
        originalPolicy = (recorded && readMigrationRecord(recorded))?.reclaimPolicy ?? policy;
      } catch { /* planEntry refused it already */ }
      out.stdout(describeEntry(entry, originalPolicy));
      if (entry.action === 'refuse') failed++;
      if (!options.apply || entry.action !== 'convert' && entry.action !== 'resume') continue;
      await migrateOne(observed, options, deps);
      out.stdout(`  migrated: PV ${migratedVolumeName(name)} is bound to claim ${entry.claim}\n`);
    } catch (error) {
      failed++;
      out.stdout(`  FAILED: ${(error as Error).message}\n  (re-run the same command to resume from here)\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

/** Names of the Pods (not finished) in the claim's namespace that mount it. */
async function podsUsing(kube: MigrateKube, claim: V1PersistentVolumeClaim): Promise<string[]> {
  const pods: V1Pod[] = await kube.listPods(claim.metadata?.namespace ?? '');
  return pods
    .filter((pod) => pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed')
    .filter((pod) => (pod.spec?.volumes ?? []).some((volume) => volume.persistentVolumeClaim?.claimName === claim.metadata?.name))
    .map((pod) => pod.metadata?.name ?? '');
}

async function imageNamesClaim(ceph: CephAccess, newPv: V1PersistentVolume, claim: V1PersistentVolumeClaim): Promise<boolean> {
  const target = readDeleteTarget(newPv);
  const meta = await ceph.withPool(target, (pool) => pool.withImage(target.image, (image) => image.listMetadata(), { readOnly: true }));
  return meta[OWNER_KEYS.claimUid] === claim.metadata?.uid && meta[OWNER_KEYS.pvName] === newPv.metadata?.name && meta[PV_MAY_EXIST_KEY] !== undefined;
}

/** The admin credentials for a legacy PV: its own annotations, its class, or --admin-id/--admin-secret. */
async function adminFor(pv: V1PersistentVolume, options: MigrateOptions, kube: MigrateKube): Promise<LegacyAdmin> {
  const className = pv.spec?.storageClassName ?? '';
  const storageClass = className === '' ? undefined : await kube.readStorageClass(className);
  try {
    return legacyAdminOf(pv, storageClass);
  } catch (error) {
    if (!(error instanceof LegacyAdminError) || options.adminSecret === undefined) throw error;
    return { adminId: options.adminId ?? 'admin', adminSecret: options.adminSecret, from: 'pv' };
  }
}

/** Carries out the steps left for one PV, each one checked against what is there now (see planEntry). */
async function migrateOne(observed: Observed, options: MigrateOptions, deps: MigrateDeps): Promise<void> {
  const { kube, ceph } = deps;
  const name = observed.oldPvName;
  const newPvName = migratedVolumeName(name);
  const done = (step: MigrationStep): void => {
    deps.out.stdout(`  done: ${step}\n`);
    deps.afterStep?.(name, step);
  };
  let oldPv = observed.oldPv;
  let newPv = observed.newPv;
  let record = (newPv && readMigrationRecord(newPv)) ?? (oldPv && readMigrationRecord(oldPv));

  // 1. record: Retain, the record, and the admin credentials, on the old PV in one patch (test: nobody changed it).
  if (record === undefined) {
    if (oldPv === undefined) throw new Error(`PV ${name} is gone`);
    const admin = await adminFor(oldPv, options, kube);
    const built = await buildNewVolume(oldPv, observed.claim!, admin, undefined, options, deps);
    record = built.record;
    const recordText = JSON.stringify(record);
    const bound = record.claim;
    oldPv = await patchVolumeAsSeen(kube, name, oldPv, (current) => {
      if (current.spec?.claimRef?.uid !== bound.uid) throw new Error(`PV ${name} is no longer bound to claim ${bound.namespace}/${bound.name}; not migrating it`);
      return [
        { op: 'replace', path: '/spec/persistentVolumeReclaimPolicy', value: 'Retain' },
        { op: 'add', path: '/metadata/annotations', value: {
          ...current.metadata?.annotations,
          [MIGRATION_ANNOTATION]: recordText,
          [ANNOTATIONS.adminId]: admin.adminId,
          [ANNOTATIONS.adminSecretName]: admin.adminSecret.name,
          [ANNOTATIONS.adminSecretNamespace]: admin.adminSecret.namespace,
        } },
      ];
    });
    done('record');
  }

  // 2. create-pv: pre-bound to the claim by name (the recreated claim has a new uid), Retain for now.
  if (newPv === undefined) {
    if (oldPv === undefined) throw new Error(`PV ${name} and PV ${newPvName} are both gone: nothing to build the new PV from; the image is untouched`);
    const admin = await adminFor(oldPv, options, kube);
    const { volume } = await buildNewVolume(oldPv, record.claimTemplate, admin, record, options, deps);
    try {
      newPv = await kube.createVolume(volume);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      newPv = await kube.readVolume(newPvName);
      if (newPv === undefined || readMigrationRecord(newPv)?.oldPv !== name) throw new Error(`PV ${newPvName} exists and is not this migration's; not touching it`);
    }
    done('create-pv');
  }

  // 3. delete-claim: only the claim that was bound to the old PV (uid precondition), and only while no Pod uses it.
  const { namespace, name: claimName, uid: oldClaimUid } = record.claim;
  let claim = await kube.readClaim(namespace, claimName);
  if (claim !== undefined && claim.metadata?.uid === oldClaimUid) {
    const pods = await podsUsing(kube, claim);
    if (pods.length > 0) throw new Error(`claim ${namespace}/${claimName} is in use by Pod(s) ${pods.join(', ')}; stop them and re-run`);
    await kube.deleteClaim(namespace, claimName, oldClaimUid);
    await waitFor(`claim ${namespace}/${claimName} to go (a Pod still using it holds it)`, options.waitTimeoutMs, deps, async () => {
      const now = await kube.readClaim(namespace, claimName);
      return now === undefined || now.metadata?.uid !== oldClaimUid;
    });
    done('delete-claim');
    claim = await kube.readClaim(namespace, claimName);
  }

  // 4. delete-old-pv: Retain since step 1, so its image stays.
  oldPv = await kube.readVolume(name);
  if (oldPv !== undefined) {
    if ((oldPv.spec?.persistentVolumeReclaimPolicy ?? 'Retain') !== 'Retain') throw new Error(`PV ${name} is not Retain any more; not deleting it (set it back to Retain and re-run)`);
    await kube.deleteVolume(name, oldPv.metadata?.uid);
    await waitFor(`PV ${name} to go`, options.waitTimeoutMs, deps, async () => (await kube.readVolume(name)) === undefined);
    done('delete-old-pv');
  }

  // 5. create-claim: same name and spec, pre-bound to the new PV.
  if (claim === undefined) {
    try {
      claim = await kube.createClaim(namespace, record.claimTemplate);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      claim = await kube.readClaim(namespace, claimName);
    }
    done('create-claim');
  }
  if (claim === undefined || claim.spec?.volumeName !== newPvName) throw new Error(`claim ${namespace}/${claimName} is not the one this migration made (not bound to ${newPvName}); not touching it`);
  const newClaimUid = claim.metadata?.uid ?? '';
  await waitFor(`claim ${namespace}/${claimName} to bind to PV ${newPvName}`, options.waitTimeoutMs, deps, async () => (await kube.readClaim(namespace, claimName))?.status?.phase === 'Bound');

  // 6. tag-image: "a PV may exist" first, so that no scan ever sees it owned but unrecorded; then the owner keys,
  // the claim uid last (as provisioning tags).
  newPv = (await kube.readVolume(newPvName)) ?? newPv;
  const target: DeleteTarget = readDeleteTarget(newPv);
  await ceph.withPool(target, (pool) => pool.withImage(target.image, async (image) => {
    await image.setMetadata(PV_MAY_EXIST_KEY, 'true');
    await image.setMetadata(OWNER_KEYS.provisioner, options.provisionerName);
    await image.setMetadata(OWNER_KEYS.claimNamespace, namespace);
    await image.setMetadata(OWNER_KEYS.claimName, claimName);
    await image.setMetadata(OWNER_KEYS.pvName, newPvName);
    await image.setMetadata(OWNER_KEYS.claimUid, newClaimUid);
  }));
  done('tag-image');

  // 7. restore-policy, and the record marked done, in one patch.
  const doneText = JSON.stringify({ ...record, done: true });
  await patchVolumeAsSeen(kube, newPvName, newPv, () => [
    { op: 'replace', path: '/spec/persistentVolumeReclaimPolicy', value: record.reclaimPolicy },
    { op: 'replace', path: `/metadata/annotations/${MIGRATION_ANNOTATION.replace(/\//g, '~1')}`, value: doneText },
  ]);
  done('restore-policy');
}

/** The csi PV for a legacy one: the image's real size and features, and the node Secret our provisioner would name. */
async function buildNewVolume(oldPv: V1PersistentVolume, claim: V1PersistentVolumeClaim, admin: LegacyAdmin, record: MigrationRecord | undefined, options: MigrateOptions, deps: MigrateDeps) {
  const legacy = readLegacyVolume(oldPv);
  const target = { monitors: legacy.monitors, pool: legacy.pool, radosNamespace: '', adminId: admin.adminId, adminSecret: admin.adminSecret };
  const { size, features } = await deps.ceph.withPool(target, (pool) => pool.withImage(legacy.image, async (image) => ({ size: (await image.stat()).size, features: await image.features() }), { readOnly: true }));
  const convertOptions = { ...(options.clusterID === undefined ? {} : { clusterID: options.clusterID }), ...(options.csiDriver === undefined ? {} : { csiDriver: options.csiDriver }) };
  const params = legacyClassParameters(legacy, admin, features, convertOptions);
  // The same decision as for a new volume of such a class: a managed Secret in ceph-csi's format when the user's
  // Secret holds only `key` (ceph-csi would read that as client.admin).
  const nodeSecrets = new NodeSecrets({ kube: deps.kube, provisionerName: options.provisionerName, namespace: options.namespace, logger: { info: () => {} } });
  const nodeStageSecret = await nodeSecrets.resolve(params, claim, new AbortController().signal);
  return convertVolume({
    pv: oldPv, claim, admin, imageSizeBytes: size, imageFeatures: features, nodeStageSecret, provisionerName: options.provisionerName,
    ...(record === undefined ? {} : { record }), ...convertOptions,
  });
}

/**
 * A JSON patch guarded by the resourceVersion it was built from: the PV binder updates PVs too, so a conflict reads
 * the PV again and builds the patch anew (build may throw when what it relied on changed).
 */
async function patchVolumeAsSeen(kube: MigrateKube, name: string, initial: V1PersistentVolume, build: (current: V1PersistentVolume) => JsonPatchOperation[]): Promise<V1PersistentVolume> {
  let current = initial;
  for (let attempt = 1; ; attempt++) {
    try {
      return await kube.patchVolume(name, [{ op: 'test', path: '/metadata/resourceVersion', value: current.metadata?.resourceVersion ?? '' }, ...build(current)]);
    } catch (error) {
      if (!isConflict(error) || attempt >= 5) throw error;
    }
    const fresh = await kube.readVolume(name);
    if (fresh === undefined) throw new Error(`PV ${name} is gone`);
    current = fresh;
  }
}

async function waitFor(what: string, timeoutMs: number, deps: MigrateDeps, done: () => Promise<boolean>): Promise<void> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(500);
  }
}

/** The subcommand: arguments after "migrate"; returns the exit code (2 for bad usage). */
export async function migrateCommand(args: readonly string[], env: Readonly<Record<string, string | undefined>>, out: CommandOutput, hooks: Pick<MigrateDeps, 'afterStep'> = {}): Promise<number> {
  const options = optionsOrExit('migrate', MIGRATE_USAGE, () => parseMigrateArgs(args, env), out);
  if (typeof options === 'number') return options;
  const kube = createKubeFacade(loadKubeConfig(options.kubeconfig, env), { qps: 20, burst: 40 });
  const readSecret = cachingSecretReader(kubeSecretReader(kube), { ttlMs: COMMAND_SECRET_TTL_MS }).read;
  const ceph = cephAccess(readSecret, new ConnectionPool({ timeouts: COMMAND_CEPH_TIMEOUTS }));
  try {
    return await runMigrate(options, { kube, ceph, out, ...hooks });
  } finally {
    await ceph.close();
  }
}
