//! CPU time and memory of a process from `/proc`.

use std::process::Command;
use std::sync::OnceLock;

use crate::{Error, Result};

/// Which process to read: this one or another by PID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    Myself,
    Pid(u32),
}

impl Proc {
    fn file(self, name: &str) -> String {
        match self {
            Proc::Myself => format!("/proc/self/{name}"),
            Proc::Pid(pid) => format!("/proc/{pid}/{name}"),
        }
    }

    fn read(self, name: &str) -> Result<String> {
        let path = self.file(name);
        std::fs::read_to_string(&path)
            .map_err(|e| Error::Setup(format!("cannot read {path} (has the process exited?): {e}")))
    }
}

/// CPU seconds of a process and of its reaped (waited-for) children, from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    pub user: f64,
    pub system: f64,
    pub children_user: f64,
    pub children_system: f64,
}

impl CpuTimes {
    /// Reads the process's CPU times now.
    pub fn of(process: Proc) -> Result<Self> {
        let text = process.read("stat")?;
        parse_stat(&text, clock_ticks()).ok_or_else(|| {
            Error::Setup(format!(
                "unexpected {} format: {text}",
                process.file("stat")
            ))
        })
    }

    /// utime + stime.
    pub fn own(&self) -> f64 {
        self.user + self.system
    }

    /// cutime + cstime: children that exited and were waited for.
    pub fn children(&self) -> f64 {
        self.children_user + self.children_system
    }

    /// Own plus reaped children.
    pub fn total(&self) -> f64 {
        self.own() + self.children()
    }

    /// The CPU time spent after `before` was taken.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            user: self.user - before.user,
            system: self.system - before.system,
            children_user: self.children_user - before.children_user,
            children_system: self.children_system - before.children_system,
        }
    }
}

/// Parses `/proc/<pid>/stat`; fields 14–17 are utime, stime, cutime, cstime in clock ticks.
pub fn parse_stat(text: &str, ticks_per_second: f64) -> Option<CpuTimes> {
    // The command name (field 2) is parenthesised and may hold spaces or parentheses.
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state), so field n is at index n - 3.
    let ticks = |field: usize| -> Option<f64> {
        let value: u64 = fields.get(field - 3)?.parse().ok()?;
        Some(value as f64 / ticks_per_second)
    };
    Some(CpuTimes {
        user: ticks(14)?,
        system: ticks(15)?,
        children_user: ticks(16)?,
        children_system: ticks(17)?,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`); Linux's USER_HZ of 100 if that fails.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM` peak RSS, `VmRSS` current RSS).
pub fn status_kib(process: Proc, field: &str) -> Result<u64> {
    let text = process.read("status")?;
    parse_status_kib(&text, field)
        .ok_or_else(|| Error::Setup(format!("{} has no {field} line", process.file("status"))))
}

/// Finds `field:   1234 kB` in a `/proc/<pid>/status` text.
pub fn parse_status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Resets the peak RSS (`VmHWM`) to the current RSS; false when the kernel refused.
pub fn reset_peak_rss(process: Proc) -> bool {
    std::fs::write(process.file("clear_refs"), "5").is_ok()
}

/// KiB as MiB, for printing.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_ticks_after_an_odd_command_name() {
        let stat = "4242 (kube (ctl) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 30 20 20 0 9 0 100 1000 200";
        let times = parse_stat(stat, 100.0).unwrap();
        assert_eq!(times.user, 2.5);
        assert_eq!(times.system, 0.5);
        assert_eq!(times.children(), 0.5);
        assert_eq!(times.total(), 3.5);
        let later = parse_stat(&stat.replace(" 250 50 ", " 350 60 "), 100.0).unwrap();
        assert!((later.since(&times).own() - 1.1).abs() < 1e-9);
        assert!(parse_stat("12 (short) S 1 2", 100.0).is_none());
        assert!(parse_stat("no parenthesis", 100.0).is_none());
    }

    #[test]
    fn parses_status_fields_in_kib() {
        let status = "Name:\tbench\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(51200));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(40960));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(mib(51200), 50.0);
    }

    #[test]
    fn reads_this_process() {
        let times = CpuTimes::of(Proc::Myself).unwrap();
        assert!(times.total() >= 0.0);
        assert!(status_kib(Proc::Myself, "VmRSS").unwrap() > 0);
    }
}
