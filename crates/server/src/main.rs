//! The `portcullis` binary: `serve`, `check-config` and `recover-admin` (the server), `sql` and `token` (the
//! command-line client, `portcullis-cli`).

use portcullis::{config, logging, server};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: a sign-in makes many small, short-lived allocations,
/// and glibc's allocator was ~7% of the server's CPU per token sign-in (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "The authentication and access-control front door of a SQL database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve {
        /// Settings file (TOML).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory (catalog, generated keys).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// PostgreSQL-protocol listener, HOST:PORT.
        #[arg(long)]
        sql_addr: Option<String>,
        /// HTTP listener, HOST:PORT.
        #[arg(long)]
        http_addr: Option<String>,
        /// Serve TLS with a self-signed certificate generated into the data directory.
        #[arg(long)]
        dev_tls: bool,
    },
    /// Checks a settings file (and the environment) and prints the resolved settings.
    CheckConfig {
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Recovers admin@system on the server's host (run it with the server stopped): a new
    /// password (PORTCULLIS_ADMIN_PASSWORD, or generated and printed), enabled, with the
    /// system administrator role.
    RecoverAdmin {
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Runs SQL statements (-c) or an interactive shell; signs in with a password or SSO.
    Sql(portcullis_cli::SqlArgs),
    /// Signs in with SSO (or reuses the cached sign-in) and prints the token, for PGPASSWORD.
    Token(portcullis_cli::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sql(args) => {
            let _ = logging::init(true, None);
            return client_exit(portcullis_cli::sql(&args));
        }
        Command::Token(args) => {
            let _ = logging::init(true, None);
            return client_exit(portcullis_cli::token(&args));
        }
        Command::Serve {
            config,
            data_dir,
            sql_addr,
            http_addr,
            dev_tls,
        } => {
            let overrides = config::Overrides {
                data_dir,
                sql_addr,
                http_addr,
                dev_tls,
            };
            config::resolve(config.as_deref(), overrides).and_then(|settings| {
                let audit = logging::init(false, settings.audit_log.as_deref())?;
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?
                    .block_on(server::run(settings, audit))
            })
        }
        Command::RecoverAdmin { config, data_dir } => {
            let overrides = config::Overrides {
                data_dir,
                ..Default::default()
            };
            config::resolve(config.as_deref(), overrides).and_then(|settings| {
                let audit = logging::init(false, None)?;
                let done = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(server::recover_admin(settings));
                if let Some(a) = audit {
                    a.flush();
                }
                done
            })
        }
        Command::CheckConfig { config } => {
            config::resolve(config.as_deref(), config::Overrides::default()).map(|s| {
                println!("configuration is valid:\n{s:#?}");
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn client_exit(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::from(2)
        }
    }
}
