# Sourced by the other scripts: where the pinned Rust CLI tool lives.
# A versioned folder in a per-user cache, so every clone on a machine shares
# one install and a version bump installs side by side.
TOOLS_CACHE="${DRIFT_BRIDGE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/drift-bridge}"
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$ROOT/Cargo.lock")
WASM_BINDGEN_ROOT="$TOOLS_CACHE/wasm-bindgen-cli-$WASM_BINDGEN_VERSION"
export PATH="$WASM_BINDGEN_ROOT/bin:$PATH"
