#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, FromArgMatches, Parser};
use oip_resolver::{config::Config, Hooks};

#[cfg(feature = "leak-injection")]
mod leak;

/// jemalloc rather than glibc's malloc: glibc kept the pages of freed connection buffers (2,000
/// paused players left RSS at 70 MB with 0.5 MB of heap in use, for good); jemalloc, as
/// `.cargo/config.toml` builds it, hands them back to the system within seconds. Here in the
/// binary, not the library, so that tests and benches linking the library run on their own.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Bytes the program has allocated and not freed, as jemalloc counts them. Read from its own
/// statistics rather than counted per allocation: a counter shared by every thread cost a
/// tenth of the CPU of a warm answer.
fn heap_bytes() -> u64 {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    stats::allocated::read().map_or(0, |b| b as u64)
}

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
    /// Set one key, over the file and the environment: `--set gun.max_attempts=5`. Repeatable.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
}

fn main() -> ExitCode {
    let matches = Cli::command()
        .after_help(Config::variables_help())
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let loaded = Config::check_variable_names(std::env::vars().map(|(name, _)| name))
        .and_then(|()| Config::load(&cli.config, |key| std::env::var(key).ok(), &cli.set));
    let config = match loaded {
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
    let hooks = Hooks {
        heap: Some(heap_bytes),
        #[cfg(feature = "leak-injection")]
        answered: Some(leak::hold_every_nth),
        #[cfg(not(feature = "leak-injection"))]
        answered: None,
    };
    match actix_web::rt::System::new().block_on(oip_resolver::serve(config, hooks)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("oip-resolver: {e}");
            ExitCode::FAILURE
        }
    }
}
