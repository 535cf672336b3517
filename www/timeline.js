// Drift's 2020 timeline as an SVG, drawn at the container's pixel width so its
// text stays readable from a phone to a desktop.

const utc = (y, m, d) => Date.UTC(y, m - 1, d);

export const DATES = {
  replacement: utc(2020, 4, 1), // conversation_inactive / _manual_push / _push available
  removed: utc(2020, 4, 15), // legacy subscription removed from app settings
  broadcastStart: utc(2020, 6, 1), // legacy closes re-broadcast from here…
  broadcastEnd: utc(2020, 10, 1), // …until here (exclusive)
};

const RANGE_START = utc(2020, 3, 1);
const RANGE_END = utc(2020, 11, 16);
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function inBroadcast(ms) {
  return ms >= DATES.broadcastStart && ms < DATES.broadcastEnd;
}

let canvas;
function textWidth(text, size, weight = 400) {
  canvas ??= document.createElement("canvas");
  const ctx = canvas.getContext("2d");
  ctx.font = `${weight} ${size}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
  return ctx.measureText(text).width;
}

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

/**
 * Draws the timeline into `svg` (an <svg> element).
 * marker: { ms, label } or null; ms may lie outside the drawn range.
 */
export function drawTimeline(svg, width, marker) {
  const W = Math.max(280, Math.round(width));
  const padL = 14;
  const padR = 14;
  const span = RANGE_END - RANGE_START;
  const x = (ms) => padL + ((ms - RANGE_START) / span) * (W - padL - padR);
  const narrow = W < 520;
  const laneH = 24;
  const lane = (i) => 44 + i * 32;
  const axisY = lane(3) + 6;
  const H = axisY + 30;
  const parts = [];

  // The broadcast window, shaded across the lanes.
  const bs = x(DATES.broadcastStart);
  const be = x(DATES.broadcastEnd);
  parts.push(`<rect class="tl-window" x="${bs}" y="36" width="${be - bs}" height="${axisY - 36}" rx="6"/>`);

  // Month ticks and names.
  for (let m = 3; m <= 11; m++) {
    const tx = x(utc(2020, m, 1));
    parts.push(`<line class="tl-tick" x1="${tx}" x2="${tx}" y1="${axisY}" y2="${axisY + 5}"/>`);
    const next = x(utc(2020, m + 1, 1));
    const mid = (tx + Math.min(next, W - padR)) / 2;
    if (m < 11 || W - padR - tx > 30) {
      parts.push(`<text class="tl-month" x="${mid}" y="${axisY + 19}" text-anchor="middle">${MONTHS[m - 1]}</text>`);
    }
  }
  parts.push(`<line class="tl-axis" x1="${padL}" x2="${W - padR}" y1="${axisY}" y2="${axisY}"/>`);

  // Dashed guides from each date down to the axis.
  for (const [ms, top] of [
    [DATES.replacement, lane(0)],
    [DATES.removed, lane(1)],
    [DATES.broadcastStart, lane(2)],
    [DATES.broadcastEnd, lane(2)],
  ]) {
    const gx = x(ms);
    parts.push(`<line class="tl-guide" x1="${gx}" x2="${gx}" y1="${top}" y2="${axisY}"/>`);
    parts.push(`<circle class="tl-date-dot" cx="${gx}" cy="${axisY}" r="3.5"/>`);
  }

  const fontSize = narrow ? 11.5 : 12.5;
  // A bold date, then (optionally) a muted description.
  const label = (tx, ty, date, text, anchor = "start") => {
    const bold = `<tspan class="tl-date">${esc(date)}</tspan>`;
    const rest = text ? `<tspan class="tl-desc" dx="5">${esc(text)}</tspan>` : "";
    return `<text class="tl-label" x="${tx}" y="${ty}" text-anchor="${anchor}" font-size="${fontSize}">${bold}${rest}</text>`;
  };
  const fits = (text, room, weight = 500) => textWidth(text, fontSize, weight) + 16 <= room;
  const mid = (i) => lane(i) + laneH / 2 + fontSize * 0.35;

  // Lane 0: the replacement events, from 2020-04-01 on.
  {
    const x0 = x(DATES.replacement);
    const x1 = W - padR;
    parts.push(`<rect class="tl-bar tl-new" x="${x0}" y="${lane(0)}" width="${x1 - x0}" height="${laneH}" rx="6" fill="url(#tl-fade-right-new)"/>`);
    parts.push(label(x0 - 6, mid(0), "Apr 1", "", "end"));
    const inside = ["Replacement events available", "Replacement events", "New events"].find((t) => fits(t, x1 - x0 - 30));
    if (inside) parts.push(`<text class="tl-inside tl-new-text" x="${x0 + 9}" y="${mid(0)}" font-size="${fontSize}">${esc(inside)}</text>`);
  }
  // Lane 1: the legacy subscription in app settings, until 2020-04-15.
  {
    const x0 = padL;
    const x1 = x(DATES.removed);
    parts.push(`<rect class="tl-bar tl-legacy" x="${x0}" y="${lane(1)}" width="${x1 - x0}" height="${laneH}" rx="6" fill="url(#tl-fade-left-legacy)"/>`);
    const room = W - padR - x1 - 8;
    const text = ["legacy subscription removed from app settings", "legacy subscription removed", "subscription removed", ""].find(
      (t) => !t || textWidth("Apr 15 " + t, fontSize, 500) + 8 <= room,
    );
    parts.push(label(x1 + 7, mid(1), "Apr 15", text));
  }
  // Lane 2: the legacy broadcast, 2020-06-01 until 2020-10-01.
  {
    parts.push(`<rect class="tl-bar tl-broadcast" x="${bs}" y="${lane(2)}" width="${be - bs}" height="${laneH}" rx="6"/>`);
    parts.push(label(bs - 6, mid(2), "Jun 1", "", "end"));
    parts.push(label(be + 6, mid(2), "Oct 1", ""));
    const inside = ["Legacy broadcast of closes", "Legacy broadcast", "Broadcast"].find((t) => fits(t, be - bs));
    if (inside) parts.push(`<text class="tl-inside tl-broadcast-text" x="${(bs + be) / 2}" y="${mid(2)}" text-anchor="middle" font-size="${fontSize}">${esc(inside)}</text>`);
  }

  // The chosen date: a pin from a pill at the top down to the axis.
  let state = "none";
  if (marker && Number.isFinite(marker.ms)) {
    const before = marker.ms < RANGE_START;
    const after = marker.ms >= RANGE_END;
    state = before ? "before" : after ? "after" : inBroadcast(marker.ms) ? "inside" : "outside";
    const px = before ? padL : after ? W - padR : x(marker.ms);
    const text = `${before ? "◀ " : ""}${marker.label}${after ? " ▶" : ""}`;
    const pillW = textWidth(text, 12, 650) + 20;
    const pillX = Math.min(Math.max(px - pillW / 2, 2), W - 2 - pillW);
    const dashed = before || after ? ' stroke-dasharray="3 3"' : "";
    parts.push(`<line class="tl-pin" x1="${px}" x2="${px}" y1="28" y2="${axisY}"${dashed}/>`);
    parts.push(`<circle class="tl-pin-dot" cx="${px}" cy="${axisY}" r="5.5"/>`);
    parts.push(`<rect class="tl-pill" x="${pillX}" y="4" width="${pillW}" height="24" rx="12"/>`);
    parts.push(`<text class="tl-pill-text" x="${pillX + pillW / 2}" y="20.5" text-anchor="middle">${esc(text)}</text>`);
  }

  const defs = `<defs>
    <linearGradient id="tl-fade-right-new" x1="0" x2="1" y1="0" y2="0">
      <stop offset="0" class="tl-new-stop"/><stop offset="0.82" class="tl-new-stop"/><stop offset="1" class="tl-new-stop" stop-opacity="0"/>
    </linearGradient>
    <linearGradient id="tl-fade-left-legacy" x1="0" x2="1" y1="0" y2="0">
      <stop offset="0" class="tl-legacy-stop" stop-opacity="0"/><stop offset="0.45" class="tl-legacy-stop"/><stop offset="1" class="tl-legacy-stop"/>
    </linearGradient>
  </defs>`;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", String(W));
  svg.setAttribute("height", String(H));
  svg.dataset.marker = state;
  const title = svg.querySelector("title")?.outerHTML ?? "";
  const desc = svg.querySelector("desc")?.outerHTML ?? "";
  svg.innerHTML = title + desc + defs + parts.join("");
  return state;
}
