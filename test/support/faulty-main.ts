// The controller's real entry point with a fault injected into the wiring, for crash-recovery tests. The fault is
// named by RBD_PROVISIONER_TEST_FAULT; the process dies like a SIGKILL at that point:
//   crash-after-image-create  right after creating and tagging an image, before it records that a PV may exist;
//   crash-after-image-remove  right after a delete moved the image to the trash, before the PV is deleted.
import { runAsProcess } from '../../src/main.js';

export const FAULTS = ['crash-after-image-create', 'crash-after-image-remove'] as const;
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
runAsProcess({
  provisionerOptions: fault === 'crash-after-image-create'
    ? { afterImageCreated: (image) => die(`creating image ${image}`) }
    : { afterImageRemoved: (image) => die(`moving image ${image} to the trash`) },
});
