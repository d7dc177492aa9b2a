import { describeModel } from './harness.ts';
import { callSessionSpec } from './callSession.spec.ts';

describeModel(callSessionSpec);
