//! Puts memory.x on the linker path and passes the link scripts, so the board builds the
//! same from its own folder and from the workspace root.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("memory.x is readable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    // defmt-rtt is linked in every build (lora-phy logs through defmt).
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
