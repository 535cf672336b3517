// The Python that reads Prometheus text with the Prometheus client library's
// own parser (prometheus_client, pinned in scripts/setup.sh, which installs
// it into a virtual environment beside the other tools).
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export function pythonWithPrometheus() {
  const cache = process.env.DRIFT_BRIDGE_TOOLS ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "drift-bridge");
  const python = join(cache, "python-prometheus", "bin", "python");
  if (!existsSync(python)) throw new Error(`${python} is missing: run scripts/setup.sh (make test does)`);
  return python;
}
