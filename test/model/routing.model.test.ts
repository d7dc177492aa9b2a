import { describeModel } from './harness.ts';
import { routingSpec } from './routing.spec.ts';

describeModel(routingSpec);
