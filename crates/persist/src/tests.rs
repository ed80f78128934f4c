use super::*;

/// A stand-in for `prewarm_core::snapshot`: magic, `u32` version, body.
fn parse(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() < 10 || &bytes[..6] != b"PWSNAP" {
        return Err("bad magic".into());
    }
    let version = u32::from_le_bytes(bytes[6..10].try_into().unwrap());
    if version > 1 {
        return Err(format!(
            "format version {version} is newer than the supported 1"
        ));
    }
    Ok(bytes[10..].to_vec())
}

fn snapshot(version: u32, body: &[u8]) -> Vec<u8> {
    let mut b = b"PWSNAP".to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(body);
    b
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.pwsnap");
    write_atomic(&path, &snapshot(1, b"first")).unwrap();
    write_atomic(&path, &snapshot(1, b"second")).unwrap();
    assert_eq!(
        read_snapshot_file(&path, parse).unwrap(),
        Some(b"second".to_vec())
    );
    assert_eq!(names(dir.path()), ["state.pwsnap"]);
}

#[test]
fn missing_file_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let got = read_snapshot_file(&dir.path().join("absent"), parse).unwrap();
    assert_eq!(got, None);
}

#[test]
fn corrupt_file_is_kept_aside_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.pwsnap");
    let garbage: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    fs::write(&path, &garbage).unwrap();
    let err = read_snapshot_file(&path, parse).unwrap_err();
    let PersistError::Corrupt {
        path: p,
        moved_to,
        reason,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(p, &path);
    assert_eq!(moved_to, &dir.path().join("state.pwsnap.corrupt-1"));
    assert_eq!(reason, "bad magic");
    assert_eq!(fs::read(moved_to).unwrap(), garbage);
    assert!(!path.exists(), "the next start begins afresh");
    let msg = err.to_string();
    assert!(
        msg.contains("state.pwsnap") && msg.contains("corrupt-1") && msg.contains("bad magic"),
        "{msg}"
    );
}

#[test]
fn newer_version_file_is_kept_aside_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.pwsnap");
    let newer = snapshot(7, b"from the future");
    fs::write(&path, &newer).unwrap();
    let err = read_snapshot_file(&path, parse).unwrap_err();
    assert!(err.to_string().contains("version 7 is newer"), "{err}");
    assert_eq!(
        fs::read(dir.path().join("state.pwsnap.corrupt-1")).unwrap(),
        newer
    );
}

#[test]
fn second_corrupt_file_does_not_overwrite_the_first_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.pwsnap");
    fs::write(&path, b"first bad").unwrap();
    assert!(read_snapshot_file(&path, parse).is_err());
    fs::write(&path, b"second bad").unwrap();
    let err = read_snapshot_file(&path, parse).unwrap_err();
    assert!(
        matches!(&err, PersistError::Corrupt { moved_to, .. } if moved_to.ends_with("state.pwsnap.corrupt-2"))
    );
    assert_eq!(
        fs::read(dir.path().join("state.pwsnap.corrupt-1")).unwrap(),
        b"first bad"
    );
    assert_eq!(
        fs::read(dir.path().join("state.pwsnap.corrupt-2")).unwrap(),
        b"second bad"
    );
    // A good snapshot written afterwards reads normally; quarantines stay.
    write_atomic(&path, &snapshot(1, b"ok")).unwrap();
    assert_eq!(
        read_snapshot_file(&path, parse).unwrap(),
        Some(b"ok".to_vec())
    );
    assert_eq!(
        names(dir.path()),
        [
            "state.pwsnap",
            "state.pwsnap.corrupt-1",
            "state.pwsnap.corrupt-2"
        ]
    );
}

#[test]
fn failed_write_removes_its_temp_file_and_keeps_the_old_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.pwsnap");
    write_atomic(&path, b"old").unwrap();
    // Renaming a file over a non-empty directory fails.
    let blocked = dir.path().join("blocked");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("x"), b"x").unwrap();
    let err = write_atomic(&blocked, b"new").unwrap_err();
    assert!(
        matches!(
            err,
            PersistError::Io {
                op: "rename into place",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(names(dir.path()), ["blocked", "state.pwsnap"]);
    assert_eq!(fs::read(&path).unwrap(), b"old");
}

#[test]
fn unreadable_path_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // Reading a directory fails with something other than NotFound.
    let err = read_snapshot_file(dir.path(), parse).unwrap_err();
    assert!(matches!(&err, PersistError::Io { op: "read", .. }), "{err}");
    assert!(err.to_string().contains(&*dir.path().to_string_lossy()));
}

#[test]
fn a_killed_saves_temp_file_is_removed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("quote.snapshot");
    write_atomic(&snap, &snapshot(1, b"kept")).unwrap();
    // What a save killed between create and rename leaves behind.
    let stale = dir.path().join(".quote.snapshot.tmp-4194305-0");
    fs::write(&stale, b"half").unwrap();
    let own = dir
        .path()
        .join(format!(".quote.snapshot.tmp-{}-0", std::process::id()));
    fs::write(&own, b"mine").unwrap();
    fs::write(dir.path().join(".notes.tmp-x-1"), b"").unwrap();
    let removed = remove_stale_temps(dir.path()).unwrap();
    assert_eq!(removed, vec![stale]);
    let mut left = names(dir.path());
    left.sort();
    let own_name = own.file_name().unwrap().to_string_lossy().into_owned();
    let mut want = vec![
        ".notes.tmp-x-1".to_string(),
        own_name,
        "quote.snapshot".into(),
    ];
    want.sort();
    assert_eq!(
        left, want,
        "the snapshot, our own temp and other files stay"
    );
    assert!(
        remove_stale_temps(&dir.path().join("missing"))
            .unwrap()
            .is_empty()
    );
}

#[cfg(unix)]
#[test]
fn a_read_only_state_dir_is_reported_by_the_write_check() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    check_writable(dir.path()).unwrap();
    assert!(names(dir.path()).is_empty(), "the probe is removed");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
    let probe = dir.path().join("probe");
    let writable_anyway = fs::write(&probe, b"").is_ok(); // root ignores modes
    let result = check_writable(dir.path());
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    if writable_anyway {
        return;
    }
    let e = result.expect_err("read-only");
    assert!(
        e.to_string().contains(&dir.path().display().to_string()),
        "{e}"
    );
}
