//! What makes a bench's figures comparable, written beside them: the date, the commit, the
//! machine's core count and the command, in `target/bench/<name>.json`, where the README's
//! tables are taken from.

use serde_json::{json, Value};

/// `fields` with the date, the commit (`-dirty` when the tree differs from it), the machine's
/// core count and the command that measured them.
pub fn stamped(command: &str, fields: Value) -> Value {
    let output = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let dirty = !output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let commit = output("git", &["rev-parse", "--short", "HEAD"]);
    let mut doc = json!({
        "date": output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "commit": if dirty { format!("{commit}-dirty") } else { commit },
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "command": command,
    });
    if let (Some(doc), Value::Object(fields)) = (doc.as_object_mut(), fields) {
        doc.extend(fields);
    }
    doc
}

/// Writes `doc` to `target/bench/<name>.json` and says where.
pub fn write(name: &str, doc: &Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}.json"));
    match std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()) {
        Ok(()) => println!("\nwritten to {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}
