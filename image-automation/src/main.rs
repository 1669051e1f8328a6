//! image-automation-controller binary: accepts the common flags and exits with status 2 until its
//! ImageUpdateAutomation reconciler is built.

fn main() -> std::process::ExitCode {
    sluice_runtime::placeholder_main(image_automation::CONTROLLER_NAME, "ImageUpdateAutomation")
}
