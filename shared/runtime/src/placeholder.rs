//! The entry point of a controller whose reconcilers are not built yet.

use std::process::ExitCode;

use clap::Args;

use crate::flags::RuntimeFlags;

/// Exit status of a placeholder controller, so a Deployment running it visibly crash-loops.
const NOT_IMPLEMENTED: u8 = 2;

/// Accepts the common flags (so `--help` documents them), then exits with status 2 and a message
/// naming the `kinds` that are missing.
pub fn placeholder_main(name: &'static str, kinds: &str) -> ExitCode {
    command(name).get_matches();
    eprintln!("{}", not_implemented(name, kinds));
    ExitCode::from(NOT_IMPLEMENTED)
}

fn command(name: &'static str) -> clap::Command {
    RuntimeFlags::augment_args(clap::Command::new(name))
        .version(env!("CARGO_PKG_VERSION"))
        .about(format!("Sluice {name} (not implemented yet)"))
}

fn not_implemented(name: &str, kinds: &str) -> String {
    format!(
        "{name}: the {kinds} reconcilers are not implemented in Sluice yet; run Flux's {name} instead"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_common_flags_and_names_what_is_missing() {
        let matches = command("notification-controller")
            .try_get_matches_from(["notification-controller", "--concurrent=2"])
            .expect("the common flags parse");
        assert_eq!(matches.get_one::<u16>("concurrent"), Some(&2));
        assert_eq!(
            not_implemented("notification-controller", "Provider"),
            "notification-controller: the Provider reconcilers are not implemented in Sluice yet; \
             run Flux's notification-controller instead"
        );
    }
}
