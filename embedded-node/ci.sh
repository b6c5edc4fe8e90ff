#!/usr/bin/env bash
# CI for the firmware workspace (embedded-node/): host tests of the device logic, release
# builds of both boards, the relay library and the LoRaWAN comparison, and the size
# report with the STM32WLE5 budget enforced. Called by the repository's .ci/run; works
# on a fresh machine with rustup. Uses its own target dir, embedded-node/target.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="$PWD/target"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "targets and components"
rustup target add thumbv7em-none-eabi thumbv6m-none-eabi >/dev/null
rustup component add rustfmt clippy llvm-tools >/dev/null 2>&1 || rustup component add rustfmt clippy llvm-tools-preview >/dev/null
SIZE="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size"
if [ ! -x "$SIZE" ]; then
    SIZE="$(command -v llvm-size || true)"
fi
if [ -z "$SIZE" ]; then
    apt-get update -qq && apt-get install -y -qq llvm >/dev/null
    SIZE="$(command -v llvm-size)"
fi

PACKAGES=(-p slope-firmware -p slope-stm32wl-subghz -p slope-stm32wl-flash -p slope-board-stm32wle5 -p slope-board-rp2040-sx1262 -p lorawan-otaa-stm32wle5)

step "format"
cargo fmt --check "${PACKAGES[@]}"

step "clippy (device logic, host)"
cargo clippy --locked -p slope-firmware --all-targets -- -D warnings

step "host tests: health tests, flash layer, duty cycle, and 1000 attestations with power cuts"
cargo test --locked -p slope-firmware

# The shipping image (logging compiled out) is what the budget applies to and what CI
# builds; FIRMWARE_DEV_IMAGES=1 also builds the development image (defmt over RTT, the
# default features), which doubles the build time.
build() { # <folder> <binary> <target>
    (cd "$1" && DEFMT_LOG=off cargo build --locked --release --no-default-features)
    cp "target/$3/release/$2" "target/$3/release/$2.shipping"
    if [ "${FIRMWARE_DEV_IMAGES:-0}" = 1 ]; then
        (cd "$1" && cargo build --locked --release)
    fi
}

step "firmware: STM32WLE5 (thumbv7em-none-eabi)"
build boards/stm32wle5 slope-stm32wle5 thumbv7em-none-eabi
step "firmware: RP2040 + SX1262 (thumbv6m-none-eabi)"
build boards/rp2040-sx1262 slope-rp2040-sx1262 thumbv6m-none-eabi
step "firmware with the compact suite (feature compact): STM32WLE5 and RP2040"
(cd boards/stm32wle5 && DEFMT_LOG=off cargo build --locked --release --no-default-features --features compact)
cp target/thumbv7em-none-eabi/release/slope-stm32wle5 target/thumbv7em-none-eabi/release/slope-stm32wle5.compact
(cd boards/rp2040-sx1262 && DEFMT_LOG=off cargo build --locked --release --no-default-features --features compact)
cp target/thumbv6m-none-eabi/release/slope-rp2040-sx1262 target/thumbv6m-none-eabi/release/slope-rp2040-sx1262.compact
step "comparison: LoRaWAN OTAA with lorawan-device (thumbv7em-none-eabi)"
build compare lorawan-otaa-stm32wle5 thumbv7em-none-eabi

step "relay role (embassy-net) as a library for thumbv7em-none-eabi"
cargo build --locked --release -p slope-firmware --features relay,embassy-time --target thumbv7em-none-eabi

step "sizes (flash = text + data, static RAM = data + bss; shipping images)"
report() { # <label> <elf>
    "$SIZE" "$2" | awk -v l="$1" 'NR==2 { printf "%-40s flash %7d B (%5.1f KiB)   static RAM %6d B (%4.1f KiB)\n", l, $1+$2, ($1+$2)/1024, $2+$3, ($2+$3)/1024 }'
}
report "slope device, STM32WLE5" target/thumbv7em-none-eabi/release/slope-stm32wle5.shipping
report "slope device, RP2040 + SX1262" target/thumbv6m-none-eabi/release/slope-rp2040-sx1262.shipping
report "LoRaWAN OTAA (lorawan-device), STM32WLE5" target/thumbv7em-none-eabi/release/lorawan-otaa-stm32wle5.shipping
report "slope device + compact, STM32WLE5" target/thumbv7em-none-eabi/release/slope-stm32wle5.compact
report "slope device + compact, RP2040 + SX1262" target/thumbv6m-none-eabi/release/slope-rp2040-sx1262.compact

step "budget: Slope device role on STM32WLE5 <= 96 KiB flash, <= 24 KiB static RAM (with and without the compact suite)"
for image in shipping compact; do
    "$SIZE" "target/thumbv7em-none-eabi/release/slope-stm32wle5.$image" | awk -v image="$image" 'NR==2 {
        flash = $1 + $2; ram = $2 + $3
        if (flash > 96 * 1024 || ram > 24 * 1024) { printf "%s image over budget: flash %d B, RAM %d B\n", image, flash, ram; exit 1 }
        printf "%s image within budget: flash %d B of 98304, RAM %d B of 24576\n", image, flash, ram }'
done

echo
echo "embedded-node CI passed"
