// The attach loop: kube-controller-manager's attach-detach controller creates a VolumeAttachment for every Pod volume
// of an attach-required CSI driver (ceph-csi's rbd.csi.ceph.com is one) and the kubelet waits for status.attached.
// ceph-csi has no ControllerPublish, so for the PVs we provisioned we do what external-attacher does for such a
// driver: mark the attachment attached (see decisions.ts for why no finalizer). Informer handlers only enqueue
// attachment names; process() decides from the caches.
import type { V1PersistentVolume, V1VolumeAttachment } from '@kubernetes/client-node';
import type { Clock } from '../../kube/clock.js';
import { type JsonPatchOperation, type KubeFacade, isConflict, isNotFound } from '../../kube/client.js';
import { type EventRecorder, referenceTo } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import type { ProcessResult } from '../../kube/workqueue.js';
import { type Logger, describeError, operationLogger } from '../../logger.js';
import { type ControlLoop, LoopKeys } from '../loop.js';
import { type Metrics, startOperation } from '../metrics.js';
import { attachmentVolumeName, decideAttachment } from './decisions.js';

/**
 * What must be in place on the cluster side before a node stages one of our volumes (the RBD side keeps the node
 * credentials the PV names up to date). Called at every attach, right before the kubelet stages the volume.
 */
export interface NodeAccess {
  prepare(volume: V1PersistentVolume, signal: AbortSignal): Promise<void>;
}

export interface AttachLoopDeps {
  provisionerName: string;
  workers: number;
  attachments: Informer<V1VolumeAttachment>;
  volumes: Informer<V1PersistentVolume>;
  kube: Pick<KubeFacade, 'patchAttachmentStatus' | 'patchAttachment'>;
  events: EventRecorder;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  nodeAccess?: NodeAccess;
}

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export function createAttachLoop(deps: AttachLoopDeps): ControlLoop {
  const { attachments, clock, events, kube, logger, metrics, provisionerName, volumes } = deps;
  const keys = new LoopKeys();
  /**
   * PV name -> names of the attachments for it, so that a PV the cache learns of after its attachment (or one that
   * becomes ours) brings its attachments back. An attachment's source is immutable.
   */
  const byVolume = new Map<string, Set<string>>();

  const nameOf = (attachment: V1VolumeAttachment): string => attachment.metadata?.name ?? '';
  const decide = (attachment: V1VolumeAttachment) => {
    const pvName = attachmentVolumeName(attachment);
    return decideAttachment(attachment, pvName === undefined ? undefined : volumes.get(pvName), provisionerName);
  };

  const onAttachment = (attachment: V1VolumeAttachment): void => {
    const name = nameOf(attachment);
    const pvName = attachmentVolumeName(attachment);
    if (pvName !== undefined) {
      let names = byVolume.get(pvName);
      if (names === undefined) byVolume.set(pvName, (names = new Set()));
      names.add(name);
    }
    // Another driver's attachments, and ours that need nothing, never reach the queue.
    if (decide(attachment).action !== 'skip') keys.add(name);
  };
  attachments.addHandlers({
    onAdd: onAttachment,
    onUpdate: onAttachment,
    onResync: onAttachment,
    onDelete: (attachment) => {
      const name = nameOf(attachment);
      const pvName = attachmentVolumeName(attachment);
      const names = pvName === undefined ? undefined : byVolume.get(pvName);
      names?.delete(name);
      if (pvName !== undefined && names?.size === 0) byVolume.delete(pvName);
      keys.forget(name);
    },
  });
  const onVolume = (volume: V1PersistentVolume): void => {
    for (const name of byVolume.get(volume.metadata?.name ?? '') ?? []) {
      const attachment = attachments.get(name);
      if (attachment !== undefined) onAttachment(attachment);
    }
  };
  volumes.addHandlers({ onAdd: onVolume, onUpdate: onVolume });

  async function attach(attachment: V1VolumeAttachment, log: Logger, signal: AbortSignal): Promise<ProcessResult> {
    const done = startOperation(clock, metrics.attachTotal, metrics.attachDuration, {});
    if (signal.aborted) {
      done('aborted');
      return undefined;
    }
    await prepareNodeAccess(attachment, log, signal);
    try {
      // As external-attacher's markAsAttached: attached, and no error or metadata of an earlier attempt.
      await kube.patchAttachmentStatus(nameOf(attachment), { status: { attached: true, attachError: null, attachmentMetadata: null } }, signal);
    } catch (error) {
      if (signal.aborted) {
        done('aborted');
        return undefined;
      }
      if (isNotFound(error)) {
        log.info('the VolumeAttachment is gone; nothing to attach');
        done('gone');
        return undefined;
      }
      log.warn('marking the VolumeAttachment attached failed; retrying with backoff', { error: describeError(error) });
      events.event(referenceTo(attachment, 'VolumeAttachment', 'storage.k8s.io/v1'), 'Warning', 'AttachFailed', `marking the attachment attached failed: ${errorMessage(error)}`);
      done('failed');
      return { retry: 'backoff' };
    }
    log.info('marked the VolumeAttachment attached (ceph-csi has nothing to publish; the node plugin maps the image)');
    done('success');
    return undefined;
  }

  /**
   * Best effort: what the node needs was in place when the PV was made (a key rotated since is refreshed here). A
   * failure is reported and does not hold the attach up, since what the PV names may still work.
   */
  async function prepareNodeAccess(attachment: V1VolumeAttachment, log: Logger, signal: AbortSignal): Promise<void> {
    const pvName = attachmentVolumeName(attachment);
    const volume = pvName === undefined ? undefined : volumes.get(pvName);
    if (deps.nodeAccess === undefined || volume === undefined) return;
    try {
      await deps.nodeAccess.prepare(volume, signal);
    } catch (error) {
      if (signal.aborted) return;
      log.warn('could not bring the node credentials up to date; attaching with what the PV names', { error: describeError(error) });
      events.event(referenceTo(volume, 'PersistentVolume'), 'Warning', 'NodeCredentialsNotRefreshed', `before attaching to node ${attachment.spec?.nodeName ?? ''}: ${errorMessage(error)}`);
    }
  }

  async function detach(attachment: V1VolumeAttachment, finalizer: string, log: Logger, signal: AbortSignal): Promise<ProcessResult> {
    const name = nameOf(attachment);
    const done = startOperation(clock, metrics.detachTotal, metrics.detachDuration, {});
    if (signal.aborted) {
      done('aborted');
      return undefined;
    }
    try {
      // As external-attacher's markAsDetached: the status first, then the finalizer (not part of the status).
      if (attachment.status?.attached === true) {
        await kube.patchAttachmentStatus(name, { status: { attached: false, detachError: null, attachmentMetadata: null } }, signal);
      }
      const index = (attachment.metadata?.finalizers ?? []).indexOf(finalizer);
      const patch: JsonPatchOperation[] = [
        { op: 'test', path: `/metadata/finalizers/${index}`, value: finalizer },
        { op: 'remove', path: `/metadata/finalizers/${index}` },
      ];
      await kube.patchAttachment(name, patch, signal);
    } catch (error) {
      if (signal.aborted) {
        done('aborted');
        return undefined;
      }
      if (isNotFound(error)) {
        log.info('the VolumeAttachment is gone already');
        done('gone');
        return undefined;
      }
      if (isConflict(error)) {
        // The finalizers moved under us: the cache brings the new version, and with it this key again.
        log.info('the VolumeAttachment changed while we removed the finalizer; retrying on its current version');
        done('conflict');
        return { retry: 'backoff' };
      }
      log.warn('marking the VolumeAttachment detached failed; retrying with backoff', { error: describeError(error) });
      events.event(referenceTo(attachment, 'VolumeAttachment', 'storage.k8s.io/v1'), 'Warning', 'DetachFailed', `removing the attacher finalizer failed: ${errorMessage(error)}`);
      done('failed');
      return { retry: 'backoff' };
    }
    log.info('marked the VolumeAttachment detached and removed the attacher finalizer; the API server deletes it now');
    done('success');
    return undefined;
  }

  return {
    name: 'attach',
    workers: deps.workers,
    async process(name, signal) {
      const attachment = attachments.get(name);
      if (attachment === undefined) return undefined;
      const decision = decide(attachment);
      const pv = attachmentVolumeName(attachment);
      const log = operationLogger(logger, {
        op: decision.action === 'detach' ? 'detach' : 'attach',
        attachment: name,
        node: attachment.spec?.nodeName,
        ...(pv === undefined ? {} : { pv }),
      });
      switch (decision.action) {
        case 'skip':
          log.debug('nothing to do for the VolumeAttachment', { why: decision.reason });
          return undefined;
        case 'attach':
          return attach(attachment, log, signal);
        case 'detach':
          return detach(attachment, decision.finalizer, log, signal);
      }
    },
    start(sink) {
      keys.attach(sink);
      for (const attachment of attachments.list()) onAttachment(attachment);
      logger.info('attach loop started', { attachments: attachments.size });
    },
    stop: () => keys.attach(undefined),
  };
}
