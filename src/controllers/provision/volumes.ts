// Released PVs -> deleted volumes (never while the claim lives), and our finalizer kept in step with the policy.
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { type JsonPatchOperation, isConflict, isNotFound } from '../../kube/client.js';
import { referenceTo } from '../../kube/events.js';
import type { ProcessResult } from '../../kube/workqueue.js';
import { type Logger, describeError, operationLogger } from '../../logger.js';
import { startOperation } from '../metrics.js';
import { PV_FINALIZER, decideVolume, hasOurFinalizer } from './decisions.js';
import { DeleteError } from './errors.js';
import { type ReconcilerParts, errorMessage, retryUnlessAborted } from './reconciler.js';

const MAX_REMEMBERED_DELETIONS = 10_000;

export class VolumeSync {
  /**
   * How far the deletion of a PV (by uid) got. The informer reports the PV's own updates (deletion timestamp,
   * finalizer removed) after the delete finished, and a cache that lags shows it Released once more: without this the
   * volume was deleted twice. Forgotten when the informer sees the PV go (forgetVolume), and bounded.
   */
  private readonly deletions = new Map<string, 'volume-deleted' | 'pv-deleted'>();

  constructor(private readonly options: ReconcilerParts) {}

  async syncVolume(name: string, signal: AbortSignal): Promise<ProcessResult> {
    const { cache, logger, provisionerName } = this.options;
    const volume = cache.volume(name);
    if (volume === undefined) return undefined;
    const decision = decideVolume(volume, provisionerName, this.options.takeOverProvisioners ?? []);
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
    const uid = volume.metadata?.uid ?? '';
    const progress = this.deletions.get(uid);
    if (progress === 'pv-deleted') {
      // A finalizer the cache did not show yet when the PV was deleted (added just before its claim went) holds the
      // PV forever unless it is dropped here.
      if (hasOurFinalizer(volume) && volume.metadata?.deletionTimestamp != null) {
        log.info('the PV is deleted but still carries our finalizer; dropping it');
        try {
          await this.removeFinalizer(volume, signal);
        } catch (error) {
          if (signal.aborted) return undefined;
          log.warn('dropping our finalizer failed; retrying', { error: describeError(error) });
          return { retry: 'backoff' };
        }
        return undefined;
      }
      log.debug('already deleted; the cache has not caught up yet');
      return undefined;
    }
    if (progress === 'volume-deleted') {
      log.info('the volume is already deleted; finishing the PV');
      return this.finishDeletedVolume(volume, log, signal, () => undefined);
    }
    const className = volume.spec?.storageClassName ?? '';
    const done = startOperation(clock, metrics.deleteTotal, metrics.deleteDuration, { class: className });

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
      // A PV of the retired provisioner keeps its admin credentials only in its class: the provisioner reads them there.
      const storageClass = this.options.cache.storageClass(className);
      await provisioner.delete(volume, signal, storageClass === undefined ? {} : { storageClass });
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

  /**
   * Drops our finalizer from the PV of a volume that is gone, then deletes the PV. In this order the finalizer comes
   * off a PV nothing else is changing: after the delete, the PV protection controller drops its own finalizer at the
   * same moment, shifting ours, and every other patch was refused and read again (0.8 extra PATCH and GET per claim).
   * The finalizer has done its job once the volume is gone; a crash in between leaves a PV whose delete is retried.
   */
  private async finishDeletedVolume(volume: V1PersistentVolume, log: Logger, signal: AbortSignal, done: (result: string) => void): Promise<ProcessResult> {
    const name = volume.metadata?.name ?? '';
    try {
      await this.removeFinalizer(volume, signal);
      // The uid precondition: a PV that took this name meanwhile is not ours to delete.
      await this.options.kube.deleteVolume(name, volume.metadata?.uid, signal);
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
    const uid = volume.metadata?.uid;
    await this.patchWithRetry(name, volume, signal, (current) => {
      // Another object that took the name: its finalizers are not ours to touch.
      if (current.metadata?.uid !== uid) return undefined;
      const index = (current.metadata?.finalizers ?? []).indexOf(PV_FINALIZER);
      if (index === -1) return undefined;
      return [
        ...(uid === undefined ? [] : [{ op: 'test' as const, path: '/metadata/uid', value: uid }]),
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
        if (!isConflict(error) || attempt >= this.options.tuning.patchAttempts) throw error;
      }
      current = await kube.readVolume(name, signal);
      if (current === undefined) return;
    }
  }
}

function claimRefKey(volume: V1PersistentVolume): string | undefined {
  const ref = volume.spec?.claimRef;
  return ref?.name === undefined ? undefined : `${ref.namespace ?? ''}/${ref.name}`;
}
