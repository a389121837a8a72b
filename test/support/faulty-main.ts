// The controller's real entry point with a fault injected into the wiring, for crash-recovery tests. The fault is
// named by RBD_PROVISIONER_TEST_FAULT; the process dies like a SIGKILL at that point:
//   crash-after-image-create  right after creating and tagging an image, before it records that a PV may exist;
//   crash-after-clone-create  right after a copy's image is cloned from its source (a claim's or a snapshot's),
//                             before it is tagged as its claim's and before its PV exists;
//   crash-after-image-remove  right after a delete moved the image to the trash, before the PV is deleted;
//   crash-after-image-resize  right after an image has grown, before its PV shows the new capacity;
//   crash-after-snapshot      right after a snapshot is cut, before its VolumeSnapshotContent says so.
//   crash-after-migrate-step  `migrate --apply`: right after the step named by RBD_PROVISIONER_TEST_MIGRATE_STEP.
import { MIGRATION_STEPS, type MigrationStep } from '../../src/cli/migrate.js';
import { runAsProcess } from '../../src/main.js';

export const FAULTS = ['crash-after-image-create', 'crash-after-clone-create', 'crash-after-image-remove', 'crash-after-image-resize', 'crash-after-snapshot', 'crash-after-migrate-step'] as const;
export type Fault = (typeof FAULTS)[number];

function die(what: string): void {
  process.stderr.write(`test fault: killing the process right after ${what}\n`);
  process.kill(process.pid, 'SIGKILL');
}

const fault = process.env['RBD_PROVISIONER_TEST_FAULT'];
if (!FAULTS.includes(fault as Fault)) {
  process.stderr.write(`faulty-main: RBD_PROVISIONER_TEST_FAULT must be one of ${FAULTS.join(', ')}, not ${JSON.stringify(fault)}\n`);
  process.exit(2);
}
if (fault === 'crash-after-migrate-step') {
  const step = process.env['RBD_PROVISIONER_TEST_MIGRATE_STEP'] as MigrationStep;
  if (!MIGRATION_STEPS.includes(step)) {
    process.stderr.write(`faulty-main: RBD_PROVISIONER_TEST_MIGRATE_STEP must be one of ${MIGRATION_STEPS.join(', ')}, not ${JSON.stringify(step)}\n`);
    process.exit(2);
  }
  runAsProcess({ afterMigrateStep: (pv, done) => { if (done === step) die(`migration step ${step} of PV ${pv}`); } });
} else {
  const provisionerOptions = {
    'crash-after-image-create': { afterImageCreated: (image: string) => die(`creating image ${image}`) },
    'crash-after-clone-create': { afterCopyCreated: (image: string) => die(`cloning image ${image} from its data source`) },
    'crash-after-image-remove': { afterImageRemoved: (image: string) => die(`moving image ${image} to the trash`) },
    'crash-after-image-resize': { afterImageResized: (image: string) => die(`growing image ${image}`) },
    'crash-after-snapshot': { afterSnapshotCreated: (image: string) => die(`cutting snapshot image ${image}`) },
  }[fault as Exclude<Fault, 'crash-after-migrate-step'>];
  runAsProcess({ provisionerOptions });
}
