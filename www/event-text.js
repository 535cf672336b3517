// Reading and editing the event *text* without JSON.parse: numbers stay the
// digits the user typed, so an id above 2^53 elsewhere in the event is never
// rounded. The scanner only records where things are (spans), and tolerates a
// broken document by returning what it found before the break.

const MAX_DEPTH = 256;

class Stop extends Error {}

/**
 * Scans JSON text into a tree of spans.
 * Nodes: { kind: "object", start, end?, members: [{ key, keyStart, keyEnd, value }] }
 *        { kind: "array", start, end?, items: [node] }
 *        { kind: "string" | "number" | "literal", start, end }
 * `end` is exclusive and missing on containers left open by a syntax error:
 * every node is attached to its parent before its contents are read, so a
 * broken document still yields everything found before the break.
 * Returns { root, complete }.
 */
export function scan(text) {
  const n = text.length;
  let i = 0;
  let root = null;

  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const string = () => {
    const start = i++;
    while (i < n) {
      const c = text[i];
      if (c === "\\") i += 2;
      else if (c === '"') return { kind: "string", start, end: ++i };
      else if (c === "\n") break;
      else i++;
    }
    throw new Stop();
  };
  const items = (node, close, item) => {
    ws();
    if (text[i] === close) {
      node.end = ++i;
      return;
    }
    for (;;) {
      item();
      ws();
      if (text[i] === ",") i++;
      else if (text[i] === close) {
        node.end = ++i;
        return;
      } else throw new Stop();
    }
  };
  const value = (depth, attach) => {
    if (depth > MAX_DEPTH) throw new Stop();
    ws();
    const c = text[i];
    if (c === "{") {
      const node = attach({ kind: "object", start: i++, members: [] });
      items(node, "}", () => {
        ws();
        if (text[i] !== '"') throw new Stop();
        const key = string();
        ws();
        if (text[i] !== ":") throw new Stop();
        i++;
        const member = { key: decodeKey(text.slice(key.start, key.end)), keyStart: key.start, keyEnd: key.end, value: null };
        node.members.push(member);
        value(depth + 1, (child) => (member.value = child));
      });
      return;
    }
    if (c === "[") {
      const node = attach({ kind: "array", start: i++, items: [] });
      items(node, "]", () => value(depth + 1, (child) => (node.items.push(child), child)));
      return;
    }
    if (c === '"') {
      attach(string());
      return;
    }
    const m = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) throw new Stop();
    attach({ kind: /^[-\d]/.test(m[0]) ? "number" : "literal", start: i, end: (i += m[0].length) });
  };

  let complete = false;
  try {
    value(0, (node) => (root = node));
    ws();
    complete = i === n;
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
  }
  return { root, complete };
}

function decodeKey(raw) {
  try {
    return JSON.parse(raw); // a string token: no number is involved
  } catch {
    return raw.slice(1, -1);
  }
}

function member(node, key) {
  if (!node || node.kind !== "object") return null;
  // The last one wins only matters for duplicate keys, which the core rejects.
  return node.members.find((m) => m.key === key && m.value) || null;
}

/** The decoded top-level `type`, or null. */
export function eventType(text, scanned = scan(text)) {
  const m = member(scanned.root, "type");
  if (!m || m.value.kind !== "string") return null;
  return decodeKey(text.slice(m.value.start, m.value.end));
}

/** The data field that carries the event's time for this type. */
export function timeField(type) {
  return type === "conversation_status_updated" ? "changedAt" : "lastUpdated";
}

/**
 * Where the event's time is: { type, field, raw, start, end, data }.
 * `raw` is the number's text when it is an integer, else null; start/end
 * span the value when the field exists.
 */
export function readEventTime(text) {
  const scanned = scan(text);
  const type = eventType(text, scanned);
  const field = timeField(type);
  const dataMember = member(scanned.root, "data");
  const data = dataMember && dataMember.value.kind === "object" ? dataMember.value : null;
  const m = member(data, field);
  if (!m) return { type, field, raw: null, start: -1, end: -1, data, complete: scanned.complete };
  const raw = m.value.kind === "number" && /^-?\d+$/.test(text.slice(m.value.start, m.value.end))
    ? text.slice(m.value.start, m.value.end)
    : null;
  return { type, field, raw, start: m.value.start, end: m.value.end, data, complete: scanned.complete };
}

/** ms since the epoch for integer text, or null when it is no usable date. */
export function msFromRaw(raw) {
  if (raw == null || !/^-?\d{1,16}$/.test(raw)) return null;
  const ms = Number(raw);
  return Math.abs(ms) <= 8.64e15 ? ms : null;
}

/** "YYYY-MM-DD" (UTC) for ms, or "" when an <input type=date> cannot show it. */
export function isoDate(ms) {
  if (ms == null) return "";
  const iso = new Date(ms).toISOString();
  return /^\d{4}-/.test(iso) ? iso.slice(0, 10) : "";
}

const DAY = 86_400_000;

/** ms for a "YYYY-MM-DD" date at the time of day (UTC) of `keepFrom`, if any. */
export function msForDate(dateValue, keepFrom) {
  const m = /^(\d{4,})-(\d{2})-(\d{2})$/.exec(dateValue);
  if (!m) return null;
  const day = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (!Number.isFinite(day)) return null;
  const timeOfDay = keepFrom == null ? 0 : ((keepFrom % DAY) + DAY) % DAY;
  return day + timeOfDay;
}

/**
 * Sets the event's time field to `ms` by editing the text: the number is
 * replaced in place, or the field is added at the end of `data` in the
 * document's own style. Returns { text, start, end } (the span of the new
 * number) or null with a reason when the text has no `data` object to edit.
 */
export function setEventTime(text, ms) {
  const where = readEventTime(text);
  const digits = String(Math.trunc(ms));
  if (where.start >= 0) {
    return {
      text: text.slice(0, where.start) + digits + text.slice(where.end),
      start: where.start,
      end: where.start + digits.length,
      field: where.field,
    };
  }
  const data = where.data;
  if (!data || data.end == null) {
    return { error: where.complete ? "This event has no data object to put a date in." : "Fix the JSON first: the date goes into data." };
  }
  const key = JSON.stringify(where.field);
  if (data.members.length === 0) {
    const inner = `${key}${text.includes("\n") ? ": " : ":"}${digits}`;
    const text2 = text.slice(0, data.start + 1) + inner + text.slice(data.end - 1);
    const start = data.start + 1 + inner.length - digits.length;
    return { text: text2, start, end: start + digits.length, field: where.field };
  }
  const first = data.members[0];
  const indent = text.slice(data.start + 1, first.keyStart); // "\n    " or ""
  const sep = text.slice(first.keyEnd, first.value.start); // ": " or ":"
  const last = data.members[data.members.length - 1];
  const insert = `,${indent}${key}${sep}${digits}`;
  const at = last.value.end;
  return {
    text: text.slice(0, at) + insert + text.slice(at),
    start: at + insert.length - digits.length,
    end: at + insert.length,
    field: where.field,
  };
}

/** Parses an error path such as data.conversationId, [0].orgId or data["a b"].x[1]. */
export function parsePath(path) {
  const out = [];
  let i = 0;
  while (i < path.length) {
    if (path[i] === ".") i++;
    if (path[i] === "[") {
      if (path[i + 1] === '"') {
        let j = i + 2;
        while (j < path.length && path[j] !== '"') j += path[j] === "\\" ? 2 : 1;
        out.push(decodeKey(path.slice(i + 1, j + 1)));
        i = j + 2; // past '"]'
      } else {
        const j = path.indexOf("]", i);
        if (j < 0) return null;
        out.push(Number(path.slice(i + 1, j)));
        i = j + 1;
      }
    } else {
      let j = i;
      while (j < path.length && path[j] !== "." && path[j] !== "[") j++;
      if (j === i) return null;
      out.push(path.slice(i, j));
      i = j;
    }
  }
  return out;
}

/** The span { start, end } of the value at an error path, or of the key when the value is missing. */
export function locatePath(text, path) {
  const segments = parsePath(path || "");
  if (!segments) return null;
  let node = scan(text).root;
  let span = node ? { start: node.start, end: node.end ?? node.start + 1 } : null;
  for (const seg of segments) {
    if (!node) return span;
    if (typeof seg === "number") {
      if (node.kind !== "array" || !node.items[seg]) return span;
      node = node.items[seg];
    } else {
      const m = member(node, seg);
      if (!m) return span; // missing field: point at the container
      node = m.value;
    }
    span = { start: node.start, end: node.end ?? node.start + 1 };
  }
  return span;
}

/**
 * The lines of a text, for going between offsets and 1-based lines and
 * columns (columns count UTF-16 units, close enough for a caret). Built once
 * per input: a 5,000-event paste has 5,000 lines and may show many errors.
 */
export class Lines {
  constructor(text) {
    this.text = text;
    this.starts = [0];
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.starts.push(i + 1);
  }

  get count() {
    return this.starts.length;
  }

  /** The offset of a 1-based line and column. */
  offset(line, column) {
    if (line > this.starts.length) return this.text.length;
    return Math.min(this.text.length, this.starts[Math.max(1, line) - 1] + Math.max(0, column - 1));
  }

  /** The 1-based { line, column } of an offset. */
  lineColumn(offset) {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.starts[lo] + 1 };
  }

  /** The text of a 1-based line, without its newline. */
  line(n) {
    if (n < 1 || n > this.starts.length) return "";
    const end = n < this.starts.length ? this.starts[n] - 1 : this.text.length;
    return this.text.slice(this.starts[n - 1], end);
  }
}
