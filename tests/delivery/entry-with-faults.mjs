// The test entry: the production entry (build/index.js, beside which this
// file is copied) with the faults the tests need, switched on by bindings
// only this file reads, so that the production code carries no test
// switches of its own for them.
//   TEST_REGISTRY_DOWN=1   the registry throws on every request, as one that
//                          cannot be reached.
import * as production from "./index.js";

export default production.default;
export const Outbox = production.Outbox;
export const DeliveryLog = production.DeliveryLog;

export class Registry extends production.Registry {
  fetch(request) {
    if (this.env.TEST_REGISTRY_DOWN === "1") throw new Error("the registry cannot be reached (TEST_REGISTRY_DOWN)");
    return super.fetch(request);
  }
}
