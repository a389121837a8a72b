// The controller's public surface, for src/main.ts and the RBD provisioner.
export { createController, type Controller, type ControllerConfig, type ControllerDeps, type ControllerTuning, type RunOutcome } from './controller.js';
export { createKubeFacade, loadKubeConfig, KubeApiError, type KubeFacade, type KubeFacadeOptions } from './kube.js';
export { createMetrics, type Metrics } from './metrics.js';
export { startHttpServer, type HttpServer, type HttpServerOptions } from './http.js';
export { createEventRecorder, type EventRecorder } from './events.js';
export { realClock, type Clock } from './clock.js';
export { ProvisionError, DeleteError, LeaderLostError, type ProvisionErrorKind, type DeleteErrorKind } from './errors.js';
export type { Provisioner, ProvisionRequest, OwnedVolume } from './provisioner.js';
export {
  ANN_PROVISIONED_BY,
  ANN_SELECTED_NODE,
  ANN_STORAGE_PROVISIONER,
  ANN_BETA_STORAGE_PROVISIONER,
  PV_FINALIZER,
  volumeNameFor,
} from './decisions.js';
