//! Prints the encoded size of every Slope message next to its budget.
//! `cargo run -p slope-proto --example sizes`

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
}
