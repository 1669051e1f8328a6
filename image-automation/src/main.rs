//! Sluice's image-automation-controller: its ImageUpdateAutomation reconcilers are not built yet.

fn main() -> std::process::ExitCode {
    sluice_runtime::placeholder_main("image-automation-controller", "ImageUpdateAutomation")
}
