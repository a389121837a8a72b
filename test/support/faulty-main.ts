// The controller's real entry point with a fault injected into the wiring, for crash-recovery tests: it dies like
// a SIGKILL right after creating and tagging an image, before the image records that a PV may exist.
import { runAsProcess } from '../../src/main.js';

runAsProcess({
  provisionerOptions: {
    afterImageCreated: (image) => {
      process.stderr.write(`test fault: killing the process right after creating image ${image}\n`);
      process.kill(process.pid, 'SIGKILL');
    },
  },
});
