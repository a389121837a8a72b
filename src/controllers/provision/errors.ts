// Errors the provisioner throws to tell the controller how to retry. Messages are shown in events and logs, so the
// provisioner guarantees they carry no secrets.
import { StorageError } from '../storage-error.js';

export type ProvisionErrorKind = 'final' | 'transient' | 'in-progress';

/**
 * final: bad StorageClass/claim input; retried slowly (max backoff), event ProvisioningFailed.
 * transient: retried with backoff.
 * in-progress: a timeout after which the volume may still appear; retried with the same name, never treated as
 * "failed, clean up".
 */
export class ProvisionError extends StorageError<ProvisionErrorKind> {
  override readonly name = 'ProvisionError';
}

export type DeleteErrorKind = 'in-use' | 'has-snapshots' | 'transient' | 'final';

/** Any kind leads to a VolumeFailedDelete Warning event on the PV and a backed-off retry (final: the slow one). */
export class DeleteError extends StorageError<DeleteErrorKind> {
  override readonly name = 'DeleteError';
}
