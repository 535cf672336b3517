//! `drift-bridge`: the bridge's rules on the command line.
//!
//! Five jobs need the bridge outside the edge: trying the rules out and
//! backfilling archives (`convert`, which needs nothing but the core),
//! replaying archived webhooks into a running bridge (`send`, which goes
//! through the bridge's own verification, translation and deduplication),
//! managing a running bridge's apps from scripts (`apps`), reading its
//! delivery log and replaying dead letters (`deliveries`), and taking an
//! app's deliveries on a developer's machine (`listen`); the last three over
//! its admin API ([`bridge`]). Every subcommand that talks to a bridge takes
//! `--bridge <base URL>`.
//! Like cargo and ripgrep, machine output goes to stdout and everything meant
//! for people (progress, rejections, summaries) to stderr. The exit statuses
//! are in `after_help` below and, per subcommand, in docs/cli.md.

// The command line is native only: its dependencies (clap, indicatif, ureq,
// ctrlc, tungstenite) stay out of the wasm builds. `cargo test --target wasm32-unknown-unknown`
// still builds every binary of the package, so there it is an empty one.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod apps;
#[cfg(not(target_arch = "wasm32"))]
mod bridge;
#[cfg(not(target_arch = "wasm32"))]
mod convert;
#[cfg(not(target_arch = "wasm32"))]
mod deliveries;
#[cfg(not(target_arch = "wasm32"))]
mod listen;
#[cfg(not(target_arch = "wasm32"))]
mod progress;
#[cfg(not(target_arch = "wasm32"))]
mod send;
#[cfg(not(target_arch = "wasm32"))]
mod state;

#[cfg(not(target_arch = "wasm32"))]
use std::io;
#[cfg(not(target_arch = "wasm32"))]
use std::process::ExitCode;

#[cfg(not(target_arch = "wasm32"))]
use clap::{CommandFactory, Parser, Subcommand};

/// Exit status for a usage or I/O error, as clap uses for its own.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const EXIT_USAGE: u8 = 2;

#[cfg(not(target_arch = "wasm32"))]
#[derive(Parser)]
#[command(
    name = "drift-bridge",
    version = drift_bridge::VERSION,
    about = "Translate Drift conversation webhooks between the push and legacy close forms",
    after_help = "\
Exit status, for every subcommand (the table per subcommand is in docs/cli.md):
  0    done: every event or line went through; the bridge did what was asked;
       listen was stopped with Ctrl-C
  1    something was refused: an event or line rejected (or, for send, given
       up on after --retries); a change, a filter or a replay the bridge
       refused; a test delivery the app did not take; a listener the bridge
       refused or ended
  2    a usage or I/O error; the bridge could not be reached, gave no answer,
       refused the token or failed (5xx)
  130  send was interrupted: run the same command again to carry on",
    subcommand_required = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Subcommand)]
enum Command {
    /// Translate Drift events from FILE (or stdin) into the events the bridge delivers
    #[command(long_about = convert::ABOUT)]
    Convert(convert::Args),
    /// Post archived Drift events (NDJSON) to a running bridge
    #[command(long_about = send::ABOUT)]
    Send(send::Args),
    /// Manage the apps a running bridge delivers to: list, add, edit, rm, rotate, test
    #[command(long_about = apps::ABOUT)]
    Apps(apps::Args),
    /// A running bridge's delivery log: list, show, replay
    #[command(long_about = deliveries::ABOUT)]
    Deliveries(deliveries::Args),
    /// Take an app's deliveries on this machine: each is POSTed to a local URL
    #[command(long_about = listen::ABOUT)]
    Listen(listen::Args),
    /// Print a completion script for SHELL on stdout
    #[command(after_help = "For example: drift-bridge completions bash > /etc/bash_completion.d/drift-bridge")]
    Completions {
        /// The shell to complete in
        shell: clap_complete::Shell,
    },
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> ExitCode {
    // clap prints help and --version on stdout (exit 0) and usage errors on
    // stderr (exit 2).
    let cli = Cli::parse();
    match cli.command {
        Command::Convert(args) => convert::run(args),
        Command::Send(args) => send::run(args),
        Command::Apps(args) => apps::run(args),
        Command::Deliveries(args) => deliveries::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "drift-bridge", &mut io::stdout());
            ExitCode::SUCCESS
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
