import { createRequire } from 'node:module';
import type { RbdNative } from './rbd-native.js';

// dist/src/ceph/native.js -> <repo>/build/Release/rbd_native.node
const require = createRequire(import.meta.url);
export const native: RbdNative = require('../../../build/Release/rbd_native.node') as RbdNative;
