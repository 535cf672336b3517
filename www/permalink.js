// Permalinks: the page's state (input, legacy policy, date, and the `now`
// that times events without a date) in the URL fragment. Browsers never send
// the fragment to a server, so a link shares an input without it leaving the
// page. The input is compressed (deflate-raw, then base64url) where the
// browser has CompressionStream, and stored plain (base64url) where not.
//
//   #legacy=timeline&date=2020-06-10&now=1700000000000&z=<deflate-raw, base64url>
//   #legacy=always&t=<UTF-8, base64url>                  (no CompressionStream)

/** Links longer than this get cut by browsers, chat apps and mail clients. */
export const MAX_LINK_CHARS = 64 * 1024;

const canCompress = () => typeof CompressionStream === "function";
const canDecompress = () => typeof DecompressionStream === "function";

async function through(stream, bytes) {
  const piped = new Blob([bytes]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(piped).arrayBuffer());
}

export function base64url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64url(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The fragment (without "#") for { input, legacy, date, now }; date and now
 * are left out when absent.
 */
export async function encodeState({ input, legacy, date, now }) {
  const params = new URLSearchParams();
  params.set("legacy", legacy);
  if (date) params.set("date", date);
  if (Number.isFinite(now)) params.set("now", String(now));
  const bytes = new TextEncoder().encode(input);
  if (canCompress()) {
    try {
      params.set("z", base64url(await through(new CompressionStream("deflate-raw"), bytes)));
      return params.toString();
    } catch {
      // an engine without deflate-raw: store the text as it is
    }
  }
  params.set("t", base64url(bytes));
  return params.toString();
}

/**
 * Reads a fragment made by encodeState. Returns null when it holds no state,
 * { error } when it cannot be read, else { input, legacy, date, now }.
 */
export async function decodeState(fragment) {
  const params = new URLSearchParams(fragment.replace(/^#/, ""));
  const z = params.get("z");
  const t = params.get("t");
  if (z == null && t == null) return null;
  let input;
  try {
    if (z != null) {
      if (!canDecompress()) return { error: "This link is compressed and this browser has no DecompressionStream to open it." };
      input = new TextDecoder("utf-8", { fatal: true }).decode(await through(new DecompressionStream("deflate-raw"), fromBase64url(z)));
    } else {
      input = new TextDecoder("utf-8", { fatal: true }).decode(fromBase64url(t));
    }
  } catch {
    return { error: "This link's input is damaged (cut short or edited?), so it could not be restored." };
  }
  const legacy = ["always", "timeline", "never"].includes(params.get("legacy")) ? params.get("legacy") : "always";
  const date = /^\d{4,}-\d{2}-\d{2}$/.test(params.get("date") ?? "") ? params.get("date") : null;
  const now = /^-?\d{1,16}$/.test(params.get("now") ?? "") ? Number(params.get("now")) : null;
  return { input, legacy, date, now };
}
