//! `slope`: the Slope gateway daemon and its operator commands.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use slope_mesh::config::{self, Config};
use slope_mesh::identity::{Identity, KEY_FILE};
use slope_mesh::store::{DB_FILE, Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The Slope gateway: hears LoRa frames, verifies and witnesses them, gossips with other
/// gateways, and keeps a durable, verifiable record of every device.
///
/// Start with `slope init`, edit slope.toml, then `slope gateway`.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "SLOPE_CONFIG",
        default_value = "slope.toml"
    )]
    config: PathBuf,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// Log filter (tracing env-filter syntax), e.g. `info,slope_mesh=debug`.
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented default slope.toml, the data directory and a new gateway key.
    Init {
        /// Folder to initialise (the configuration goes there).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run the gateway (until Ctrl-C or SIGTERM).
    Gateway,
    /// Ask the running gateway for its status.
    Status,
    /// List devices known to the running gateway.
    Devices {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one device (64 hex characters).
    Device { id: String },
    /// The hash-chained lineage.
    Lineage {
        #[command(subcommand)]
        command: LineageCommand,
    },
    /// The database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand)]
enum LineageCommand {
    /// Re-verify every record against the committed head (reads the data directory, or
    /// asks the running gateway).
    Verify {
        /// Also replay the trust engine's lineage: re-derive every decision from the
        /// logged inputs under the logged policy (`slope_node::lineage::verify_replay`).
        /// Reads the data directory: run it with the gateway stopped.
        #[arg(long)]
        replay: bool,
    },
    /// Export every record as JSON lines (node stopped), last line the head.
    Export {
        /// Output file (stdout when absent).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Instead, write the trust engine's lineage as a signed `slope_node::lineage`
        /// export (binary), re-verifiable by anyone with the gateway's public key.
        #[arg(long)]
        engine: bool,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Integrity check: redb structure, every record decodes, frames match digests,
    /// proofs verify, lineage chain intact. Run with the gateway stopped.
    Check,
}

fn init_logs(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logs(cli.log_format, &cli.log);
    match cli.command {
        Command::Init { dir } => init(&dir),
        Command::Gateway => gateway(&cli.config).await,
        Command::Status => print_get(&cli.config, "/v1/status").await,
        Command::Devices { limit } => {
            print_get(&cli.config, &format!("/v1/devices?limit={limit}")).await
        }
        Command::Device { id } => print_get(&cli.config, &format!("/v1/devices/{id}")).await,
        Command::Lineage {
            command: LineageCommand::Verify { replay },
        } => lineage_verify(&cli.config, replay).await,
        Command::Lineage {
            command: LineageCommand::Export { out, engine },
        } => lineage_export(&cli.config, out, engine),
        Command::Db {
            command: DbCommand::Check,
        } => db_check(&cli.config),
    }
}

fn init(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join("slope.toml");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    if config_path.exists() {
        println!("{} exists; left as is", config_path.display());
    } else {
        let token = hex::encode(rand::random::<[u8; 24]>());
        let mut f = std::fs::File::create_new(&config_path)
            .with_context(|| format!("creating {}", config_path.display()))?;
        f.write_all(config::template(&token).as_bytes())?;
        println!("wrote {}", config_path.display());
    }
    let key = data.join(KEY_FILE);
    let identity = if key.exists() {
        println!("{} exists; left as is", key.display());
        Identity::load(&key)?
    } else {
        let id = Identity::generate();
        id.save(&key)?;
        println!("wrote {} (mode 0600)", key.display());
        id
    };
    println!("peer id:    {}", identity.peer_id());
    println!("witness id: {}", hex::encode(identity.witness_id().0));
    println!(
        "witness key: {} (peers list it in [[trust.witnesses]])",
        hex::encode(identity.signing_key().verifying_key().as_bytes())
    );
    println!(
        "next: edit {} (bootstrap peers), then `slope gateway`",
        config_path.display()
    );
    Ok(())
}

fn load(config: &Path) -> Result<Config> {
    Config::load(config).with_context(|| "run `slope init` first, or pass --config".to_string())
}

/// The packet forwarder server's settings from `[radio]`.
#[cfg(feature = "forwarder")]
fn forwarder_config(
    radio: &slope_mesh::config::Radio,
    bind: std::net::SocketAddr,
) -> Result<slope_radios::forwarder::Config> {
    use slope_radios::forwarder::{Config, Eui};
    let euis = radio
        .forwarder_gateways
        .iter()
        .map(|h| {
            let bytes: [u8; 8] = hex::decode(h.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .with_context(|| format!("radio.forwarder_gateways: {h:?} is not 16 hex digits"))?;
            Ok(Eui(bytes))
        })
        .collect::<Result<std::collections::HashSet<_>>>()?;
    Ok(Config {
        bind,
        allowed_gateways: (!euis.is_empty()).then_some(euis),
        allowed_sources: (!radio.forwarder_sources.is_empty())
            .then(|| radio.forwarder_sources.iter().copied().collect()),
        max_gateways: radio.forwarder_max_gateways.max(1),
        ..Config::default()
    })
}

async fn gateway(config_path: &Path) -> Result<()> {
    let config = load(config_path)?;
    let identity = Identity::load(&config.data_dir.join(KEY_FILE))?;
    let witness = identity.witness_id();
    let node = slope_mesh::Node::start(config.clone(), identity, true).await?;
    #[cfg(feature = "forwarder")]
    let _forwarder = if config.radio.forwarder.is_empty() {
        None
    } else {
        let bind = config
            .radio
            .forwarder
            .parse()
            .with_context(|| format!("radio.forwarder {:?}", config.radio.forwarder))?;
        let source = slope_mesh::source::forwarder::ForwarderSource::bind_with(forwarder_config(
            &config.radio,
            bind,
        )?)
        .await
        .with_context(|| format!("packet forwarder on {bind}"))?;
        tracing::info!(addr = %source.server.local_addr(), "packet forwarder listening");
        let source = if config.radio.echo {
            let echo = slope_mesh::downlink::Config {
                min_gap_ms: config.radio.echo_gap_ms,
                ..slope_mesh::downlink::Config::default()
            };
            source.with_echo(slope_mesh::downlink::Echoer::new(
                echo,
                witness,
                node.store().clone(),
                node.metrics().clone(),
            ))
        } else {
            source
        };
        Some(node.radio().spawn(source))
    };
    for a in node.listen_addrs().await? {
        tracing::info!(%a, "peer address");
    }
    wait_for_signal().await;
    tracing::info!("stopping");
    node.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A minimal HTTP/1.1 GET against the local API (loopback, no TLS).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("no gateway API at {addr} (is `slope gateway` running?)"))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_owned()))
}

async fn print_get(config: &Path, path: &str) -> Result<()> {
    let config = load(config)?;
    let (code, body) = http_get(config.api.listen, path).await?;
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(body);
    println!("{pretty}");
    if code != 200 {
        bail!("HTTP {code}");
    }
    Ok(())
}

async fn lineage_verify(config_path: &Path, replay: bool) -> Result<()> {
    let config = load(config_path)?;
    match Store::open_existing(&config.data_dir.join(DB_FILE)) {
        Ok(store) => {
            match store.verify_lineage()? {
                Ok(n) => println!("gateway lineage OK: {n} records"),
                Err(e) => bail!("gateway lineage does NOT verify: {e}"),
            }
            // The trust engine's lineage: exported with a checkpoint signed by the
            // gateway key, then re-verified from nothing but the public key.
            let identity = Identity::load(&config.data_dir.join(KEY_FILE))?;
            if let Some(export) = store.engine_export(identity.signing_key())? {
                let author = identity.signing_key().verifying_key().to_bytes();
                let verified = if replay {
                    slope_node::lineage::verify_replay(&export, &author)
                } else {
                    slope_node::lineage::verify(&export, &author)
                };
                match verified {
                    Ok(r) => println!(
                        "trust engine lineage OK: {} records, {} decisions, {} frames re-verified{}",
                        r.records,
                        r.decisions,
                        r.frames,
                        if replay {
                            ", every decision re-derived by replay"
                        } else {
                            ""
                        }
                    ),
                    Err(e) => bail!("trust engine lineage does NOT verify: {e}"),
                }
            }
            Ok(())
        }
        Err(StoreError::Locked { .. }) if replay => {
            bail!("--replay reads the data directory: stop the gateway first")
        }
        Err(StoreError::Locked { .. }) => {
            let (code, body) = http_get(config.api.listen, "/v1/lineage/verify").await?;
            println!("{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if code != 200 || v["ok"] != serde_json::Value::Bool(true) {
                bail!("lineage does NOT verify");
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn lineage_export(config_path: &Path, out: Option<PathBuf>, engine: bool) -> Result<()> {
    let config = load(config_path)?;
    let store = Store::open_existing(&config.data_dir.join(DB_FILE))?;
    if engine {
        let identity = Identity::load(&config.data_dir.join(KEY_FILE))?;
        let export = store
            .engine_export(identity.signing_key())?
            .context("no trust engine lineage in this database")?;
        match &out {
            Some(p) => {
                std::fs::write(p, &export).with_context(|| format!("writing {}", p.display()))?
            }
            None => std::io::stdout().lock().write_all(&export)?,
        }
        return Ok(());
    }
    let mut w: Box<dyn Write> = match &out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut from = 0;
    loop {
        let page = store.lineage(from, 4096)?;
        let Some(last) = page.last() else { break };
        from = last.index + 1;
        for r in &page {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
        }
    }
    let (n, head) = store.lineage_head()?;
    serde_json::to_writer(
        &mut w,
        &serde_json::json!({"head": {"records": n, "digest": hex::encode(head)}}),
    )?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}

fn db_check(config_path: &Path) -> Result<()> {
    let config = load(config_path)?;
    let path = config.data_dir.join(DB_FILE);
    let report = Store::check(&path);
    println!(
        "{}: {} devices, {} frames, {} divergence proofs, {} lineage records",
        path.display(),
        report.devices,
        report.frames,
        report.divergences,
        report.lineage_records
    );
    if report.ok() {
        println!("OK");
        return Ok(());
    }
    for p in &report.problems {
        println!("PROBLEM: {}", p.what);
    }
    bail!("{} problem(s) found", report.problems.len())
}
