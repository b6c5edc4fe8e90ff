//! Airtime and maximum rate under the EU868 1 % duty cycle of each Slope message at each
//! data rate, next to a LoRaWAN uplink carrying the same 8-byte application payload.
//!
//! `cargo run -p slope-radios --example airtime` prints a Markdown table.

use slope_radios::duty_cycle::WINDOW_US;
use slope_radios::frame::OVERHEAD;
use slope_radios::region::{LORAWAN_OVERHEAD, Region};

/// Slope envelope sizes in bytes, as printed by `cargo run -p slope-proto --example sizes`
/// (wire format of proto commit 844ccdb). Provisional: refresh them when the format changes.
const SLOPE_MESSAGES: [(&str, usize); 4] = [
    ("attestation, 8 B payload, no neighbours", 109),
    ("attestation, 3 neighbours", 133),
    ("rotation", 158),
    ("witness receipt", 119),
];

/// Application payload carried by the LoRaWAN comparison uplink.
const LORAWAN_APP_PAYLOAD: usize = 8;

/// Duty cycle of the EU868 g/g1 sub-bands, parts per ten thousand.
const DUTY_CYCLE_BP: u64 = 100;

fn cell(dr: &slope_radios::region::DataRate, phy_len: usize) -> String {
    if phy_len > dr.max_phy_payload() {
        return "does not fit".to_owned();
    }
    match dr.modulation().time_on_air_us(phy_len) {
        Ok(us) => {
            let per_hour = WINDOW_US * DUTY_CYCLE_BP / 10_000 / u64::from(us);
            format!("{:.1} ms, {per_hour}/h", f64::from(us) / 1000.0)
        }
        Err(_) => "does not fit".to_owned(),
    }
}

fn main() {
    let region = Region::Eu868;
    print!("| data rate | max PHY payload |");
    for (name, size) in SLOPE_MESSAGES {
        print!(" {name} ({} B on air) |", size + OVERHEAD);
    }
    println!(
        " LoRaWAN uplink, {LORAWAN_APP_PAYLOAD} B app payload ({} B on air) |",
        LORAWAN_APP_PAYLOAD + LORAWAN_OVERHEAD
    );
    print!("|---|---|");
    for _ in 0..=SLOPE_MESSAGES.len() {
        print!("---|");
    }
    println!();
    for dr in region.data_rates() {
        print!(
            "| DR{} SF{}/{} kHz | {} B |",
            dr.index,
            dr.sf.factor(),
            dr.bw.hz() / 1000,
            dr.max_phy_payload()
        );
        for (_, size) in SLOPE_MESSAGES {
            print!(" {} |", cell(dr, size + OVERHEAD));
        }
        println!(" {} |", cell(dr, LORAWAN_APP_PAYLOAD + LORAWAN_OVERHEAD));
    }
    println!();
    println!(
        "Time on air: 8-symbol preamble, explicit header, CRC on, CR 4/5, low data rate \
         optimisation at SF11/SF12 125 kHz (lora-modulation). Rate: messages per hour that fit \
         the 1 % duty cycle (36 s of airtime per hour per sub-band) if nothing else is sent."
    );
}
