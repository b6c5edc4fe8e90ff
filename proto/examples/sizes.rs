//! Prints the encoded size of every Slope message next to its budget.
//! `cargo run -p slope-proto --example sizes`

use slope_proto::limits::MAX_RECEIPT_BATCH;
use slope_proto::sample;

fn main() {
    let inc = sample::inception(1);
    let dev = inc.device_id();
    let rows = [
        ("inception", inc.frame().len(), None),
        (
            "interaction, 8 B payload, 0 heard",
            sample::interaction(&dev, 1, 1000, 0).frame().len(),
            Some(115),
        ),
        (
            "interaction, 8 B payload, 3 heard",
            sample::interaction(&dev, 1, 1000, 3).frame().len(),
            Some(140),
        ),
        (
            "interaction, 8 B payload, 4 heard",
            sample::interaction(&dev, 1, 1000, 4).frame().len(),
            None,
        ),
        (
            "rotation",
            sample::rotation(&dev, 2, 1000, 12).frame().len(),
            Some(222),
        ),
        (
            "witness receipt",
            sample::receipt(&dev, 9, 1000).frame().len(),
            Some(128),
        ),
    ];
    println!("{:<40} {:>6} {:>7}  fits", "message", "bytes", "budget");
    for (name, len, budget) in rows {
        let (b, ok) = match budget {
            Some(b) => (b.to_string(), if len <= b { "yes" } else { "NO" }),
            None => ("-".to_string(), "-"),
        };
        println!("{name:<40} {len:>6} {b:>7}  {ok}");
    }

    // Batched witness receipts: one signature over many receipt bodies (gossip only).
    println!();
    println!(
        "{:<40} {:>6} {:>9}  vs single receipt",
        "receipt batch (entries)", "bytes", "per entry"
    );
    let single = sample::receipt(&dev, 9, 1000).frame().len();
    let mut out = vec![0u8; MAX_RECEIPT_BATCH];
    for n in [1, 16, 64, 256] {
        let len = sample::receipt_batch(&dev, 9, n, &mut out);
        let per = len as f64 / n as f64;
        println!(
            "{:<40} {len:>6} {per:>9.1}  {:.0} %",
            format!("receipt batch, {n} entries"),
            100.0 * per / single as f64
        );
    }
}
