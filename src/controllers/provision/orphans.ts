// Orphan collection: volumes that provably never had a PV and whose claim is gone, and interrupted deletes.
import type { OwnedVolume, VolumeLocation } from './provisioner.js';
import { type Logger, describeError, operationLogger } from '../../logger.js';
import type { ReconcilerParts } from './reconciler.js';

/**
 * What orphan collection may do with an owned volume, from the cache's view (the first check; an 'orphan' is read
 * live again before it is deleted). Shared with `rbd-provisioner audit`, so both follow exactly these rules.
 * has-pv: its PV exists; claim-exists: its claim (same uid) exists; unsure: no PV and no claim, but a PV may have
 * existed (never collected); unknown-claim: the volume names no claim (never collected); orphan: provably never had
 * a PV and its claim is gone; deleting: a delete that was decided but not finished; half-made: what a create
 * interrupted half-way left (no claim has the uid in its name; a live read confirms no PV has its name).
 */
export type OrphanVerdict = 'has-pv' | 'claim-exists' | 'unsure' | 'unknown-claim' | 'orphan' | 'deleting' | 'half-made';

export function orphanVerdict(volume: OwnedVolume, pvExists: boolean, claimUidExists: boolean): OrphanVerdict {
  if (pvExists) return 'has-pv';
  if (claimUidExists) return 'claim-exists';
  if (volume.state === 'pv-may-exist') return 'unsure';
  if (volume.state === 'deleting') return 'deleting';
  if (volume.state === 'half-made') return volume.claimUid === '' ? 'unknown-claim' : 'half-made';
  if (volume.claimNamespace === '' || volume.claimName === '' || volume.claimUid === '') return 'unknown-claim';
  return 'orphan';
}

export class OrphanCollector {
  constructor(
    private readonly options: ReconcilerParts,
    /** Whether a volume's provisioning is running now: it is never an orphan then. */
    private readonly isProvisioning: (pvName: string) => boolean,
  ) {}

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
    const { clock, metrics, provisioner } = this.options;
    // One controller, strongly held, fed by both causes: a signal made by AbortSignal.any() can be garbage-collected
    // with its listeners while the scan still waits on it, and then the timeout would never reach the scan.
    const scan = new AbortController();
    const forwardAbort = (): void => scan.abort(signal.reason);
    signal.addEventListener('abort', forwardAbort, { once: true });
    const timer = clock.setTimeout(() => scan.abort(new Error(`timed out after ${this.options.tuning.orphanScanTimeoutMs} ms`)), this.options.tuning.orphanScanTimeoutMs);
    const scanSignal = scan.signal;
    try {
      const owned = await provisioner.listOwnedVolumes!(location, scanSignal);
      metrics.orphanScans.inc({ location: location.id, result: 'ok' });
      return owned;
    } catch (error) {
      if (signal.aborted) return undefined;
      metrics.orphanScans.inc({ location: location.id, result: 'failed' });
      const timedOut = scanSignal.aborted ? ` (timed out after ${this.options.tuning.orphanScanTimeoutMs} ms)` : '';
      log.warn(`scanning ${location.id} for orphaned volumes failed${timedOut}; other locations go on, this one is retried at the next scan`, {
        location: location.id,
        error: describeError(error),
      });
      return undefined;
    } finally {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', forwardAbort);
    }
  }

  private async collectIfOrphaned(volume: OwnedVolume, claimUids: Set<string>, log: Logger, signal: AbortSignal): Promise<'collected' | 'kept' | 'unsure'> {
    const { cache, kube, metrics, provisioner } = this.options;
    if (this.isProvisioning(volume.pvName)) return 'kept';
    const verdict = orphanVerdict(volume, cache.volume(volume.pvName) !== undefined, claimUids.has(volume.claimUid));
    if (verdict === 'has-pv') {
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
    if (verdict === 'claim-exists') return 'kept';
    if (verdict === 'unsure') {
      log.warn('a volume has no PV and no claim, but a PV may have existed (a Retain PV deleted by hand leaves its volume on purpose); keeping it, never collecting it', {
        volume: volume.id,
        pv: volume.pvName,
        pvc: `${volume.claimNamespace}/${volume.claimName}`,
      });
      return 'unsure';
    }
    if (provisioner.deleteOwnedVolume === undefined) return 'kept';
    // A delete that was decided (a trash entry marked deleting: a volume's, or a snapshot image's, which has no claim)
    // is finished whatever claims exist now; anything else must provably have lost its claim and its PV.
    if (verdict === 'half-made') {
      // Only the uid in its name ties it to a claim: the cache says no claim has it, and no PV of its name exists.
      try {
        if ((await kube.readVolume(volume.pvName, signal)) !== undefined) return 'kept';
      } catch (error) {
        if (!signal.aborted) log.warn('could not confirm that a half-made volume is orphaned; keeping it for now', { volume: volume.id, error: describeError(error) });
        return 'kept';
      }
    } else if (verdict !== 'deleting') {
      if (verdict === 'unknown-claim') return 'kept';
      try {
        const claim = await kube.readClaim(volume.claimNamespace, volume.claimName, signal);
        if (claim !== undefined && claim.metadata?.uid === volume.claimUid) return 'kept';
        if ((await kube.readVolume(volume.pvName, signal)) !== undefined) return 'kept';
      } catch (error) {
        if (!signal.aborted) log.warn('could not confirm that a volume is orphaned; keeping it for now', { volume: volume.id, error: describeError(error) });
        return 'kept';
      }
    }
    if (this.isProvisioning(volume.pvName) || !this.options.mayAct() || signal.aborted) return 'kept';
    try {
      await provisioner.deleteOwnedVolume(volume, signal);
      metrics.orphansCollected.inc({ result: 'deleted' });
      log.info(COLLECTED[volume.state], {
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

const COLLECTED: Record<OwnedVolume['state'], string> = {
  deleting: 'finished an interrupted delete',
  unrecorded: 'collected an orphaned volume: it never had a PV, and its claim is gone',
  'half-made': 'cleared a volume a create left half-made: it never held data, and no claim has its uid',
  'pv-may-exist': 'never collected',
};
