// The provisioning loop: claims -> volumes and PVs, released PVs -> deleted volumes, and orphan collection. Its
// informer handlers only enqueue keys; the Reconciler decides from the caches when a key comes up.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { type Logger, describeError } from '../../logger.js';
import { type Clock, sleep } from '../../kube/clock.js';
import { type Informer, objectKey } from '../../kube/informer.js';
import { type ControlLoop, LoopKeys } from '../loop.js';
import { ANN_BETA_STORAGE_PROVISIONER, ANN_PROVISIONED_BY, ANN_STORAGE_PROVISIONER, claimClassName } from './decisions.js';
import { type Reconciler, claimQueueKey, volumeQueueKey } from './reconciler.js';

export interface ProvisionLoopDeps {
  provisionerName: string;
  /** --take-over-provisioner: the retired provisioners whose Released Delete PVs we delete too. */
  takeOverProvisioners?: readonly string[];
  workers: number;
  claims: Informer<V1PersistentVolumeClaim>;
  volumes: Informer<V1PersistentVolume>;
  classes: Informer<V1StorageClass>;
  reconciler: Reconciler;
  logger: Logger;
  clock: Clock;
  orphanScanPeriodMs: number;
}

export function createProvisionLoop(deps: ProvisionLoopDeps): ControlLoop {
  const { claims, classes, logger, provisionerName, reconciler, volumes } = deps;
  const keys = new LoopKeys();
  const takeOver = deps.takeOverProvisioners ?? [];

  const isOurClaim = (claim: V1PersistentVolumeClaim): boolean => {
    const annotations = claim.metadata?.annotations ?? {};
    return (annotations[ANN_STORAGE_PROVISIONER] ?? annotations[ANN_BETA_STORAGE_PROVISIONER]) === provisionerName;
  };
  const onClaim = (claim: V1PersistentVolumeClaim): void => {
    if (isOurClaim(claim) && (claim.spec?.volumeName ?? '') === '') keys.add(claimQueueKey(objectKey(claim)));
  };
  claims.addHandlers({
    onAdd: onClaim,
    onUpdate: onClaim,
    onResync: onClaim,
    onDelete: (claim) => keys.forget(claimQueueKey(objectKey(claim))),
  });
  // Other provisioners' PVs never need us; leaving them out keeps resyncs cheap in big clusters.
  const onVolume = (volume: V1PersistentVolume): void => {
    const by = volume.metadata?.annotations?.[ANN_PROVISIONED_BY];
    if (by === provisionerName || (by !== undefined && takeOver.includes(by))) keys.add(volumeQueueKey(objectKey(volume)));
  };
  volumes.addHandlers({
    onAdd: onVolume,
    onUpdate: onVolume,
    onResync: onVolume,
    onDelete: (volume) => {
      keys.forget(volumeQueueKey(objectKey(volume)));
      reconciler.forgetVolume(volume.metadata?.uid);
      // A claim whose PV vanished before binding needs a new one.
      const ref = volume.spec?.claimRef;
      if (ref?.name !== undefined && ref.namespace !== undefined) {
        const claim = claims.get(`${ref.namespace}/${ref.name}`);
        if (claim !== undefined) onClaim(claim);
      }
    },
  });
  // Claims that waited for their class (or its recreation) go again when it appears or changes.
  const onClass = (storageClass: V1StorageClass): void => {
    const name = storageClass.metadata?.name;
    for (const claim of claims.list()) if (claimClassName(claim) === name) onClaim(claim);
  };
  classes.addHandlers({ onAdd: onClass, onUpdate: onClass });

  return {
    name: 'provision',
    workers: deps.workers,
    process: (key, signal) => reconciler.process(key, signal),
    start(sink) {
      keys.attach(sink);
      for (const claim of claims.list()) onClaim(claim);
      for (const volume of volumes.list()) onVolume(volume);
      logger.info('provisioning loop started', { claims: claims.size, volumes: volumes.size, storageClasses: classes.size });
    },
    stop: () => keys.attach(undefined),
    async background(signal) {
      while (!signal.aborted) {
        try {
          const collected = await reconciler.collectOrphans(signal);
          if (collected > 0) logger.info('orphan collection finished', { op: 'collect-orphans', collected });
          else logger.debug('orphan collection pass found nothing to collect', { op: 'collect-orphans' });
        } catch (error) {
          logger.warn('orphan collection failed', { op: 'collect-orphans', error: describeError(error) });
        }
        try {
          await sleep(deps.clock, deps.orphanScanPeriodMs, signal);
        } catch {
          return;
        }
      }
    },
  };
}
