//! Sluice's notification-controller: its Provider, Alert and Receiver reconcilers are not built yet.

fn main() -> std::process::ExitCode {
    sluice_runtime::placeholder_main("notification-controller", "Provider, Alert and Receiver")
}
