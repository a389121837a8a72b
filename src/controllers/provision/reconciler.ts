// What the controller does for one key: provision for a claim, delete or finalize a volume, and collect orphans.
// Reads come from the informer caches; the few live reads are the ones that guard against deleting something alive.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import type { Clock } from '../../kube/clock.js';
import type { KubeFacade } from '../../kube/client.js';
import type { EventRecorder } from '../../kube/events.js';
import type { ProcessResult } from '../../kube/workqueue.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../metrics.js';
import { ClaimSync } from './claims.js';
import type { ClaimDecision } from './decisions.js';
import { OrphanCollector } from './orphans.js';
import type { Provisioner } from './provisioner.js';
import { VolumeSync } from './volumes.js';

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
  /** --take-over-provisioner: the retired provisioners whose Released Delete PVs we delete too. */
  takeOverProvisioners?: readonly string[];
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

/** What each part of the reconciler is given: the options, with every tuning value set. */
export type ReconcilerParts = Omit<ReconcilerOptions, 'tuning'> & { tuning: ReconcilerTuning };

const CLAIM_PREFIX = 'claim:';
const VOLUME_PREFIX = 'volume:';
export const claimQueueKey = (key: string): string => CLAIM_PREFIX + key;
export const volumeQueueKey = (name: string): string => VOLUME_PREFIX + name;

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Not acting now. While the work signal is live a lease renewal may still succeed, so the key stays queued; once it
 * has aborted, the next leader relists.
 */
export function retryUnlessAborted(signal: AbortSignal): ProcessResult {
  return signal.aborted ? undefined : { retry: 'backoff' };
}

export class Reconciler {
  private readonly claims: ClaimSync;
  private readonly volumes: VolumeSync;
  private readonly orphans: OrphanCollector;

  private readonly logger: Logger;

  constructor(options: ReconcilerOptions) {
    this.logger = options.logger;
    const parts: ReconcilerParts = { ...options, tuning: { ...DEFAULT_RECONCILER_TUNING, ...options.tuning } };
    this.claims = new ClaimSync(parts);
    this.volumes = new VolumeSync(parts);
    this.orphans = new OrphanCollector(parts, (pvName) => this.claims.isProvisioning(pvName));
  }

  /** Entry point for the work queue. */
  process(queueKey: string, signal: AbortSignal): Promise<ProcessResult> {
    if (queueKey.startsWith(CLAIM_PREFIX)) return this.syncClaim(queueKey.slice(CLAIM_PREFIX.length), signal);
    if (queueKey.startsWith(VOLUME_PREFIX)) return this.syncVolume(queueKey.slice(VOLUME_PREFIX.length), signal);
    this.logger.error('unknown work queue key', { item: queueKey });
    return Promise.resolve(undefined);
  }

  isProvisioning(pvName: string): boolean {
    return this.claims.isProvisioning(pvName);
  }

  decide(claim: V1PersistentVolumeClaim): ClaimDecision {
    return this.claims.decide(claim);
  }

  syncClaim(key: string, signal: AbortSignal): Promise<ProcessResult> {
    return this.claims.syncClaim(key, signal);
  }

  syncVolume(name: string, signal: AbortSignal): Promise<ProcessResult> {
    return this.volumes.syncVolume(name, signal);
  }

  /** The informer saw the PV go: its deletion needs no memory any more. */
  forgetVolume(uid: string | undefined): void {
    this.volumes.forgetVolume(uid);
  }

  removeFinalizer(volume: V1PersistentVolume, signal: AbortSignal): Promise<void> {
    return this.volumes.removeFinalizer(volume, signal);
  }

  addFinalizer(volume: V1PersistentVolume, signal: AbortSignal): Promise<void> {
    return this.volumes.addFinalizer(volume, signal);
  }

  collectOrphans(signal: AbortSignal): Promise<number> {
    return this.orphans.collectOrphans(signal);
  }
}
