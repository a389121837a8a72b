// Pure decisions of the attach loop: which VolumeAttachments are ours and what to do with them. No I/O, table-tested.
//
// The semantics are those of kubernetes-csi/external-attacher for a driver without PUBLISH_UNPUBLISH_VOLUME (its
// "trivial handler", what ceph-csi's own deployment runs): there is nothing to attach, so an attachment is marked
// attached and nothing else; no finalizer goes on the VolumeAttachment nor on the PV, so deleting an attachment is
// instant, as there is nothing to detach. A finalizer of ours would only add a way to fail: with this loop switched
// off, uninstalled or not leading, the attach-detach controller's detach (it deletes the VolumeAttachment and waits
// for it to go) would hang, and a ReadWriteOnce volume could not move to another node.
//
// The one finalizer we do act on is the attacher finalizer of the PV's driver (`external-attacher/<driver>`): an
// attacher that calls ControllerPublish puts it on attachments it handles. If an attachment of one of our PVs being
// deleted carries it, we are that driver's attacher for the PV, and, there being nothing to unpublish, we mark the
// attachment detached and remove it, as external-attacher does after a successful detach.
import type { V1PersistentVolume, V1VolumeAttachment } from '@kubernetes/client-node';
import { ANN_PROVISIONED_BY } from '../provision/decisions.js';

/** external-attacher's SanitizeDriverName: anything but letters, digits and "-" becomes "-"; no trailing "-". */
export function sanitizeDriverName(driver: string): string {
  const name = driver.replace(/[^a-zA-Z0-9-]/g, '-');
  return name.endsWith('-') ? `${name}X` : name;
}

/** The finalizer an attacher of this driver puts on VolumeAttachments (and PVs) it must detach. */
export function attacherFinalizer(driver: string): string {
  return `external-attacher/${sanitizeDriverName(driver)}`;
}

/** The PV an attachment is for; undefined for an inline (ephemeral CSI) volume. */
export function attachmentVolumeName(attachment: V1VolumeAttachment): string | undefined {
  const name = attachment.spec?.source?.persistentVolumeName;
  return name === undefined || name === null || name === '' ? undefined : name;
}

export type AttachmentDecision =
  | { action: 'skip'; reason: string }
  | { action: 'attach' }
  | { action: 'detach'; finalizer: string };

export function decideAttachment(
  attachment: V1VolumeAttachment,
  volume: V1PersistentVolume | undefined,
  provisionerName: string,
): AttachmentDecision {
  const attacher = attachment.spec?.attacher ?? '';
  const pvName = attachmentVolumeName(attachment);
  if (pvName === undefined) return { action: 'skip', reason: 'not a PersistentVolume (inline volume)' };
  if (volume === undefined) return { action: 'skip', reason: 'its PV is not known (yet)' };
  if (volume.metadata?.annotations?.[ANN_PROVISIONED_BY] !== provisionerName) {
    return { action: 'skip', reason: 'the PV was not provisioned by us' };
  }
  const driver = volume.spec?.csi?.driver;
  if (driver === undefined || driver === '') return { action: 'skip', reason: 'the PV is not a CSI volume' };
  if (attacher !== driver) return { action: 'skip', reason: `the attachment is for ${attacher === '' ? 'no attacher' : attacher}, the PV's driver is ${driver}` };

  const deleting = attachment.metadata?.deletionTimestamp !== undefined && attachment.metadata.deletionTimestamp !== null;
  if (deleting) {
    const finalizer = attacherFinalizer(driver);
    if ((attachment.metadata?.finalizers ?? []).includes(finalizer)) return { action: 'detach', finalizer };
    return { action: 'skip', reason: 'being deleted and holds no attacher finalizer: nothing to detach' };
  }
  if (attachment.status?.attached === true) return { action: 'skip', reason: 'already attached' };
  return { action: 'attach' };
}
