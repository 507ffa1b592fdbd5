//! Gives this fixture Rust's default 1 MiB shadow stack back (plugins/.cargo
//! sets 64 KiB for executors): its recursion mode must run into the host's
//! wasm stack limit, not into its own shadow stack.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=1048576");
    }
}
