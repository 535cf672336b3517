//! The tables of a destination's delivery log (src/worker/destination.rs).
//! The entry's `Destination` class creates them (if missing) as the object
//! starts, through [`super::intake::open`], before any operation runs:
//! taking deliveries in there, or the rest in the workers-rs module.

/// Run in order; each is idempotent.
pub const DESTINATION_TABLES: [&str; 11] = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, \
     event_id TEXT NOT NULL, type TEXT NOT NULL, scope TEXT NOT NULL, conversation TEXT, body TEXT NOT NULL, \
     status TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 1, attempts INTEGER NOT NULL DEFAULT 0, \
     probe INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, due_at INTEGER, \
     expires_at INTEGER, last_error TEXT, reason TEXT, replayed_as TEXT)",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries (expires_at) WHERE expires_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS deliveries_log ON deliveries (created_at, id)",
    "CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (status, seq)",
    "CREATE INDEX IF NOT EXISTS deliveries_conversation ON deliveries (conversation) WHERE conversation IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries (event_id)",
    "CREATE TABLE IF NOT EXISTS attempts (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, n INTEGER NOT NULL, \
     at INTEGER NOT NULL, code INTEGER, error TEXT, latency_ms INTEGER NOT NULL, probe INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (id)",
    "CREATE INDEX IF NOT EXISTS attempts_at ON attempts (at)",
];
