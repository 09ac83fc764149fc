use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use proptest::prelude::*;
use tempfile::TempDir;

use super::*;
use crate::error::Error;

fn masters(list: &[&str]) -> Vec<String> {
    list.iter().map(|m| (*m).to_owned()).collect()
}

fn drop_in(dir: &TempDir) -> PathBuf {
    dir.path().join("phoenix-masters.conf")
}

/// What identifies one version of a file: a rewrite is a rename, so a new inode, even when
/// the clock is too coarse to move the mtime.
#[cfg(unix)]
fn version(path: &Path) -> (Vec<u8>, SystemTime, u64) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).unwrap();
    (
        fs::read(path).unwrap(),
        meta.modified().unwrap(),
        meta.ino(),
    )
}

#[cfg(not(unix))]
fn version(path: &Path) -> (Vec<u8>, SystemTime, u64) {
    let meta = fs::metadata(path).unwrap();
    (fs::read(path).unwrap(), meta.modified().unwrap(), 0)
}

fn temp_files_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect()
}

const DEFAULT_TEXT: &str = r#"# Managed by Phoenix (phoenix-salt): do not edit; Phoenix rewrites this file when the live masters change.
# Put your own minion settings in another file of minion.d.
# phoenix-masters: ["10.0.2.7","10.0.1.5"]
master:
  - "10.0.2.7"
  - "10.0.1.5"
master_type: str
random_master: false
beacons_before_connect: true
retry_dns: 0
master_port: 4506
master_alive_interval: 10
master_tries: -1
auth_timeout: 5
auth_tries: 3
tcp_keepalive: true
tcp_keepalive_idle: 30
tcp_keepalive_cnt: 3
tcp_keepalive_intvl: 10
"#;

#[test]
fn renders_the_default_drop_in() {
    let text = render(
        &masters(&["10.0.2.7", "10.0.1.5"]),
        &DropInSettings::default(),
    )
    .unwrap();
    assert_eq!(text, DEFAULT_TEXT);
}

#[test]
fn renders_a_failover_drop_in_without_the_hot_only_lines() {
    let settings = DropInSettings {
        master_type: MasterType::Failover,
        ..DropInSettings::default()
    };
    let text = render(&masters(&["10.0.2.7", "10.0.1.5"]), &settings).unwrap();
    let expected = DEFAULT_TEXT
        .replace("master_type: str\n", "master_type: failover\n")
        .replace("beacons_before_connect: true\n", "")
        .replace(
            "master_tries: -1\n",
            "master_tries: -1\nmaster_failback: false\n",
        );
    assert_eq!(text, expected);
}

#[test]
fn renders_optional_settings_only_when_they_apply() {
    let settings = DropInSettings {
        master_type: MasterType::Failover,
        publish_port: Some(14505),
        master_failback: true,
        master_failback_interval: 60,
        tcp_keepalive: false,
        ..DropInSettings::default()
    };
    let text = render(&masters(&["salt-a"]), &settings).unwrap();
    assert!(text.contains("\npublish_port: 14505\n"));
    assert!(text.contains("\nmaster_failback: true\nmaster_failback_interval: 60\n"));
    assert!(text.ends_with("\ntcp_keepalive: false\n"));
    assert!(!text.contains("tcp_keepalive_idle"));
}

#[test]
fn renders_a_repeated_master_once() {
    let text = render(&masters(&["b", "a", "b"]), &DropInSettings::default()).unwrap();
    assert!(text.contains("# phoenix-masters: [\"b\",\"a\"]\nmaster:\n  - \"b\"\n  - \"a\"\n"));
}

#[test]
fn refuses_an_empty_list() {
    let err = render(&[], &DropInSettings::default()).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("empty master list"), "{err}");
}

#[test]
fn refuses_entries_that_cannot_be_addresses() {
    for bad in ["", "   ", " salt", "salt\n", "sa\u{7f}lt", "a\u{85}b", "\t"] {
        let err = render(&masters(&["good", bad]), &DropInSettings::default()).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{bad:?}: {err}");
    }
}

#[test]
fn refuses_settings_that_break_failover() {
    let cases = [
        (
            DropInSettings {
                master_alive_interval: 0,
                ..DropInSettings::default()
            },
            "phoenix.drop_in.master_alive_interval",
        ),
        (
            DropInSettings {
                master_port: 0,
                ..DropInSettings::default()
            },
            "phoenix.drop_in.master_port",
        ),
        (
            DropInSettings {
                publish_port: Some(0),
                ..DropInSettings::default()
            },
            "phoenix.drop_in.publish_port",
        ),
        (
            DropInSettings {
                master_tries: -2,
                ..DropInSettings::default()
            },
            "phoenix.drop_in.master_tries",
        ),
        (
            DropInSettings {
                master_tries: 0,
                ..DropInSettings::default()
            },
            "phoenix.drop_in.master_tries",
        ),
        (
            DropInSettings {
                master_type: MasterType::Failover,
                master_failback: true,
                master_failback_interval: 0,
                ..DropInSettings::default()
            },
            "phoenix.drop_in.master_failback_interval",
        ),
        (
            // A str minion is connected to every master: there is nothing to fail back to.
            DropInSettings {
                master_failback: true,
                ..DropInSettings::default()
            },
            "phoenix.drop_in.master_failback",
        ),
        (
            DropInSettings {
                auth_timeout: 0,
                ..DropInSettings::default()
            },
            "phoenix.drop_in.auth_timeout",
        ),
        (
            DropInSettings {
                auth_tries: 0,
                ..DropInSettings::default()
            },
            "phoenix.drop_in.auth_tries",
        ),
        (
            DropInSettings {
                tcp_keepalive_cnt: 0,
                ..DropInSettings::default()
            },
            "phoenix.drop_in.tcp_keepalive_cnt",
        ),
    ];
    for (settings, expected_key) in cases {
        match render(&masters(&["salt"]), &settings) {
            Err(Error::Config { key, .. }) => assert_eq!(key, expected_key),
            other => panic!("{expected_key}: {other:?}"),
        }
    }
    // Keepalive timings do not matter while keepalive is off.
    let off = DropInSettings {
        tcp_keepalive: false,
        tcp_keepalive_idle: 0,
        ..DropInSettings::default()
    };
    assert!(render(&masters(&["salt"]), &off).is_ok());
}

#[test]
fn settings_deserialize_from_a_partial_map_and_refuse_unknown_keys() {
    let settings: DropInSettings =
        serde_json::from_str(r#"{"master_alive_interval": 5, "publish_port": 4505}"#).unwrap();
    assert_eq!(settings.master_alive_interval, 5);
    assert_eq!(settings.publish_port, Some(4505));
    assert_eq!(settings.master_port, 4506);
    assert!(serde_json::from_str::<DropInSettings>(r#"{"master_alive_intervall": 5}"#).is_err());
    assert_eq!(settings.master_type, MasterType::Str);
    let failover: DropInSettings = serde_json::from_str(r#"{"master_type": "failover"}"#).unwrap();
    assert_eq!(failover.master_type, MasterType::Failover);
    // Salt's other values (disable, func, distributed) are not Phoenix's to write.
    assert!(serde_json::from_str::<DropInSettings>(r#"{"master_type": "func"}"#).is_err());
}

#[test]
fn a_missing_file_reads_as_none() {
    let dir = TempDir::new().unwrap();
    assert_eq!(read_masters(&drop_in(&dir)).unwrap(), None);
}

#[test]
fn reads_back_what_it_wrote() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    let list = masters(&["10.0.2.7", "10.0.1.5"]);
    write_atomically(&path, &render(&list, &DropInSettings::default()).unwrap()).unwrap();
    assert_eq!(read_masters(&path).unwrap(), Some(list));
}

#[test]
fn a_file_without_the_header_is_foreign() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    for foreign in [
        &b"master: salt\n"[..],
        b"",
        b"\n# Managed by Phoenix (phoenix-salt)\n",
        b"\xff\xfe binary",
    ] {
        fs::write(&path, foreign).unwrap();
        let err = read_masters(&path).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        assert!(err.to_string().contains("not managed by Phoenix"), "{err}");
    }
}

#[test]
fn a_damaged_phoenix_file_is_an_error_not_an_empty_list() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    let good = DEFAULT_TEXT;
    let damaged = [
        // Truncated after the header.
        good.split("master:\n").next().unwrap().to_owned(),
        // Truncated inside the header.
        good.lines().next().unwrap().to_owned(),
        // A master edited by hand.
        good.replace("  - \"10.0.1.5\"", "  - \"10.0.9.9\""),
        // A master removed by hand.
        good.replace("  - \"10.0.1.5\"\n", ""),
        // The list unquoted by hand.
        good.replace("  - \"10.0.1.5\"", "  - 10.0.1.5"),
        // Both lists emptied.
        good.replace("[\"10.0.2.7\",\"10.0.1.5\"]", "[]")
            .replace("  - \"10.0.2.7\"\n  - \"10.0.1.5\"\n", ""),
        // A broken header list.
        good.replace("[\"10.0.2.7\",", "[\"10.0.2.7\";"),
        // A second master list.
        format!("{good}master:\n  - \"10.0.2.7\"\n  - \"10.0.1.5\"\n"),
    ];
    for text in damaged {
        fs::write(&path, &text).unwrap();
        let err = read_masters(&path).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{text}\n=> {err}");
        assert!(
            err.to_string().contains("is a Phoenix drop-in but"),
            "{err}"
        );
    }
    let mut not_utf8 = good.as_bytes().to_vec();
    not_utf8.extend_from_slice(b"# \xff\n");
    fs::write(&path, not_utf8).unwrap();
    assert!(matches!(read_masters(&path), Err(Error::Conflict(_))));
}

#[test]
fn a_directory_at_the_path_is_an_io_error() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    fs::create_dir(&path).unwrap();
    assert!(matches!(read_masters(&path), Err(Error::Io { .. })));
}

#[test]
fn update_writes_a_new_file() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    let list = masters(&["a", "b"]);
    let change = update(&path, &list, &DropInSettings::default()).unwrap();
    assert_eq!(
        change,
        DropInChange::Written {
            old: None,
            new: list.clone()
        }
    );
    assert_eq!(read_masters(&path).unwrap(), Some(list));
    assert!(temp_files_in(dir.path()).is_empty());
}

#[test]
fn update_does_not_rewrite_an_unchanged_list() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    let list = masters(&["a", "b"]);
    update(&path, &list, &DropInSettings::default()).unwrap();
    let before = version(&path);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(
        update(&path, &list, &DropInSettings::default()).unwrap(),
        DropInChange::Unchanged {
            masters: list.clone()
        }
    );
    // The same list with a repeat renders the same text.
    assert_eq!(
        update(
            &path,
            &masters(&["a", "b", "a"]),
            &DropInSettings::default()
        )
        .unwrap(),
        DropInChange::Unchanged { masters: list }
    );
    assert_eq!(version(&path), before);
}

#[test]
fn update_rewrites_a_changed_list_or_changed_settings() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    update(&path, &masters(&["a", "b"]), &DropInSettings::default()).unwrap();
    assert_eq!(
        update(&path, &masters(&["b", "a"]), &DropInSettings::default()).unwrap(),
        DropInChange::Written {
            old: Some(masters(&["a", "b"])),
            new: masters(&["b", "a"])
        }
    );
    let slower = DropInSettings {
        master_alive_interval: 30,
        ..DropInSettings::default()
    };
    assert_eq!(
        update(&path, &masters(&["b", "a"]), &slower).unwrap(),
        DropInChange::Written {
            old: Some(masters(&["b", "a"])),
            new: masters(&["b", "a"])
        }
    );
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains("\nmaster_alive_interval: 30\n"));
}

#[test]
fn update_refuses_an_empty_list_and_leaves_the_file_alone() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    update(&path, &masters(&["a"]), &DropInSettings::default()).unwrap();
    let before = version(&path);
    let err = update(&path, &[], &DropInSettings::default()).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(version(&path), before);

    // Nor is a first file created empty.
    let fresh = dir.path().join("fresh.conf");
    assert!(update(&fresh, &[], &DropInSettings::default()).is_err());
    assert!(!fresh.exists());
}

#[test]
fn update_refuses_a_foreign_file_and_leaves_it_alone() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    fs::write(&path, "master: operator-choice\n").unwrap();
    let before = version(&path);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let err = update(&path, &masters(&["a"]), &DropInSettings::default()).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(version(&path), before);
    assert!(temp_files_in(dir.path()).is_empty());
}

#[test]
fn update_refuses_a_damaged_phoenix_file_and_leaves_it_alone() {
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    fs::write(&path, DEFAULT_TEXT.replace("10.0.1.5\"\n", "10.0.9.9\"\n")).unwrap();
    let before = version(&path);
    assert!(matches!(
        update(&path, &masters(&["a"]), &DropInSettings::default()),
        Err(Error::Conflict(_))
    ));
    assert_eq!(version(&path), before);
}

#[cfg(unix)]
#[test]
fn writes_mode_0644() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    fs::write(&path, "old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    write_atomically(&path, "new").unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
    assert_eq!(fs::read_to_string(&path).unwrap(), "new");
}

#[cfg(unix)]
#[test]
fn a_write_into_a_read_only_directory_fails_and_keeps_the_old_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    update(&path, &masters(&["a"]), &DropInSettings::default()).unwrap();
    let before = version(&path);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();

    // A privileged user (root, CAP_DAC_OVERRIDE) writes through directory permissions; then
    // this failure cannot be staged here, and the rename-failure test below covers the path.
    let probe = dir.path().join("probe");
    let privileged = fs::write(&probe, "").is_ok();
    let result = update(&path, &masters(&["b"]), &DropInSettings::default());
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    if privileged {
        eprintln!("read-only directory test skipped: this user ignores directory permissions");
        return;
    }
    match result {
        Err(Error::Io { path: reported, .. }) => assert_eq!(reported, path),
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert_eq!(version(&path), before);
    assert!(temp_files_in(dir.path()).is_empty());
}

#[test]
fn a_failed_rename_leaves_no_temporary_file() {
    let dir = TempDir::new().unwrap();
    // A non-empty directory where the file should go: the temporary file is written, the
    // rename over the directory fails.
    let path = drop_in(&dir);
    fs::create_dir(&path).unwrap();
    fs::write(path.join("keep"), "x").unwrap();
    let err = write_atomically(&path, "new").unwrap_err();
    match &err {
        Error::Io {
            path: reported,
            source,
        } => {
            assert_eq!(reported, &path);
            assert!(source.to_string().contains("renaming"), "{source}");
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert!(temp_files_in(dir.path()).is_empty());
    assert_eq!(fs::read_to_string(path.join("keep")).unwrap(), "x");
}

#[test]
fn a_path_that_names_no_file_or_lies_under_a_file_is_an_io_error() {
    assert!(matches!(
        write_atomically(Path::new("/"), "x"),
        Err(Error::Io { .. })
    ));
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("minion.d");
    fs::write(&file, "not a directory").unwrap();
    let under_a_file = file.join("phoenix-masters.conf");
    assert!(matches!(
        write_atomically(&under_a_file, "x"),
        Err(Error::Io { .. })
    ));
}

#[test]
fn a_missing_directory_is_created() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("minion.d").join("phoenix-masters.conf");
    write_atomically(&path, "x").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "x");
}

#[test]
fn temporary_names_are_hidden_and_never_match_the_conf_include() {
    // The name is built in write.rs; a leftover must never be loaded by `minion.d/*.conf`.
    let dir = TempDir::new().unwrap();
    let path = drop_in(&dir);
    fs::create_dir(&path).unwrap();
    fs::write(path.join("keep"), "x").unwrap();
    // Intercept the name through the error message of a failed rename.
    let message = write_atomically(&path, "new").unwrap_err().to_string();
    let temp = message
        .split_whitespace()
        .find(|word| word.contains(".tmp-"))
        .unwrap();
    let name = Path::new(temp)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with(".phoenix-masters.conf.tmp-"), "{name}");
    assert!(!name.ends_with(".conf"), "{name}");
}

/// Master addresses as they come: names, IPv4, bracketed IPv6 with ports, and anything
/// printable, with the characters YAML cares about.
fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        "\\[[0-9a-f:]{2,24}\\]:[0-9]{1,5}",
        "[a-z]{1,4}[\"'\\\\#:&*!|>%@` \\[\\]{},?-]{1,8}[a-z]{1,4}",
        "\\PC{1,16}",
    ]
    .prop_filter("a master address is trimmed and non-empty", |a| {
        !a.trim().is_empty() && a.trim() == a
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn render_then_read_gives_the_list_back(
        list in proptest::collection::vec(address(), 1..8),
        port in 1u16..,
        alive in 1u32..3600,
    ) {
        let dir = TempDir::new().unwrap();
        let path = drop_in(&dir);
        let settings = DropInSettings {
            master_port: port,
            master_alive_interval: alive,
            ..DropInSettings::default()
        };
        let text = render(&list, &settings).unwrap();
        prop_assert!(text.bytes().all(|b| b == b'\n' || (b' '..=b'~').contains(&b)));
        write_atomically(&path, &text).unwrap();
        let unique = render::unique_in_order(&list);
        prop_assert_eq!(read_masters(&path).unwrap(), Some(unique.clone()));
        prop_assert_eq!(
            update(&path, &list, &settings).unwrap(),
            DropInChange::Unchanged { masters: unique }
        );
    }
}
