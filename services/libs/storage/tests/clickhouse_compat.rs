//! Weft's ClickHouse SQL on both engines it supports: every statement of the SQL
//! catalogue (migrations with the deferred ones, inserts, every read) runs in order on
//! the real server (Debian's ClickHouse 18.16 locally and in CI) and on the current
//! engine in-process through chdb (`tests/chdb_check.py`, run by `WEFT_CHDB_PYTHON`).
//!
//! It fails when a statement is accepted by only one of the two, except a migration
//! statement whose `weft:min-version` is above the server's version, which the server is
//! expected to reject; when any other statement is rejected by either; and when a read
//! returns different rows (compared as RowBinary, the format the client reads) or none:
//! every read is built to match the representative rows the inserts write.

use std::io::Write;
use std::process::{Command, Stdio};
use weft_storage::clickhouse::{CataloguedStatement, ServerVersion, SqlCatalogue, StatementOrigin};

const CHDB_HELP: &str = "set WEFT_CHDB_PYTHON to a Python interpreter with chdb-core installed, \
     for example: python3 -m venv ~/.cache/weft/chdb-venv && \
     ~/.cache/weft/chdb-venv/bin/pip install chdb-core==26.9.0 && \
     export WEFT_CHDB_PYTHON=~/.cache/weft/chdb-venv/bin/python (deploy/test.sh does this)";

/// What one engine made of one statement.
#[derive(Clone, Debug)]
struct Outcome {
    accepted: bool,
    error: Option<String>,
    /// The result as RowBinary, hex-encoded.
    result: String,
}

impl Outcome {
    fn label(&self) -> &'static str {
        if self.accepted {
            "accepted"
        } else {
            "rejected"
        }
    }
}

/// The first line of an engine's error, short enough for a table.
fn brief(error: &str) -> String {
    let line = error.lines().next().unwrap_or_default().trim();
    if line.chars().count() > 240 {
        format!("{}…", line.chars().take(240).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// Runs the catalogue on the server at `url` in its own database, which it drops again.
async fn run_on_server(
    url: &str,
    catalogue: &SqlCatalogue,
    database: &str,
) -> (String, Vec<Outcome>) {
    let server = ::clickhouse::Client::default()
        .with_url(url)
        .with_validation(false);
    let version: String = server
        .query("SELECT version()")
        .fetch_one()
        .await
        .unwrap_or_else(|e| panic!("ClickHouse at {url} does not answer: {e}"));
    server
        .query_raw(&catalogue.create_database)
        .execute()
        .await
        .expect("failed to create the test database");
    let in_database = server.clone().with_database(database);
    let mut outcomes = Vec::new();
    for statement in &catalogue.statements {
        let result = match in_database
            .query_raw(&statement.sql)
            .fetch_bytes("RowBinary")
        {
            Ok(mut cursor) => cursor.collect().await,
            Err(e) => Err(e),
        };
        outcomes.push(match result {
            Ok(bytes) => Outcome {
                accepted: true,
                error: None,
                result: hex::encode(bytes),
            },
            Err(e) => Outcome {
                accepted: false,
                error: Some(brief(&e.to_string())),
                result: String::new(),
            },
        });
    }
    server
        .query_raw(&catalogue.drop_database)
        .execute()
        .await
        .expect("failed to drop the test database");
    (version, outcomes)
}

/// Runs the catalogue through chdb in one session: the current ClickHouse engine.
fn run_on_chdb(python: &str, catalogue: &SqlCatalogue, database: &str) -> (String, Vec<Outcome>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb_check.py");
    let request = serde_json::json!({
        "create_database": catalogue.create_database,
        "database": database,
        "statements": catalogue.statements.iter().map(|s| s.sql.as_str()).collect::<Vec<_>>(),
        "drop_database": catalogue.drop_database,
    });
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run WEFT_CHDB_PYTHON={python}: {e}; {CHDB_HELP}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(request.to_string().as_bytes())
        .expect("failed to send the statements to chdb_check.py");
    let output = child
        .wait_with_output()
        .expect("chdb_check.py did not finish");
    assert!(
        output.status.success(),
        "chdb_check.py failed ({}): {}\n{CHDB_HELP}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = std::str::from_utf8(&output.stdout)
        .expect("chdb_check.py prints UTF-8")
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("chdb_check.py printed {line:?}: {e}"))
        });
    let engine = lines
        .next()
        .expect("chdb_check.py prints the engine version first");
    let version = engine["engine"]
        .as_str()
        .expect("an engine version")
        .to_owned();
    let outcomes: Vec<Outcome> = lines
        .enumerate()
        .map(|(index, line)| {
            assert_eq!(line["index"], index, "chdb_check.py answers in order");
            Outcome {
                accepted: line["accepted"].as_bool().expect("accepted is a bool"),
                error: line["error"].as_str().map(brief),
                result: line["result"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect();
    assert_eq!(
        outcomes.len(),
        catalogue.statements.len(),
        "chdb_check.py answers every statement"
    );
    (version, outcomes)
}

/// Why a statement fails the check, if it does.
fn problem(
    statement: &CataloguedStatement,
    server_version: ServerVersion,
    server: &Outcome,
    current: &Outcome,
) -> Option<&'static str> {
    let deferred_on_server = statement
        .min_version()
        .is_some_and(|min| server_version < min);
    match (server.accepted, current.accepted) {
        (true, true)
            if statement.origin == StatementOrigin::Read
                && server.result.is_empty()
                && current.result.is_empty() =>
        {
            Some("no rows read")
        }
        (true, true)
            if statement.origin == StatementOrigin::Read && server.result != current.result =>
        {
            Some("results differ")
        }
        (true, true) => None,
        (false, true) if deferred_on_server => None,
        (false, true) => Some("only current ClickHouse accepts it"),
        (true, false) => Some("only the server accepts it"),
        (false, false) => Some("both reject it"),
    }
}

#[tokio::test]
async fn every_statement_runs_on_both_clickhouse_versions() {
    let python = std::env::var("WEFT_CHDB_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| panic!("WEFT_CHDB_PYTHON is unset: {CHDB_HELP}"));
    let url = std::env::var("WEFT_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let database = format!("weft_test_{}", uuid::Uuid::new_v4().simple());
    let now_unix_nano = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let catalogue = SqlCatalogue::new(&database, 30, now_unix_nano);

    let current = {
        let (catalogue, database) = (catalogue.clone(), database.clone());
        tokio::task::spawn_blocking(move || run_on_chdb(&python, &catalogue, &database))
    };
    let (server_text, server) = run_on_server(&url, &catalogue, &database).await;
    let (current_text, current) = current.await.expect("the chdb run panicked");
    let server_version = ServerVersion::parse(&server_text)
        .unwrap_or_else(|| panic!("the server reports an unparsable version {server_text:?}"));

    let width = catalogue
        .statements
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0);
    let mut table = format!(
        "{:width$}  {:10}  {:10}  verdict\n",
        "statement", server_text, current_text
    );
    let (mut failures, mut expected) = (String::new(), String::new());
    for ((statement, server), current) in catalogue.statements.iter().zip(&server).zip(&current) {
        let problem = problem(statement, server_version, server, current);
        let verdict = match (problem, statement.min_version()) {
            (Some(problem), _) => problem.to_owned(),
            (None, Some(min)) if !server.accepted => format!("deferred below {min}, as expected"),
            (None, _) => "ok".to_owned(),
        };
        table.push_str(&format!(
            "{:width$}  {:10}  {:10}  {verdict}\n",
            statement.name,
            server.label(),
            current.label()
        ));
        let explanation = |verdict: &str| {
            let mut text = format!(
                "\n{}: {verdict}\n  sql: {}\n",
                statement.name, statement.sql
            );
            for (engine, outcome) in [(&server_text, server), (&current_text, current)] {
                match &outcome.error {
                    Some(error) => text.push_str(&format!("  {engine}: {error}\n")),
                    None if outcome.result.is_empty() => {
                        text.push_str(&format!("  {engine}: accepted, no rows\n"))
                    }
                    None => text.push_str(&format!("  {engine}: rows {}\n", outcome.result)),
                }
            }
            text
        };
        match problem {
            Some(problem) => failures.push_str(&explanation(problem)),
            None if !server.accepted => expected.push_str(&explanation(&verdict)),
            None => {}
        }
    }
    println!(
        "ClickHouse {server_text} at {url} and ClickHouse {current_text} (chdb)\n{table}{expected}"
    );
    assert!(
        failures.is_empty(),
        "Weft's SQL does not run the same on ClickHouse {server_text} and {current_text}:\n\
         {table}{failures}"
    );
}
