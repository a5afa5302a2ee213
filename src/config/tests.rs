use super::*;

fn args(list: &[&str]) -> Result<Config, CliExit> {
    Config::from_args(list.iter().map(|s| s.to_string()), None)
}

#[test]
fn no_flags_give_the_defaults() {
    assert_eq!(args(&[]), Ok(Config::default()));
}

#[test]
fn every_flag_is_read() {
    let config = args(&[
        "--addr",
        "127.0.0.1:0",
        "--max-message-bytes",
        "10",
        "--max-buffered-bytes",
        "20",
        "--max-connections",
        "3",
        "--history-bytes",
        "4000",
        "--send-buffer-bytes",
        "8192",
        "--history-messages",
        "40",
        "--stall-ms",
        "700",
        "--message-timeout-ms",
        "900",
        "--max-input-bytes",
        "5000",
        "--max-handshakes",
        "7",
        "--heartbeat-ms",
        "200",
        "--handshake-timeout-ms",
        "300",
        "--close-timeout-ms",
        "400",
        "--token",
        "t",
        "--allow-origin",
        "https://a.example",
        "--allow-origin",
        "*",
        "--reuse-port",
        "--redis",
        "redis://127.0.0.1:6390/2",
    ])
    .unwrap();
    assert_eq!(config.addr, SocketAddr::from(([127, 0, 0, 1], 0)));
    assert_eq!(
        (
            config.max_message_bytes,
            config.max_buffered_bytes,
            config.max_connections
        ),
        (10, 20, 3)
    );
    assert_eq!((config.history_bytes, config.history_messages), (4000, 40));
    assert_eq!(config.send_buffer_bytes, 8192);
    assert_eq!(config.stall, Duration::from_millis(700));
    assert_eq!(config.message_timeout, Duration::from_millis(900));
    assert_eq!((config.max_input_bytes, config.max_handshakes), (5000, 7));
    assert_eq!(config.heartbeat, Duration::from_millis(200));
    assert_eq!(config.handshake_timeout, Duration::from_millis(300));
    assert_eq!(config.close_timeout, Duration::from_millis(400));
    assert_eq!(config.token.as_deref(), Some("t"));
    assert_eq!(config.allowed_origins, ["https://a.example", "*"]);
    assert!(config.reuse_port);
    let redis = config.redis.unwrap();
    assert_eq!(
        (redis.host.as_str(), redis.port, redis.db),
        ("127.0.0.1", 6390, 2)
    );
}

#[test]
fn the_token_can_come_from_the_environment() {
    let config = Config::from_args(Vec::new(), Some("from-env".into())).unwrap();
    assert_eq!(config.token.as_deref(), Some("from-env"));
}

#[test]
fn bad_flags_and_values_are_usage_errors() {
    for bad in [
        &["--nope", "1"][..],
        &["--addr", "nowhere"],
        &["--heartbeat-ms", "0"],
        &["--max-connections"],
        &["--token", ""],
        &["--send-buffer-bytes", "100"],
        &["--redis", "127.0.0.1:6379"],
        &["--redis", "redis://:6379"],
        &["--redis", "redis://h:0"],
        &["--redis", "redis://h:6379/x"],
        &["--redis"],
    ] {
        assert!(matches!(args(bad), Err(CliExit::Usage(_))), "{bad:?}");
    }
}

#[test]
fn help_lists_every_flag_with_its_default() {
    let Err(CliExit::Print(help)) = args(&["--help"]) else {
        panic!("no help")
    };
    for flag in [
        "--addr",
        "--max-message-bytes",
        "--max-buffered-bytes",
        "--max-connections",
        "--history-bytes",
        "--history-messages",
        "--stall-ms",
        "--send-buffer-bytes",
        "--message-timeout-ms",
        "--max-input-bytes",
        "--max-handshakes",
        "--heartbeat-ms",
        "--handshake-timeout-ms",
        "--close-timeout-ms",
        "--token",
        "--allow-origin",
        "--reuse-port",
        "--redis",
        "--version",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert!(help.contains("[default: 30000]") && help.contains("[default: 127.0.0.1:8080]"));
}
