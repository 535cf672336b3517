// Bounded work, in real workerd, counted as the runtime counts it (the
// cursors' rowsRead, which Workers bills): one app's delivery log holding
// 100,000 held deliveries. Its alarm while it drains, the admin API's
// destinations and metrics, and each page of a recovery of 100,000 dead
// letters read a bounded number of rows, however many the log holds; the
// recovery completes. The log is filled through a test route, in one
// statement per 100,000 rows, rather than by 100,000 webhooks.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { Miniflare } from "miniflare";
import { ADMIN, ROOT, TOKEN, receiver, persistDir, removeDir, testEntry, until } from "./support.mjs";
import { METRICS_WRITE, countingWorker, wrapper } from "../../bench/units.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const N = Number(process.env.BOUNDED_N ?? 100_000);

test("the counting wrapper picks out the statements that write the metrics, and no others", () => {
  // It once said 0.00 rows for counting: \b inside its template string was a backspace.
  assert.ok(wrapper(["DeliveryLog"]).includes(`if (${METRICS_WRITE}.test(args[0]))`));
  for (const q of ["INSERT INTO metrics (span, start) VALUES (?, ?)", "DELETE FROM metrics WHERE start < ?", "UPDATE metrics SET backlog = ?"]) assert.ok(METRICS_WRITE.test(q), q);
  for (const q of ["SELECT MIN(start) FROM metrics WHERE span = ?", "  select backlog from metrics", "INSERT INTO deliveries (metrics_x) VALUES (1)"]) assert.ok(!METRICS_WRITE.test(q), q);
});

async function bridge(extra) {
  const app = await receiver(() => 200);
  cleanups.push(() => app.close());
  // The counting wrapper beside the built worker (build/ is the build's output).
  const persist = persistDir();
  const mf = new Miniflare({
    ...countingWorker(join(ROOT, "build"), ["Outbox", "DeliveryLog", "Registry"], basename(testEntry())),
    bindings: {
      DRIFT_VERIFICATION_TOKEN: TOKEN,
      ADMIN_TOKEN: ADMIN,
      DESTINATIONS: JSON.stringify([{ name: "big", url: app.url, types: ["conversation_push"] }]),
      ...extra,
    },
    durableObjects: {
      OUTBOX: { className: "Outbox", useSQLite: true },
      DELIVERY_LOG: { className: "DeliveryLog", useSQLite: true },
      REGISTRY: { className: "Registry", useSQLite: true },
    },
    durableObjectsPersist: persist,
  });
  cleanups.push(() => removeDir(persist));
  cleanups.push(() => mf.dispose());
  await mf.ready;
  return mf;
}

async function call(mf, path, method = "GET") {
  const res = await mf.dispatchFetch(`http://bridge.test${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } });
  const text = await res.text();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const units = async (mf) => (await mf.dispatchFetch("http://bridge.test/__units")).json();
const reset = (mf) => mf.dispatchFetch("http://bridge.test/__units/reset");
/** Rows read by the Durable Object requests and alarms from `fn`. */
async function rowsRead(mf, fn) {
  await reset(mf);
  await fn();
  const u = await units(mf);
  return { requests: u.requestRowsRead, alarms: u.alarmRowsRead, total: u.requestRowsRead.reduce((a, b) => a + b, 0) };
}

test(`a delivery log of ${N.toLocaleString("en")} held deliveries: its alarm and the admin API read a bounded number of rows`, async () => {
  const mf = await bridge({ DRAIN_PER_SECOND: "10" });
  await call(mf, "/admin/destinations/big/pause", "POST");
  const filled = await call(mf, `/__test/fill?name=big&count=${N}&status=held`);
  assert.equal(filled.filled, N);
  const health = await rowsRead(mf, async () => {
    const list = await call(mf, "/admin/destinations");
    assert.equal(list.destinations[0].held, N);
  });
  const metrics = await rowsRead(mf, () => call(mf, "/admin/metrics"));
  const deliveries = await rowsRead(mf, () => call(mf, "/admin/deliveries?destination=big&limit=50"));
  // Resume: the drain releases 10 a second, from the 100,000 in order.
  await call(mf, "/admin/destinations/big/resume", "POST");
  await reset(mf);
  await until(async () => (await units(mf)).alarmRowsRead.length >= 4, 20_000, "four alarms of the drain");
  const alarms = (await units(mf)).alarmRowsRead;
  console.log(
    `rows read: GET /admin/destinations ${health.total}, GET /admin/metrics ${metrics.total}, ` +
      `a page of the delivery log ${deliveries.total}, the drain's alarms ${alarms.join(", ")}`,
  );
  assert.ok(health.total < 100, `/admin/destinations read ${health.total} rows`);
  assert.ok(metrics.total < 100, `/admin/metrics read ${metrics.total} rows`);
  // A page reads every row of the hours it spans, and SQLite counts each
  // again as it sorts them (there is no index on the order taken in: it
  // would cost two rows written per delivery); here the one hour of all of
  // them. It hands over only the page's.
  assert.ok(deliveries.total <= 2 * N + 100, `a page of the log read ${deliveries.total} rows (twice the hour's ${N} at most)`);
  assert.ok(Math.max(...alarms) < 200, `an alarm read ${Math.max(...alarms)} rows`);
});

test(`a recovery of ${N.toLocaleString("en")} dead letters works in pages of bounded reads and completes`, async () => {
  const mf = await bridge({ DRAIN_PER_SECOND: "1000" });
  await call(mf, "/admin/destinations/big/pause", "POST");
  assert.equal((await call(mf, `/__test/fill?name=big&count=${N}&status=failed`)).filled, N);
  await reset(mf);
  const first = await call(mf, "/admin/destinations/big/recover", "POST");
  assert.deepEqual([first.recovered, first.more], [200, true]);
  await until(async () => (await call(mf, "/admin/destinations")).destinations[0].recovery?.more === false, 300_000, "the recovery's end");
  const h = (await call(mf, "/admin/destinations")).destinations[0];
  assert.equal(h.recovery.recovered, N);
  assert.equal(h.held, N, "replayed and held, in order, while the app is paused");
  const u = await units(mf);
  const pages = u.alarmRowsRead.filter((n) => n > 0);
  console.log(`recovery: ${u.alarms.DeliveryLog} alarms; rows read by one at most ${Math.max(...pages)}`);
  assert.ok(Math.max(...pages) < 2_000, `a page read ${Math.max(...pages)} rows`);
  // Again: the pages read the log through (RECOVER_SCAN rows each) and find nothing to replay.
  const again = await call(mf, "/admin/destinations/big/recover", "POST");
  assert.equal(again.recovered, 0);
  await until(async () => (await call(mf, "/admin/destinations")).destinations[0].recovery?.more === false, 300_000, "the second recovery's end");
  const twice = (await call(mf, "/admin/destinations")).destinations[0];
  assert.equal(twice.recovery.recovered, 0, "recovering twice recovers nothing twice");
  assert.equal(twice.held, N);
});
