// What the controller does for one key: provision for a claim, delete or finalize a volume, and collect orphans.
// Reads come from the informer caches; the few live reads are the ones that guard against deleting something alive.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { type Clock, backoffDelay, sleep } from '../../kube/clock.js';
import { PV_FINALIZER, claimClassName, claimKey, decideClaim, decideVolume, type ClaimDecision } from './decisions.js';
import { DeleteError, ProvisionError } from './errors.js';
import { type EventRecorder, referenceTo } from '../../kube/events.js';
import { type JsonPatchOperation, type KubeFacade, isAlreadyExists, isConflict, isDefiniteRefusal, isNotFound, isRetryable } from '../../kube/client.js';
import type { Metrics } from '../metrics.js';
import type { OwnedVolume, Provisioner, VolumeLocation } from './provisioner.js';
import { stampVolume } from './stamp.js';
import type { ProcessResult } from '../../kube/workqueue.js';
import { type Logger, describeError, operationLogger } from '../../logger.js';

export interface CacheView {
  claim(key: string): V1PersistentVolumeClaim | undefined;
  volume(name: string): V1PersistentVolume | undefined;
  storageClass(name: string): V1StorageClass | undefined;
  claims(): V1PersistentVolumeClaim[];
  volumes(): V1PersistentVolume[];
  storageClasses(): V1StorageClass[];
  synced(): boolean;
}

export interface ReconcilerTuning {
  /** Attempts to create the PV before giving up until the next retry (which adopts the volume). */
  saveAttempts: number;
  saveRetryBaseMs: number;
  /** Attempts for a finalizer patch that keeps conflicting. */
  patchAttempts: number;
  /** How long scanning one location for orphans may take before it counts as failed. */
  orphanScanTimeoutMs: number;
}

export const DEFAULT_RECONCILER_TUNING: ReconcilerTuning = { saveAttempts: 5, saveRetryBaseMs: 1000, patchAttempts: 5, orphanScanTimeoutMs: 120_000 };

export interface ReconcilerOptions {
  provisionerName: string;
  kube: KubeFacade;
  provisioner: Provisioner;
  cache: CacheView;
  events: EventRecorder;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  /** False once the lease may have expired: no storage call may start then. */
  mayAct: () => boolean;
  tuning?: Partial<ReconcilerTuning>;
}

type SaveOutcome =
  | { result: 'saved' | 'adopted' | 'aborted' }
  | { result: 'conflict'; message: string }
  | { result: 'failed'; error: unknown };

const CLAIM_PREFIX = 'claim:';
const MAX_REMEMBERED_DELETIONS = 10_000;
const VOLUME_PREFIX = 'volume:';
export const claimQueueKey = (key: string): string => CLAIM_PREFIX + key;
export const volumeQueueKey = (name: string): string => VOLUME_PREFIX + name;

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Not acting now. While the work signal is live a lease renewal may still succeed, so the key stays queued; once it
 * has aborted, the next leader relists.
 */
function retryUnlessAborted(signal: AbortSignal): ProcessResult {
  return signal.aborted ? undefined : { retry: 'backoff' };
}

export class Reconciler {
  private readonly tuning: ReconcilerTuning;
  /** PV names whose provisioning is running now: orphan collection keeps off them. */
  private readonly provisioning = new Set<string>();
  /**
   * How far the deletion of a PV (by uid) got. The informer reports the PV's own updates (deletion timestamp,
   * finalizer removed) after the delete finished, and a cache that lags shows it Released once more: without this the
   * volume was deleted twice. Forgotten when the informer sees the PV go (forgetVolume), and bounded.
   */
  private readonly deletions = new Map<string, 'volume-deleted' | 'pv-deleted'>();

  constructor(private readonly options: ReconcilerOptions) {
    this.tuning = { ...DEFAULT_RECONCILER_TUNING, ...options.tuning };
  }

  /** Entry point for the work queue. */
  process(queueKey: string, signal: AbortSignal): Promise<ProcessResult> {
    if (queueKey.startsWith(CLAIM_PREFIX)) return this.syncClaim(queueKey.slice(CLAIM_PREFIX.length), signal);
    if (queueKey.startsWith(VOLUME_PREFIX)) return this.syncVolume(queueKey.slice(VOLUME_PREFIX.length), signal);
    this.options.logger.error('unknown work queue key', { item: queueKey });
    return Promise.resolve(undefined);
  }

  isProvisioning(pvName: string): boolean {
    return this.provisioning.has(pvName);
  }

  decide(claim: V1PersistentVolumeClaim): ClaimDecision {
    const { cache, provisionerName } = this.options;
    return decideClaim(claim, {
      provisionerName,
      storageClass: (name) => cache.storageClass(name),
      volumeExists: (pvName) => cache.volume(pvName) !== undefined,
    });
  }

  async syncClaim(key: string, signal: AbortSignal): Promise<ProcessResult> {
    const { cache, events, logger, metrics } = this.options;
    const claim = cache.claim(key);
    if (claim === undefined) return undefined;
    const decision = this.decide(claim);
    switch (decision.action) {
      case 'skip':
        logger.debug('not provisioning', { op: 'provision', pvc: key, why: decision.reason });
        return undefined;
      case 'fail':
        logger.warn(`cannot provision: ${decision.message}; retrying later`, { op: 'provision', pvc: key, reason: decision.reason });
        events.event(referenceTo(claim, 'PersistentVolumeClaim'), 'Warning', 'ProvisioningFailed', decision.message);
        metrics.provisionTotal.inc({ class: claimClassName(claim) ?? '', result: 'final' });
        return { retry: decision.retry };
      case 'provision':
        return this.provision(claim, decision.pvName, decision.storageClass, decision.selectedNode, signal);
    }
  }

  private async provision(
    claim: V1PersistentVolumeClaim,
    pvName: string,
    storageClass: V1StorageClass,
    selectedNode: string | undefined,
    signal: AbortSignal,
  ): Promise<ProcessResult> {
    const { clock, events, metrics, provisioner, provisionerName } = this.options;
    const className = storageClass.metadata?.name ?? '';
    const log = operationLogger(this.options.logger, { op: 'provision', pvc: claimKey(claim), pv: pvName, storageClass: className });
    const claimRef = referenceTo(claim, 'PersistentVolumeClaim');
    const started = clock.now();
    const done = (result: string): void => {
      metrics.provisionTotal.inc({ class: className, result });
      metrics.provisionDuration.observe({ class: className, result }, (clock.now() - started) / 1000);
    };
    if (!this.options.mayAct() || signal.aborted) {
      done('aborted');
      return retryUnlessAborted(signal);
    }

    this.provisioning.add(pvName);
    try {
      events.event(claimRef, 'Normal', 'Provisioning', `External provisioner is provisioning volume for claim "${claimKey(claim)}"`);
      log.info('provisioning a volume');
      let built: V1PersistentVolume;
      try {
        built = await provisioner.provision({ pvName, claim, storageClass, ...(selectedNode === undefined ? {} : { selectedNode }) }, signal);
      } catch (error) {
        if (signal.aborted) {
          log.info('provisioning interrupted (no longer leading or shutting down); the next leader retries it');
          done('aborted');
          return undefined;
        }
        const kind = error instanceof ProvisionError ? error.kind : 'transient';
        const inProgress = kind === 'in-progress' ? ' (it may still complete; retrying under the same name)' : '';
        const message = `failed to provision volume with StorageClass "${className}": ${errorMessage(error)}${inProgress}`;
        events.event(claimRef, 'Warning', 'ProvisioningFailed', message);
        log.warn(`provisioning failed (${kind}); ${kind === 'final' ? 'retrying slowly' : 'retrying with backoff'}`, { error: describeError(error), kind });
        done(kind);
        return { retry: kind === 'final' ? 'slow' : 'backoff' };
      }

      const volume = stampVolume(built, { pvName, claim, storageClass, provisionerName });
      const saved = await this.saveVolume(volume, claim, log, signal);
      switch (saved.result) {
        case 'saved':
        case 'adopted':
          events.event(claimRef, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${pvName}`);
          log.info(saved.result === 'saved' ? 'volume provisioned and PV saved; the PV controller binds it' : 'the PV already existed for this claim; adopted it');
          done('success');
          return undefined;
        case 'aborted':
          log.info('saving the PV interrupted (no longer leading or shutting down); the next leader adopts the volume');
          done('aborted');
          return retryUnlessAborted(signal);
        case 'conflict':
          events.event(claimRef, 'Warning', 'ProvisioningFailed', saved.message);
          log.error(saved.message);
          done('final');
          return { retry: 'slow' };
        case 'failed':
          await this.handleUnsaved(volume, claimRef, saved.error, log, signal);
          done('save-failed');
          return { retry: 'backoff' };
      }
    } finally {
      this.provisioning.delete(pvName);
    }
  }

  /** Creates the PV, retrying what may pass; AlreadyExists for the same claim uid is success (a retry after a crash). */
  private async saveVolume(volume: V1PersistentVolume, claim: V1PersistentVolumeClaim, log: Logger, signal: AbortSignal): Promise<SaveOutcome> {
    const { kube, clock } = this.options;
    const name = volume.metadata?.name ?? '';
    const attempts = Math.max(1, this.tuning.saveAttempts);
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await kube.createVolume(volume, signal);
        return { result: 'saved' };
      } catch (error) {
        if (signal.aborted) return { result: 'aborted' };
        lastError = error;
        if (isAlreadyExists(error)) {
          try {
            const existing = await kube.readVolume(name, signal);
            if (existing === undefined) continue;
            if (existing.spec?.claimRef?.uid === claim.metadata?.uid) return { result: 'adopted' };
            return {
              result: 'conflict',
              message: `PersistentVolume "${name}" already exists and belongs to another claim (uid ${existing.spec?.claimRef?.uid ?? 'none'}); not touching it`,
            };
          } catch (readError) {
            if (signal.aborted) return { result: 'aborted' };
            lastError = readError;
          }
        } else if (!isRetryable(error)) {
          break;
        }
        if (attempt < attempts) {
          log.warn(`could not save the PV (attempt ${attempt} of ${attempts}); retrying`, { error: describeError(lastError) });
          try {
            await sleep(clock, backoffDelay(attempt, this.tuning.saveRetryBaseMs, this.tuning.saveRetryBaseMs * 16), signal);
          } catch {
            return { result: 'aborted' };
          }
        }
      }
    }
    return { result: 'failed', error: lastError };
  }

  /**
   * The PV could not be saved. After a timeout or a 5xx the API server may have stored it anyway, and deleting the
   * volume of a PV that then binds loses data: so the volume is kept and the retry adopts it. Only a definite refusal,
   * with a live read confirming that no PV exists, lets the volume go (it would be invisible to Kubernetes).
   */
  private async handleUnsaved(
    volume: V1PersistentVolume,
    claimRef: ReturnType<typeof referenceTo>,
    saveError: unknown,
    log: Logger,
    signal: AbortSignal,
  ): Promise<void> {
    const { events, kube, provisioner } = this.options;
    const name = volume.metadata?.name ?? '';
    let absent = false;
    if (isDefiniteRefusal(saveError)) {
      try {
        absent = (await kube.readVolume(name, signal)) === undefined;
      } catch (error) {
        if (signal.aborted) return;
        log.warn('could not confirm that the PV does not exist; keeping the volume', { error: describeError(error) });
      }
    }
    if (!absent) {
      if (signal.aborted) return;
      events.event(
        claimRef,
        'Warning',
        'ProvisioningFailed',
        `could not save PersistentVolume "${name}" yet: ${errorMessage(saveError)}; the volume is kept and provisioning will be retried`,
      );
      log.warn('could not save the PV, and it may exist; keeping the volume, the retry adopts it', { error: describeError(saveError) });
      return;
    }

    log.error('the PV was refused and does not exist; deleting the new volume so that nothing is left behind', { error: describeError(saveError) });
    if (!this.options.mayAct() || signal.aborted) return;
    try {
      await provisioner.delete(volume, signal);
      events.event(
        claimRef,
        'Warning',
        'ProvisioningFailed',
        `failed to save PersistentVolume "${name}": ${errorMessage(saveError)}; the volume was deleted and provisioning will be retried`,
      );
      log.info('the unsaved volume was deleted; provisioning will be retried');
    } catch (error) {
      events.event(
        claimRef,
        'Warning',
        'ProvisioningCleanupFailed',
        `failed to save PersistentVolume "${name}" (${errorMessage(saveError)}) and to delete its volume: ${errorMessage(error)}; provisioning will be retried and adopts the volume`,
      );
      log.error('could not delete the unsaved volume; the retry adopts it, and orphan collection removes it if the claim goes', { error: describeError(error) });
    }
  }

  async syncVolume(name: string, signal: AbortSignal): Promise<ProcessResult> {
    const { cache, logger, provisionerName } = this.options;
    const volume = cache.volume(name);
    if (volume === undefined) return undefined;
    const decision = decideVolume(volume, provisionerName);
    const pvc = claimRefKey(volume);
    const log = operationLogger(logger, { op: 'delete', pv: name, ...(pvc === undefined ? {} : { pvc }) });
    try {
      switch (decision.action) {
        case 'skip':
          log.debug('nothing to do for the PV', { why: decision.reason });
          return undefined;
        case 'remove-finalizer':
          log.info(`${decision.reason}: dropping our finalizer and keeping the volume`);
          await this.removeFinalizer(volume, signal);
          return undefined;
        case 'add-finalizer':
          log.info('adding our finalizer so that deleting the PV first still removes the volume');
          await this.addFinalizer(volume, signal);
          return undefined;
        case 'delete':
          return await this.deleteVolume(volume, log, signal);
      }
    } catch (error) {
      if (signal.aborted) return undefined;
      log.warn('updating the PV failed; retrying with backoff', { error: describeError(error) });
      return { retry: 'backoff' };
    }
  }

  /** The informer saw the PV go: its deletion needs no memory any more. */
  forgetVolume(uid: string | undefined): void {
    if (uid !== undefined) this.deletions.delete(uid);
  }

  private noteDeletion(uid: string, state: 'volume-deleted' | 'pv-deleted'): void {
    if (uid === '') return;
    this.deletions.delete(uid);
    this.deletions.set(uid, state);
    // A PV whose delete event was missed (a relist after a watch gap) must not be remembered forever.
    if (this.deletions.size > MAX_REMEMBERED_DELETIONS) this.deletions.delete(this.deletions.keys().next().value!);
  }

  private async deleteVolume(volume: V1PersistentVolume, log: Logger, signal: AbortSignal): Promise<ProcessResult> {
    const { clock, events, kube, metrics, provisioner } = this.options;
    const name = volume.metadata?.name ?? '';
    const uid = volume.metadata?.uid ?? '';
    const progress = this.deletions.get(uid);
    if (progress === 'pv-deleted') {
      log.debug('already deleted; the cache has not caught up yet');
      return undefined;
    }
    if (progress === 'volume-deleted') {
      log.info('the volume is already deleted; finishing the PV');
      return this.finishDeletedVolume(volume, log, signal, () => undefined);
    }
    const className = volume.spec?.storageClassName ?? '';
    const started = clock.now();
    const done = (result: string): void => {
      metrics.deleteTotal.inc({ class: className, result });
      metrics.deleteDuration.observe({ class: className, result }, (clock.now() - started) / 1000);
    };

    // The PV controller's cache may lag: a claim that is still there must keep its volume (RELIABILITY #17).
    const ref = volume.spec?.claimRef;
    if (ref?.name !== undefined && ref.name !== '' && ref.namespace !== undefined && ref.namespace !== '') {
      let live: V1PersistentVolumeClaim | undefined;
      try {
        live = await kube.readClaim(ref.namespace, ref.name, signal);
      } catch (error) {
        if (signal.aborted) return undefined;
        log.warn('could not read the claim to confirm it is gone; retrying', { error: describeError(error) });
        done('transient');
        return { retry: 'backoff' };
      }
      if (live !== undefined && (ref.uid === undefined || ref.uid === '' || live.metadata?.uid === ref.uid)) {
        log.info('the claim still exists; not deleting its volume (retrying later)');
        done('claim-exists');
        return { retry: 'backoff' };
      }
    }

    if (!this.options.mayAct() || signal.aborted) {
      done('aborted');
      return retryUnlessAborted(signal);
    }
    log.info('deleting the volume');
    try {
      await provisioner.delete(volume, signal);
    } catch (error) {
      if (signal.aborted) {
        done('aborted');
        return undefined;
      }
      const kind = error instanceof DeleteError ? error.kind : 'transient';
      events.event(referenceTo(volume, 'PersistentVolume'), 'Warning', 'VolumeFailedDelete', errorMessage(error));
      log.warn(`deleting the volume failed (${kind}); retrying with backoff`, { error: describeError(error), kind });
      done(kind);
      return { retry: kind === 'final' ? 'slow' : 'backoff' };
    }

    this.noteDeletion(uid, 'volume-deleted');
    log.info('volume deleted; deleting the PV');
    return this.finishDeletedVolume(volume, log, signal, done);
  }

  /** Deletes the PV of a volume that is gone and drops our finalizer. */
  private async finishDeletedVolume(volume: V1PersistentVolume, log: Logger, signal: AbortSignal, done: (result: string) => void): Promise<ProcessResult> {
    const name = volume.metadata?.name ?? '';
    try {
      // False: the PV is gone, or its name now belongs to another object, whose finalizers are not ours to touch.
      if (await this.options.kube.deleteVolume(name, volume.metadata?.uid, signal)) await this.removeFinalizer(volume, signal);
    } catch (error) {
      if (signal.aborted) return undefined;
      log.warn('the volume is gone but the PV could not be deleted or finalized; retrying', { error: describeError(error) });
      done('pv-update-failed');
      return { retry: 'backoff' };
    }
    this.noteDeletion(volume.metadata?.uid ?? '', 'pv-deleted');
    log.info('PV deleted');
    done('success');
    return undefined;
  }

  /** JSON patch "test + remove" by index: never a whole-object update, and a concurrent change makes it re-read. */
  async removeFinalizer(volume: V1PersistentVolume, signal: AbortSignal): Promise<void> {
    const name = volume.metadata?.name ?? '';
    await this.patchWithRetry(name, volume, signal, (current) => {
      const index = (current.metadata?.finalizers ?? []).indexOf(PV_FINALIZER);
      if (index === -1) return undefined;
      return [
        { op: 'test', path: `/metadata/finalizers/${index}`, value: PV_FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${index}` },
      ];
    });
  }

  async addFinalizer(volume: V1PersistentVolume, signal: AbortSignal): Promise<void> {
    const name = volume.metadata?.name ?? '';
    await this.patchWithRetry(name, volume, signal, (current) => {
      const finalizers = current.metadata?.finalizers;
      if (finalizers?.includes(PV_FINALIZER) === true) return undefined;
      if (current.metadata?.deletionTimestamp != null) return undefined;
      return [
        { op: 'test', path: '/metadata/resourceVersion', value: current.metadata?.resourceVersion ?? '' },
        finalizers === undefined
          ? { op: 'add', path: '/metadata/finalizers', value: [PV_FINALIZER] }
          : { op: 'add', path: '/metadata/finalizers/-', value: PV_FINALIZER },
      ];
    });
  }

  private async patchWithRetry(
    name: string,
    initial: V1PersistentVolume,
    signal: AbortSignal,
    build: (current: V1PersistentVolume) => JsonPatchOperation[] | undefined,
  ): Promise<void> {
    const { kube } = this.options;
    let current: V1PersistentVolume | undefined = initial;
    for (let attempt = 1; ; attempt++) {
      const patch = build(current);
      if (patch === undefined) return;
      try {
        await kube.patchVolume(name, patch, signal);
        return;
      } catch (error) {
        if (isNotFound(error)) return;
        if (!isConflict(error) || attempt >= this.tuning.patchAttempts) throw error;
      }
      current = await kube.readVolume(name, signal);
      if (current === undefined) return;
    }
  }

  /**
   * Deletes volumes the provisioner made that provably never had a PV and whose claim is gone (a crash between
   * creating the volume and saving its PV), and finishes deletes that were interrupted. Never takes a volume on the
   * evidence "no PV now": one whose PV may have existed is kept and reported. Each location is scanned on its own,
   * with its own timeout, so one unreachable cluster or missing pool stops no other. Returns how many were collected.
   */
  async collectOrphans(signal: AbortSignal): Promise<number> {
    const { cache, logger, provisioner, provisionerName } = this.options;
    if (provisioner.volumeLocations === undefined || provisioner.listOwnedVolumes === undefined) return 0;
    if (!cache.synced()) {
      logger.debug('orphan collection skipped: caches not synced');
      return 0;
    }
    const classes = cache.storageClasses().filter((c) => c.provisioner === provisionerName);
    if (classes.length === 0 || !this.options.mayAct()) return 0;
    const log = operationLogger(logger, { op: 'collect-orphans' });
    const scans = await Promise.all(provisioner.volumeLocations(classes).map((location) => this.scanLocation(location, log, signal)));
    const claimUids = new Set(cache.claims().map((c) => c.metadata?.uid ?? ''));
    let collected = 0;
    let unsure = 0;
    for (const owned of scans) {
      for (const volume of owned ?? []) {
        if (signal.aborted || !this.options.mayAct()) return collected;
        const outcome = await this.collectIfOrphaned(volume, claimUids, log, signal);
        if (outcome === 'collected') collected++;
        if (outcome === 'unsure') unsure++;
      }
    }
    // Only a complete pass may say how many there are.
    if (scans.every((owned) => owned !== undefined)) this.options.metrics.orphansUnsure.set(unsure);
    return collected;
  }

  /** The owned volumes at one location, or undefined when that location could not be scanned (logged, counted). */
  private async scanLocation(location: VolumeLocation, log: Logger, signal: AbortSignal): Promise<OwnedVolume[] | undefined> {
    const { metrics, provisioner } = this.options;
    const scanSignal = AbortSignal.any([signal, AbortSignal.timeout(this.tuning.orphanScanTimeoutMs)]);
    try {
      const owned = await provisioner.listOwnedVolumes!(location, scanSignal);
      metrics.orphanScans.inc({ location: location.id, result: 'ok' });
      return owned;
    } catch (error) {
      if (signal.aborted) return undefined;
      metrics.orphanScans.inc({ location: location.id, result: 'failed' });
      const timedOut = scanSignal.aborted ? ` (timed out after ${this.tuning.orphanScanTimeoutMs} ms)` : '';
      log.warn(`scanning ${location.id} for orphaned volumes failed${timedOut}; other locations go on, this one is retried at the next scan`, {
        location: location.id,
        error: describeError(error),
      });
      return undefined;
    }
  }

  private async collectIfOrphaned(volume: OwnedVolume, claimUids: Set<string>, log: Logger, signal: AbortSignal): Promise<'collected' | 'kept' | 'unsure'> {
    const { cache, kube, metrics, provisioner } = this.options;
    if (this.provisioning.has(volume.pvName)) return 'kept';
    if (cache.volume(volume.pvName) !== undefined) {
      // A volume made by an earlier version that could not record its PV: record it now, or a deleted Retain PV
      // would leave it looking like a crash leftover.
      if (volume.state === 'unrecorded' && provisioner.recordVolumeHasPv !== undefined) {
        try {
          await provisioner.recordVolumeHasPv(volume, signal);
          log.info('recorded on the volume that its PV exists', { volume: volume.id, pv: volume.pvName });
        } catch (error) {
          if (!signal.aborted) log.warn('could not record on the volume that its PV exists; retrying at the next scan', { volume: volume.id, error: describeError(error) });
        }
      }
      return 'kept';
    }
    if (claimUids.has(volume.claimUid)) return 'kept';
    if (volume.state === 'pv-may-exist') {
      log.warn('a volume has no PV and no claim, but a PV may have existed (a Retain PV deleted by hand leaves its volume on purpose); keeping it, never collecting it', {
        volume: volume.id,
        pv: volume.pvName,
        pvc: `${volume.claimNamespace}/${volume.claimName}`,
      });
      return 'unsure';
    }
    if (volume.claimNamespace === '' || volume.claimName === '' || volume.claimUid === '' || provisioner.deleteOwnedVolume === undefined) return 'kept';
    try {
      const claim = await kube.readClaim(volume.claimNamespace, volume.claimName, signal);
      if (claim !== undefined && claim.metadata?.uid === volume.claimUid) return 'kept';
      if ((await kube.readVolume(volume.pvName, signal)) !== undefined) return 'kept';
    } catch (error) {
      if (!signal.aborted) log.warn('could not confirm that a volume is orphaned; keeping it for now', { volume: volume.id, error: describeError(error) });
      return 'kept';
    }
    if (this.provisioning.has(volume.pvName) || !this.options.mayAct() || signal.aborted) return 'kept';
    try {
      await provisioner.deleteOwnedVolume(volume, signal);
      metrics.orphansCollected.inc({ result: 'deleted' });
      log.info(volume.state === 'deleting' ? 'finished an interrupted delete' : 'collected an orphaned volume: it never had a PV, and its claim is gone', {
        volume: volume.id,
        pv: volume.pvName,
        pvc: `${volume.claimNamespace}/${volume.claimName}`,
        claimUid: volume.claimUid,
      });
      return 'collected';
    } catch (error) {
      if (signal.aborted) return 'kept';
      metrics.orphansCollected.inc({ result: 'failed' });
      log.warn('could not delete an orphaned volume; retrying at the next scan', { volume: volume.id, error: describeError(error) });
      return 'kept';
    }
  }
}

function claimRefKey(volume: V1PersistentVolume): string | undefined {
  const ref = volume.spec?.claimRef;
  return ref?.name === undefined ? undefined : `${ref.namespace ?? ''}/${ref.name}`;
}

