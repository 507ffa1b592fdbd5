#!/usr/bin/env bash
# Builds every executor under plugins/ into plugins/components/<name>.wasm:
# - Rust: one cargo build of the plugins workspace for wasm32-unknown-unknown,
#   then bookhost-componentize (plugins/componentize) turns each core module
#   into a component and refuses any import outside bookhost's own interfaces;
# - TypeScript (plugins/ts/<name>.ts): plugins/sdk-ts/build.mjs, with the npm
#   packages of plugins/sdk-ts/package-lock.json (ComponentizeJS, every WASI
#   feature disabled);
# - Python (plugins/py/<name>/app.py, with plugins/sdk-py): componentize-py
#   with --stub-wasi, in a virtual environment of its own;
# and every component, whatever its language, goes through the same import
# check (bookhost-componentize --check).
#
# Toolchain: a rustup toolchain with the wasm32-unknown-unknown target if the
# active one has it; otherwise Debian's rustc-web, building std from
# rust-web-src (the design notes, "Building executors here").
# BOOKHOST_WASM_TOOLCHAIN=rustup|debian forces one of them.
#
# Target dir: $BOOKHOST_PLUGINS_TARGET_DIR, else $CARGO_TARGET_DIR/plugins,
# else plugins/target, so CI can keep a cache outside the clone. JavaScript
# and Python components (seconds each to build) are cached there by a digest
# of their inputs.
#
# Needs Node.js >= 18 with npm for TypeScript and python3 with venv for
# Python; as root it installs them with apt when missing.
set -euo pipefail
# .ci/run lints the host's crates by building them through clippy-driver;
# executors and the componentize tool are other workspaces (linted natively
# by .ci/run), and the Debian toolchain cannot run that driver at all.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

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
cargo_done=$SECONDS

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

apt_install() {
    [[ $(id -u) -eq 0 ]] || return 1
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

ensure_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm ||
            die "TypeScript executors need Node.js >= 18 and npm: install them (apt-get install nodejs npm, or from nodejs.org)"
    fi
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    ((major >= 18)) || die "TypeScript executors need Node.js >= 18; this is $(node --version)"
}

ensure_python() {
    if ! python3 -m venv --help >/dev/null 2>&1; then
        apt_install python3-venv ||
            die "Python executors need python3 with venv: install it (apt-get install python3-venv)"
    fi
}

ts_entries=("$plugins_dir"/ts/*.ts)
[[ -e ${ts_entries[0]} ]] || ts_entries=()
py_apps=()
for app in "$plugins_dir"/py/*/app.py; do
    [[ -e $app ]] && py_apps+=("$app")
done

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
ts_started=$SECONDS
if ((${#ts_entries[@]} > 0)); then
    ensure_node
    sdk_ts="$plugins_dir/sdk-ts"
    # npm ci only when the lock file changed since the last install.
    if ! cmp -s "$sdk_ts/package-lock.json" "$sdk_ts/node_modules/.bookhost-installed-lock" 2>/dev/null; then
        say "installing the TypeScript SDK's npm packages (package-lock.json)"
        (cd "$sdk_ts" && npm ci --no-audit --no-fund --silent)
        cp "$sdk_ts/package-lock.json" "$sdk_ts/node_modules/.bookhost-installed-lock"
    fi
    say "building ${#ts_entries[@]} TypeScript executors"
    node "$sdk_ts/build.mjs" --wit "$root_dir/wit" --out-dir "$stage" --cache-dir "$target_dir/ts" "${ts_entries[@]}"
fi
py_started=$SECONDS
if ((${#py_apps[@]} > 0)); then
    ensure_python
    venv="$target_dir/py-venv"
    requirements="$plugins_dir/sdk-py/requirements.txt"
    if ! cmp -s "$requirements" "$venv/.bookhost-installed-requirements" 2>/dev/null; then
        say "installing componentize-py ($requirements) into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/.bookhost-installed-requirements"
    fi
    py_version="$("$venv/bin/componentize-py" --version)"
    mkdir -p "$target_dir/py"
    for app in "${py_apps[@]}"; do
        app_dir="$(dirname "$app")"
        name="$(basename "$app_dir")"
        # Cached by a digest of everything the component is made of.
        key="$(cat "$app_dir"/*.py "$plugins_dir"/sdk-py/*.py "$root_dir"/wit/*.wit <(echo "$py_version") | sha256sum | cut -c1-32)"
        cached="$target_dir/py/$name-$key.wasm"
        if [[ ! -f $cached ]]; then
            say "building the Python executor $name"
            # --stub-wasi: the component imports nothing but bookhost's
            # interfaces; WASI calls inside CPython become traps.
            (cd "$root_dir" && PYTHONDONTWRITEBYTECODE=1 "$venv/bin/componentize-py" -d wit -w executor componentize --stub-wasi \
                -p "$app_dir" -p "$plugins_dir/sdk-py" app -o "$cached.partial" >/dev/null)
            mv -f "$cached.partial" "$cached"
        fi
        cp "$cached" "$stage/$name.wasm"
    done
fi
py_done=$SECONDS

# Every component, whatever its language: only bookhost's imports.
(cd "$root_dir" && cargo run -q --manifest-path plugins/componentize/Cargo.toml -- --check "$stage"/*.wasm >/dev/null)
declare -A placed=()
for component in "$stage"/*.wasm; do
    placed["$(basename "$component")"]=1
    mv -f "$component" "$out_dir/"
done
# Components of executor crates that no longer exist go.
for component in "$out_dir"/*.wasm; do
    [[ -n ${placed["$(basename "$component")"]:-} ]] || rm -f "$component"
done

say "done in $((SECONDS - started)) s (cargo build $((cargo_done - started)) s, toolchain $toolchain; \
TypeScript $((py_started - ts_started)) s; Python $((py_done - py_started)) s)"
