//! Task files for role tests.

/// The bootstrap task's file with a given status (as gaffer writes it).
pub fn bootstrap_task(status: &str) -> String {
    gaffer::roles::bootstrap::task_file(
        &gaffer::team::task::TaskId::from_number(1),
        status.parse().unwrap(),
    )
}
