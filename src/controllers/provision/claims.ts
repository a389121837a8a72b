// Claims -> volumes: decide, provision through the storage, save the PV (adopting one a crash or a timeout left),
// and clean up only what provably has no PV.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { backoffDelay, sleep } from '../../kube/clock.js';
import { isAlreadyExists, isDefiniteRefusal, isRetryable } from '../../kube/client.js';
import { referenceTo } from '../../kube/events.js';
import type { ProcessResult } from '../../kube/workqueue.js';
import { type Logger, describeError, operationLogger } from '../../logger.js';
import { startOperation } from '../metrics.js';
import { ANN_PROVISIONED_BY, claimClassName, claimKey, decideClaim, type ClaimDataSource, type ClaimDecision } from './decisions.js';
import type { DataSource } from './provisioner.js';
import { ProvisionError } from './errors.js';
import { type ReconcilerParts, errorMessage, retryUnlessAborted } from './reconciler.js';
import { stampVolume } from './stamp.js';

type SaveOutcome =
  | { result: 'saved' | 'adopted' | 'aborted' }
  | { result: 'conflict'; message: string }
  | { result: 'failed'; error: unknown };

export class ClaimSync {
  /** PV names whose provisioning is running now: orphan collection keeps off them. */
  private readonly provisioning = new Set<string>();

  constructor(private readonly options: ReconcilerParts) {}

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
        return this.provision(claim, decision.pvName, decision.storageClass, decision.selectedNode, decision.dataSource, signal);
    }
  }

  /**
   * The volume or snapshot a claim's data source names, ready to copy; a string says why not yet (or not at all):
   * Kubernetes lets a claim name a source before it exists, so every such case is retried.
   */
  private async resolveDataSource(claim: V1PersistentVolumeClaim, source: ClaimDataSource, signal: AbortSignal): Promise<DataSource | string> {
    const { cache, kube, provisionerName } = this.options;
    const namespace = claim.metadata?.namespace ?? '';
    if (source.kind === 'PersistentVolumeClaim') {
      const what = `data source PersistentVolumeClaim "${namespace}/${source.name}"`;
      const sourceClaim = cache.claim(`${namespace}/${source.name}`);
      if (sourceClaim === undefined) return `${what} not found`;
      const pvName = sourceClaim.spec?.volumeName ?? '';
      if (sourceClaim.status?.phase !== 'Bound' || pvName === '') return `${what} is not bound yet`;
      const volume = cache.volume(pvName);
      if (volume === undefined) return `${what} is bound to PV "${pvName}", which is not in the cache yet`;
      if (volume.metadata?.annotations?.[ANN_PROVISIONED_BY] !== provisionerName) {
        return `${what} is bound to PV "${pvName}", which was not provisioned by ${provisionerName}: only our own volumes can be cloned`;
      }
      return { kind: 'volume', volume };
    }
    const what = `data source VolumeSnapshot "${namespace}/${source.name}"`;
    const snapshot = await kube.readSnapshot(namespace, source.name, signal);
    if (snapshot === undefined) return `${what} not found`;
    const contentName = snapshot.status?.boundVolumeSnapshotContentName ?? '';
    if (snapshot.status?.readyToUse !== true || contentName === '') return `${what} is not ready to use yet`;
    const content = await kube.readSnapshotContent(contentName, signal);
    const snapshotHandle = content?.status?.snapshotHandle ?? '';
    if (content === undefined || snapshotHandle === '') return `${what}: its VolumeSnapshotContent "${contentName}" has no snapshot handle yet`;
    const restoreSize = content.status?.restoreSize;
    return { kind: 'snapshot', record: content.metadata?.annotations ?? {}, snapshotHandle, restoreSizeBytes: typeof restoreSize === 'number' ? restoreSize : undefined };
  }

  private async provision(
    claim: V1PersistentVolumeClaim,
    pvName: string,
    storageClass: V1StorageClass,
    selectedNode: string | undefined,
    dataSource: ClaimDataSource | undefined,
    signal: AbortSignal,
  ): Promise<ProcessResult> {
    const { clock, events, metrics, provisioner, provisionerName } = this.options;
    const className = storageClass.metadata?.name ?? '';
    const log = operationLogger(this.options.logger, { op: 'provision', pvc: claimKey(claim), pv: pvName, storageClass: className });
    const claimRef = referenceTo(claim, 'PersistentVolumeClaim');
    const done = startOperation(clock, metrics.provisionTotal, metrics.provisionDuration, { class: className });
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
        const source = dataSource === undefined ? undefined : await this.resolveDataSource(claim, dataSource, signal);
        if (typeof source === 'string') throw new ProvisionError('transient', 'DataSourceNotReady', source);
        built = await provisioner.provision({ pvName, claim, storageClass, ...(selectedNode === undefined ? {} : { selectedNode }), ...(source === undefined ? {} : { source }) }, signal);
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
    const attempts = Math.max(1, this.options.tuning.saveAttempts);
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
            await sleep(clock, backoffDelay(attempt, this.options.tuning.saveRetryBaseMs, this.options.tuning.saveRetryBaseMs * 16), signal);
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
}
