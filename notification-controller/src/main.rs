//! notification-controller binary: accepts the common flags and exits with status 2 until its
//! Provider, Alert and Receiver reconcilers are built.

fn main() -> std::process::ExitCode {
    sluice_runtime::placeholder_main(
        notification_controller::CONTROLLER_NAME,
        "Provider, Alert and Receiver",
    )
}
