#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use oip_resolver::config::Config;

/// Resolves OIP records from a GUN relay to a chosen depth, and streams media with byte ranges.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The configuration file; relative paths inside it are taken from its folder.
    #[arg(long, default_value = "./config.yaml")]
    config: PathBuf,
    /// Validate the configuration and exit: 0 when it is valid, 1 when not.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match Config::load(&cli.config, |key| std::env::var(key).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("oip-resolver: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        println!("{}: configuration is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    match actix_web::rt::System::new().block_on(oip_resolver::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("oip-resolver: {e}");
            ExitCode::FAILURE
        }
    }
}
