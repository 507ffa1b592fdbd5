#!/usr/bin/env bash
# Builds every executor under plugins/ into plugins/components/<name>.wasm:
# one cargo build of the plugins workspace for wasm32-unknown-unknown, then
# bookhost-componentize (plugins/componentize) turns each core module into a
# component and refuses any import outside bookhost's own interfaces.
#
# Toolchain: a rustup toolchain with the wasm32-unknown-unknown target if the
# active one has it; otherwise Debian's rustc-web, building std from
# rust-web-src (the design notes, "Building executors here").
# BOOKHOST_WASM_TOOLCHAIN=rustup|debian forces one of them.
#
# Target dir: $BOOKHOST_PLUGINS_TARGET_DIR, else $CARGO_TARGET_DIR/plugins,
# else plugins/target, so CI can keep a cache outside the clone.
set -euo pipefail

plugins_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root_dir="$(dirname "$plugins_dir")"
target_dir="${BOOKHOST_PLUGINS_TARGET_DIR:-${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/plugins}}"
target_dir="${target_dir:-$plugins_dir/target}"
out_dir="$plugins_dir/components"
wasm_target=wasm32-unknown-unknown
wasm_ld=/usr/lib/llvm-16/bin/wasm-ld
debian_std_src=/usr/lib/rustlib/src/rust/library

say() { echo "build.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

started=$SECONDS

# rustup resolves the toolchain from the working directory
# (rust-toolchain.toml at the root), so ask from inside plugins/.
rustup_has_wasm_target() {
    command -v rustup >/dev/null 2>&1 &&
        (cd "$plugins_dir" && rustup target list --installed 2>/dev/null) | grep -qx "$wasm_target"
}

debian_toolchain_present() {
    [[ -x /usr/bin/cargo && -x /usr/bin/rustc && -x $wasm_ld && -d $debian_std_src ]]
}

ensure_debian_toolchain() {
    debian_toolchain_present && return
    local packages="rustc-web rust-web-src lld-16"
    if [[ $(id -u) -ne 0 ]]; then
        die "no rustup toolchain with the $wasm_target target, and Debian's wasm toolchain is \
missing; install it as root with: apt-get install -y $packages \
(or use a rustup toolchain with: rustup target add $wasm_target)"
    fi
    say "installing $packages"
    # shellcheck disable=SC2086 # the package list is meant to split
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y $packages; then
        DEBIAN_FRONTEND=noninteractive apt-get update
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y $packages
    fi
    debian_toolchain_present ||
        die "installed $packages, but /usr/bin/cargo, /usr/bin/rustc, $wasm_ld or $debian_std_src is still missing"
}

toolchain="${BOOKHOST_WASM_TOOLCHAIN:-}"
if [[ -z $toolchain ]]; then
    if rustup_has_wasm_target; then toolchain=rustup; else toolchain=debian; fi
fi

cd "$plugins_dir"
case "$toolchain" in
rustup)
    rustup_has_wasm_target || die "the active rustup toolchain has no $wasm_target target (rustup target add $wasm_target)"
    say "toolchain: rustup $(rustc --version) with the $wasm_target target"
    CARGO_TARGET_DIR="$target_dir" cargo build --release --workspace --target "$wasm_target"
    ;;
debian)
    ensure_debian_toolchain
    say "toolchain: Debian $(/usr/bin/rustc --version) (rustc-web), std built from source, linker $wasm_ld"
    # /usr/bin/cargo is not a rustup proxy, but with a bare `rustc` it would
    # pick the first one on PATH, which may be rustup's (1.95 via the
    # root's rust-toolchain.toml, with no wasm std); name the compiler.
    # RUSTC_BOOTSTRAP lets this stable compiler accept -Zbuild-std.
    env PATH="/usr/bin:$PATH" \
        RUSTC=/usr/bin/rustc \
        RUSTDOC=/usr/bin/rustdoc \
        RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$wasm_ld" \
        CARGO_TARGET_DIR="$target_dir" \
        /usr/bin/cargo build --release --workspace \
        -Zbuild-std=std,panic_abort --target "$wasm_target"
    ;;
*)
    die "BOOKHOST_WASM_TOOLCHAIN must be rustup or debian, not '$toolchain'"
    ;;
esac
built=$SECONDS

# Only the executor crates (cdylibs) become components: the SDK and shared
# logic are rlibs, and stale modules of removed crates may linger in a
# reused target dir, so the list comes from the manifests, not the folder.
modules=()
for manifest in "$plugins_dir"/*/Cargo.toml; do
    grep -Eq '^crate-type *= *\[ *"cdylib" *\]' "$manifest" || continue
    name="$(sed -nE 's/^name *= *"([^"]+)".*/\1/p' "$manifest" | head -n1)"
    [[ -n $name ]] || die "no package name in $manifest"
    module="$target_dir/$wasm_target/release/${name//-/_}.wasm"
    [[ -f $module ]] || die "cargo did not produce $module"
    modules+=("$module")
done
((${#modules[@]} > 0)) || die "found no executor crates under $plugins_dir"

say "componentizing ${#modules[@]} executors into $out_dir"
# Components are made in a staging folder and renamed into place one by one
# (a rename is atomic), so a reader of $out_dir (a running test, a host
# loading executors) never sees a missing or half-written component.
# (The staging folder is inside $out_dir: the same filesystem, and plugins/
# itself is left alone, which tests/build.rs watches for new crates.)
mkdir -p "$out_dir"
stage="$(mktemp -d "$out_dir/.staging.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
# The componentizer is an ordinary host program (a workspace of its own):
# rustup's toolchain (the root's rust-toolchain.toml), host target, the
# caller's CARGO_TARGET_DIR if any.
(cd "$root_dir" && cargo run -q --manifest-path plugins/componentize/Cargo.toml -- --out-dir "$stage" "${modules[@]}")
declare -A built=()
for component in "$stage"/*.wasm; do
    built["$(basename "$component")"]=1
    mv -f "$component" "$out_dir/"
done
# Components of executor crates that no longer exist go.
for component in "$out_dir"/*.wasm; do
    [[ -n ${built["$(basename "$component")"]:-} ]] || rm -f "$component"
done

say "done in $((SECONDS - started)) s (cargo build $((built - started)) s, toolchain $toolchain)"
